"""Synthetic e-commerce data: clickstream, orders, items, users and reviews with a planted signal.

``generate_tables(users, days, end_date, seed)`` returns one ``pyarrow.Table`` per input contract of
``portrait.schemas`` (CLICKSTREAM, ORDERS, ITEMS, USERS, REVIEWS), each carrying exactly
``arrow_schema(contract)``.  The generator is pure (no I/O, no Spark) and vectorised with numpy and
pyarrow compute: loops run over days, personas or the fixed word lists, never over events or users.
The same arguments give the same tables, byte for byte.

Model of behaviour
------------------
Catalogue.  60 leaf categories in 10 top-level groups, each with a two-level path in the group's
language ("服饰 > 女装", "Electronics > Phones"), 8 brands per group (80 in all) and
``max(500, users // 5)`` items.  Category popularity and item popularity within a category are Zipf;
list prices are log-normal around a per-category median.  Titles are Chinese or English, built from
per-category nouns and per-group descriptors ("华为 Pro 手机 5G 旗舰", "Nike running shoes men
lightweight").

Users.  Every user has a persona (shares in ``PERSONA_SHARES``): loyal high spenders, bargain hunters
(coupon searches, discounts, many abandoned carts), window shoppers (many views, rare purchases), new
users (sign up inside the window and browse only from a few days before their signup, anonymously
until then) and churning users (activity fades linearly to zero at a churn day in the second half).
About 0.2% are bots: one logged-in crawl session a day at a fixed time, hundreds of views in catalogue
order at a fixed period, no searches, carts or purchases.  Each user has 1-3 favourite categories
that most sessions focus on, one device (``anonymous_id``, also on logged-in events), a usual
platform, a preferred language and demographics.

Intent (the latent state).  Each user carries a daily purchase intent
``x[u, d] = b_u + s_p * z[u, d]``: a persistent per-user level ``b_u`` (persona mean plus noise) and
a stationary AR(1) process ``z[u, d] = phi_p z[u, d-1] + sqrt(1 - phi_p^2) e`` with ``phi_p`` 0.90-0.93,
so a high or low phase lasts one to three weeks.  Intent drives what is observable (coefficients are
the ``_*_INTENT`` / ``_*_RESEARCH`` constants):

* purchase day ~ Bernoulli(lifecycle * sigmoid(buy_p + 1.3 x)); it has at least one session and one
  of its sessions ends with checkout (one order, one line per bought item);
* research phase: the three days before a purchase day.  The user then visits more (+0.6 on the log
  session rate), searches more, carts a little more and looks at promotion items (titles tagged
  "限时特惠", "flash sale" ...);
* sessions per day ~ Poisson(lifecycle * rate_p * exp(a_u + 0.5 x + 0.6 research)), where ``a_u`` is
  a per-user activity level independent of intent (busy browsers are not necessarily buyers);
* per view, add-to-cart and favourite logits rise with x (0.6 and 0.5 per unit);
* a search query is a category query ("连衣裙 夏季", "wireless earbuds", "Nike 帐篷") or, with
  probability sigmoid(iq_p + 0.8 rise + 3.0 research), an intent query built from "优惠券", "coupon",
  "折扣", "best price", "比价", "促销", "满减" ... (``INTENT_TERMS``), where ``rise`` is the increase of
  x over the last four days.  Bargain hunters use intent terms habitually (higher ``iq_p``), so the
  terms are informative but not decisive.

Planted signal.  Because ``z`` persists for weeks and ``b_u`` forever, "a paid order in (D, D+7]" is
predictable from behaviour up to D: recent carts, favourites, sessions and active days (current
intent), recency, frequency and spend of orders (``b_u`` and persona) and the activity trend
(churners and new users).  The text adds signal beyond RFM: intent-term searches and promotion
titles in the searched and viewed text mark the research phase before a purchase and rising intent.
Noise (Poisson counts, activity independent of intent, habitual coupon searches of bargain hunters,
fresh AR innovations after D) keeps the label far from separable.  Measured at users=4000, days=60,
training at D = end - 14 and testing at D = end - 7 over three seeds, a logistic regression reaches a
test AUC of 0.71-0.74 on RFM alone, about 0.74 on RFM plus a tf-idf bag of words of searches and
titles (text alone: about 0.69) and 0.79-0.80 on 7/30-day counts plus RFM, with or without the text;
about 16% of users have a paid order in a given week.

Events.  Sessions start at a diurnal local time of day (lunch and evening peaks); within a session
each interaction is a view, optionally followed by a favourite and an add-to-cart (sometimes removed
again later), searches open the session or come before later views, and checkout ("buy" events, one
per order line, all at the checkout instant) ends a purchase session.  Gaps are seconds to minutes.
About 8% of sessions without checkout are anonymous (``user_id`` null, ``anonymous_id`` set), like
new users' visits before signup; checkouts are always logged in so every order has a user.
``event_time`` is a UTC instant and ``dt`` its local date in ``time_zone`` (DST-aware); events whose
local date falls after ``end_date`` (sessions running past midnight on the last day) are dropped
together with any order line they would have produced.

Orders and reviews.  Every buy event is one order line with the same user, item, time and price;
quantity 1-3, a discount more often for bargain hunters, an order-level status (paid ~90%, refunded
~7%, cancelled ~3%).  Some paid lines get a review a few days later (kept only if its local date is
within the window) whose rating drives positive or negative Chinese or English text.

Modules: ``params`` (persona and signal constants), ``words`` (word lists), ``catalogue`` (categories and
items), ``people`` (users and their daily intent), ``events`` (sessions and events of people and bots),
``tables`` (the Arrow tables), ``arrow`` and ``numeric`` (helpers), ``generator`` (``generate_tables``).
"""

from __future__ import annotations

from portrait.generate.arrow import arrow_schema
from portrait.generate.generator import generate_tables
from portrait.generate.params import BOT_SHARE, PERSONA_SHARES, PERSONAS
from portrait.generate.words import INTENT_TERMS

__all__ = [
    "BOT_SHARE",
    "INTENT_TERMS",
    "PERSONAS",
    "PERSONA_SHARES",
    "arrow_schema",
    "generate_tables",
]
