"""Behaviour constants of the synthetic shop: persona shares and parameters, the planted signal's
effects, channels, platforms and the diurnal profile of session starts.

Shares are of the non-bot population; bots are ``BOT_SHARE`` of all users on top.
"""

from __future__ import annotations

import numpy as np

PERSONAS: tuple[str, ...] = ("loyal", "bargain", "window", "new", "churning", "bot")
PERSONA_SHARES: dict[str, float] = {
    "loyal": 0.15,  # loyal high spenders: frequent visits, frequent large orders
    "bargain": 0.22,  # bargain hunters: coupon searches, discounts, abandoned carts
    "window": 0.33,  # window shoppers: browse a lot, rarely buy
    "new": 0.12,  # new users: sign up inside the window
    "churning": 0.18,  # churning users: activity fades to zero in the second half
}
BOT_SHARE = 0.002  # crawlers: hundreds of regular views a day, never buy

_LOYAL, _BARGAIN, _WINDOW, _NEW, _CHURN, _BOT = range(6)

# Per-persona parameters, indexed by persona code (bots are generated separately; their row is unused).
#                          loyal  bargain window  new   churn  bot
_INTENT_MEAN = np.array([0.60, 0.00, -0.70, 0.10, 0.20, 0.0])  # mean of the user level b_u
_INTENT_SD = np.array([1.00, 1.00, 0.90, 1.00, 1.00, 0.0])  # scale of the AR(1) part
_PHI = np.array([0.93, 0.90, 0.92, 0.90, 0.92, 0.0])  # day-to-day persistence of intent
_SESSION_RATE = np.array([0.22, 0.12, 0.08, 0.13, 0.11, 0.0])  # sessions per day at x = 0
_BUY_BASE = np.array([-3.4, -3.7, -4.9, -3.6, -3.5, -99.0])  # purchase-day logit at x = 0
_CART_BASE = np.array([-3.2, -2.8, -3.7, -3.3, -3.3, -99.0])  # add-to-cart logit per view at x = 0
_FAV_BASE = np.array([-3.2, -3.3, -2.5, -3.1, -3.2, -99.0])  # favourite logit per view at x = 0
_INTENT_QUERY_BASE = np.array([-4.0, -3.0, -4.0, -4.0, -4.0, -99.0])  # intent-term search logit
_VIEWS_PER_SESSION = np.array([3.0, 3.5, 4.5, 3.0, 2.5, 0.0])  # mean interactions beyond the first
_DISCOUNT_SHARE = np.array([0.10, 0.55, 0.15, 0.30, 0.12, 0.0])  # order lines with a discount
_REVIEW_SHARE = np.array([0.30, 0.15, 0.20, 0.18, 0.12, 0.0])  # paid lines that get a review

# Planted signal: effects of intent x, of the research phase before a purchase and of rising intent.
_SESSION_INTENT = 0.5  # log sessions per day per unit of intent
_SESSION_RESEARCH = 0.6  # extra log sessions per day while researching a purchase
_BUY_INTENT = 1.3  # purchase-day logit per unit of intent
_CART_INTENT = 0.6  # add-to-cart logit per unit of intent
_CART_RESEARCH = 0.4  # extra add-to-cart logit while researching
_CART_CHECKOUT = 1.0  # extra add-to-cart logit in a checkout session
_FAV_INTENT = 0.5  # favourite logit per unit of intent
_SEARCH_RESEARCH = 1.0  # extra logit of searching in a session while researching
_INTENT_QUERY_RISE = 0.8  # intent-term query logit per unit of intent rise over four days
_INTENT_QUERY_RESEARCH = 3.0  # extra intent-term query logit while researching
_PROMO_RESEARCH = 2.2  # extra logit of viewing a promotion item while researching

_ORDER_STATUS_SHARE = {"paid": 0.90, "refunded": 0.07, "cancelled": 0.03}
_CHANNELS = ("organic", "ads", "email", "social", "direct")
_CHANNEL_SHARE = np.array([0.40, 0.18, 0.07, 0.10, 0.25])
_BARGAIN_CHANNEL_SHARE = np.array([0.28, 0.27, 0.20, 0.10, 0.15])  # bargain hunters follow promotions
_PLATFORMS = ("app", "web", "mini_program")
_PLATFORM_SHARE = np.array([0.55, 0.25, 0.20])
_ANONYMOUS_SESSION_SHARE = 0.08  # logged-out sessions among those without checkout
_RESEARCH_DAYS = 3  # days before a purchase in which the user researches it
_HOUR_WEIGHTS = np.array(
    [0.6, 0.35, 0.2, 0.15, 0.15, 0.2, 0.5, 1.0, 1.6, 2.2, 2.6, 3.0,
     3.6, 3.2, 2.8, 2.8, 2.9, 3.0, 3.4, 4.2, 5.2, 5.6, 4.6, 2.4]
)  # local hour-of-day profile of session starts: lunch and evening peaks

_US_PER_SECOND = 1_000_000
_US_PER_DAY = 86_400 * _US_PER_SECOND
