"""The input tables built from the events: clickstream, orders, reviews, users and items."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from portrait import schemas
from portrait.generate.arrow import _as_array, _hex_ids, _join_words, _make_table, _take
from portrait.generate.catalogue import _Catalogue, _Items
from portrait.generate.events import _BUY, _SEARCH, _STAGE_TYPE
from portrait.generate.numeric import _choice, _local_dates, _mix64, _rank_in_groups, _sigmoid
from portrait.generate.params import (
    _CHANNELS,
    _DISCOUNT_SHARE,
    _INTENT_QUERY_BASE,
    _INTENT_QUERY_RESEARCH,
    _INTENT_QUERY_RISE,
    _LOYAL,
    _ORDER_STATUS_SHARE,
    _PLATFORMS,
    _REVIEW_SHARE,
    _US_PER_DAY,
)
from portrait.generate.people import _Grid, _Population
from portrait.generate.words import _INTENT_TERMS_ZH, _REVIEW_PHRASES


def _search_queries(rng: np.random.Generator, cat: _Catalogue, pop: _Population, g: _Grid, ev: dict[str, np.ndarray]) -> pa.Array:
    """Query text for the search events: category terms, or intent terms when intent runs high."""
    is_q = ev["etype"] == _SEARCH
    user, day, category = ev["user"][is_q], ev["day"][is_q], ev["category"][is_q]
    n = len(user)
    persona = pop.persona[user]
    p_intent = _sigmoid(
        _INTENT_QUERY_BASE[persona]
        + _INTENT_QUERY_RISE * g.rise[user, day]
        + _INTENT_QUERY_RESEARCH * g.research[user, day]
    )
    intent = rng.random(n) < p_intent
    zh = np.where(rng.random(n) < 0.9, pop.zh[user], ~pop.zh[user])
    group = cat.cat_group[category]
    desc = group * cat.desc_per_group + rng.integers(0, cat.desc_per_group, n)
    brand = group * cat.brands_per_group + rng.integers(0, cat.brands_per_group, n)
    term = rng.integers(0, len(_INTENT_TERMS_ZH), n)
    form = rng.integers(0, 3, n)
    a_zh = pa.array(zh)
    noun = pc.if_else(a_zh, cat.noun_zh.take(pa.array(category)), cat.noun_en.take(pa.array(category)))
    dword = pc.if_else(a_zh, cat.desc_zh.take(pa.array(desc)), cat.desc_en.take(pa.array(desc)))
    bword = cat.brands.take(pa.array(brand))
    iword = pc.if_else(a_zh, cat.intent_zh.take(pa.array(term)), cat.intent_en.take(pa.array(term)))
    empty = pa.scalar("", pa.string())
    # Plain: "noun", "noun descriptor" (zh) / "descriptor noun" (en), "brand noun".
    plain_left = pc.if_else(pa.array(form == 2), bword, pc.if_else(pa.array((form == 1) & ~zh), dword, empty))
    plain_right = pc.if_else(pa.array((form == 1) & zh), dword, empty)
    plain = _join_words(plain_left, noun, plain_right)
    # Intent: "noun term", "term noun", or the bare term.
    intent_text = pc.if_else(
        pa.array(form == 0), _join_words(noun, iword), pc.if_else(pa.array(form == 1), _join_words(iword, noun), iword)
    )
    return pc.if_else(pa.array(intent), intent_text, plain)


def _clickstream_table(
    rng: np.random.Generator, cat: _Catalogue, items: _Items, pop: _Population, g: _Grid,
    ev: dict[str, np.ndarray], ev_dt: np.ndarray, salt: int,
) -> pa.Table:
    n = len(ev["user"])
    is_q = ev["etype"] == _SEARCH
    has_item = ~is_q
    queries = _search_queries(rng, cat, pop, g, ev)
    q_index = np.cumsum(is_q) - 1
    item = np.where(has_item, ev["item"], 0)
    # Session ids: a hash of (session number); bot sessions have negative numbers, hashed the same way.
    session_ids = _hex_ids(_mix64(ev["session"].view(np.uint64), salt ^ 0x5E55), "")
    event_types = pa.array([_STAGE_TYPE[k] for k in range(6)])
    return _make_table(
        schemas.CLICKSTREAM,
        {
            "event_id": _hex_ids(_mix64(np.arange(n, dtype=np.uint64), salt ^ 0xE7), ""),
            "user_id": _take(pop.ids, ev["user"], ev["logged_in"]),
            "anonymous_id": pop.device.take(pa.array(ev["user"])),
            "session_id": session_ids,
            "event_time": pa.array(ev["time"], type=pa.timestamp("us", tz="UTC")),
            "event_type": event_types.take(pa.array(ev["etype"])),
            "item_id": _take(items.ids, item, has_item),
            "category_id": _take(cat.cat_ids, items.category[item], has_item),
            "brand": _take(cat.brands, items.brand[item], has_item),
            "price": pa.array(items.price[item], mask=~has_item),
            "search_query": _take(_as_array(queries), q_index, is_q),
            "channel": pa.array(_CHANNELS).take(pa.array(ev["channel"])),
            "platform": pa.array(_PLATFORMS).take(pa.array(ev["platform"])),
            "dt": pa.array(ev_dt, type=pa.int32()).view(pa.date32()),
        },
    )


def _orders_table(
    rng: np.random.Generator, cat: _Catalogue, items: _Items, pop: _Population,
    ev: dict[str, np.ndarray], ev_dt: np.ndarray, salt: int,
) -> tuple[pa.Table, dict[str, np.ndarray]]:
    """One order per checkout session, one line per buy event (already sorted by time, session)."""
    buy = np.flatnonzero(ev["etype"] == _BUY)
    sess = ev["session"][buy]
    new_order = np.r_[True, sess[1:] != sess[:-1]] if len(buy) else np.zeros(0, dtype=bool)
    order_no = np.cumsum(new_order) - 1
    n_orders = int(new_order.sum())
    line = _rank_in_groups(np.bincount(order_no, minlength=n_orders)) + 1
    user = ev["user"][buy]
    item = ev["item"][buy]
    persona = pop.persona[user]
    statuses = np.array(list(_ORDER_STATUS_SHARE))
    status = _choice(rng, np.array(list(_ORDER_STATUS_SHARE.values())), n_orders)[order_no]
    quantity = 1 + _choice(rng, np.array([0.78, 0.16, 0.06]), len(buy))
    unit_price = items.price[item]
    discounted = rng.random(len(buy)) < _DISCOUNT_SHARE[persona]
    discount = np.where(discounted, np.round(quantity * unit_price * rng.uniform(0.05, 0.25, len(buy)), 2), 0.0)
    order_ids = _hex_ids(_mix64(sess.view(np.uint64), salt ^ 0x0D), "o")
    table = _make_table(
        schemas.ORDERS,
        {
            "order_id": order_ids,
            "line_number": pa.array(line, type=pa.int32()),
            "user_id": pop.ids.take(pa.array(user)),
            "order_time": pa.array(ev["time"][buy], type=pa.timestamp("us", tz="UTC")),
            "status": pa.array(statuses[status]),
            "item_id": items.ids.take(pa.array(item)),
            "category_id": cat.cat_ids.take(pa.array(items.category[item])),
            "quantity": pa.array(quantity, type=pa.int32()),
            "unit_price": pa.array(unit_price),
            "discount": pa.array(discount),
            "dt": pa.array(ev_dt[buy], type=pa.int32()).view(pa.date32()),
        },
    )
    paid = statuses[status] == "paid"
    paid_lines = {"user": user[paid], "item": item[paid], "time": ev["time"][buy][paid], "number": buy[paid]}
    return table, paid_lines


def _reviews_table(
    rng: np.random.Generator, pop: _Population, items: _Items, lines: dict[str, np.ndarray],
    last_dt: int, time_zone: str, salt: int,
) -> pa.Table:
    """Some paid lines get a review 1-10 days later; kept only if written within the window."""
    persona = pop.persona[lines["user"]]
    n = len(persona)
    reviewed = rng.random(n) < _REVIEW_SHARE[persona]
    delay_days = 1.0 + rng.gamma(2.0, 1.5, n)
    time = lines["time"] + (delay_days * _US_PER_DAY).astype(np.int64)
    review_dt = _local_dates(time, time_zone)
    keep = reviewed & (review_dt <= last_dt)
    user, item, time, review_dt, number = (
        lines["user"][keep], lines["item"][keep], time[keep], review_dt[keep], lines["number"][keep]
    )
    persona = persona[keep]
    n = len(user)
    # Loyal customers are happier; the rest have a longer negative tail.
    rating = np.where(
        persona == _LOYAL,
        1 + _choice(rng, np.array([0.02, 0.03, 0.08, 0.32, 0.55]), n),
        1 + _choice(rng, np.array([0.07, 0.07, 0.14, 0.32, 0.40]), n),
    )
    zh = np.where(rng.random(n) < 0.9, pop.zh[user], ~pop.zh[user])
    mood = np.where(rating >= 4, "pos", np.where(rating == 3, "mid", "neg"))
    text = pa.nulls(n, pa.string())  # every row is overwritten by exactly one (language, tone) below
    for lang, sep in (("zh", "，"), ("en", ", ")):
        for tone in ("pos", "mid", "neg"):
            words = pa.array(_REVIEW_PHRASES[(lang, tone)])
            m = len(words)
            first = rng.integers(0, m, n)
            second = (first + 1 + rng.integers(0, m - 1, n)) % m  # a different second phrase
            one = words.take(pa.array(first))
            two = pc.binary_join_element_wise(one, words.take(pa.array(second)), sep)
            candidate = pc.if_else(pa.array(rng.random(n) < 0.4), one, two)
            text = pc.if_else(pa.array((zh == (lang == "zh")) & (mood == tone)), candidate, text)
    order = np.lexsort((number, time))
    table = _make_table(
        schemas.REVIEWS,
        {
            "review_id": _hex_ids(_mix64(number.astype(np.uint64), salt ^ 0x4E), "r"),
            "user_id": pop.ids.take(pa.array(user)),
            "item_id": items.ids.take(pa.array(item)),
            "review_time": pa.array(time, type=pa.timestamp("us", tz="UTC")),
            "rating": pa.array(rating, type=pa.int32()),
            "review_text": text,
            "dt": pa.array(review_dt, type=pa.int32()).view(pa.date32()),
        },
    )
    return table.take(pa.array(order))


def _users_table(rng: np.random.Generator, pop: _Population, first_dt: int) -> pa.Table:
    n = len(pop.persona)
    gender = _choice(rng, np.array([0.52, 0.40, 0.08]), n)  # f, m, undeclared
    age = _choice(rng, np.array([0.16, 0.34, 0.26, 0.14, 0.10]), n)
    # Loyal high spenders live in bigger cities more often.
    tier = np.where(
        pop.persona == _LOYAL,
        _choice(rng, np.array([0.35, 0.30, 0.18, 0.10, 0.07]), n),
        _choice(rng, np.array([0.18, 0.24, 0.24, 0.18, 0.16]), n),
    )
    return _make_table(
        schemas.USERS,
        {
            "user_id": pop.ids,
            "signup_date": pa.array((first_dt + pop.signup_day).astype(np.int32), type=pa.int32()).view(pa.date32()),
            "gender": _take(pa.array(["f", "m", "f"]), gender, gender < 2),
            "age_band": pa.array(["18-24", "25-34", "35-44", "45-54", "55+"]).take(pa.array(age)),
            "city_tier": pa.array(["1", "2", "3", "4", "5"]).take(pa.array(tier)),
        },
    )


def _items_table(cat: _Catalogue, items: _Items) -> pa.Table:
    return _make_table(
        schemas.ITEMS,
        {
            "item_id": items.ids,
            "title": items.title,
            "category_id": cat.cat_ids.take(pa.array(items.category)),
            "category_path": cat.cat_paths.take(pa.array(items.category)),
            "brand": cat.brands.take(pa.array(items.brand)),
            "price": pa.array(items.price),
        },
    ).take(pa.array(items.by_number))  # rows in id order
