"""A second, independent implementation of ``user_features`` in pandas, straight from raw events.

It is the test oracle for the rollup path (portrait/features/rollups.py + windows.py): written from the
definitions in docs/FEATURES.md, event by event, with no rollup and no Spark, so a bug in either
implementation shows up as a difference. Only jieba segmentation is shared (it is tested on its own).
Timestamps are naive local times (what ``toPandas`` returns in the configured session time zone).
"""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd

from portrait.config import FeaturesConfig
from portrait.features.text import _segment_series
from portrait.schemas import USER_FEATURES

# The oracle's own constants, written from docs/FEATURES.md (not imported from the product, so a changed
# definition there shows up as a difference here).
LOOKBACK = 90
WINDOWS_DAYS = (1, 7, 30, 90)
# Event type → the word in the count columns (views_7d, searches_30d, ...).
COUNTED_EVENTS = {"view": "views", "search": "searches", "cart": "carts", "fav": "favs", "buy": "buys"}
# Local hours 0-5, 6-11, 12-17, 18-23; ties go to the earlier daypart.
DAYPARTS = ("night", "morning", "afternoon", "evening")
# Events whose item title enters the text document (searches contribute their query instead).
TEXT_EVENT_TYPES = ("view", "cart", "fav", "buy")


def _daypart(hour: int) -> str:
    return DAYPARTS[min(hour // 6, 3)]


def _ratio(numerator, denominator):
    return numerator / denominator if denominator else None


def _top_key(values: dict[str, float]) -> str | None:
    positive = [(v, k) for k, v in values.items() if v > 0]
    return max(positive)[1] if positive else None


def reference_features(day: dt.date, settings: FeaturesConfig, clickstream: pd.DataFrame, orders: pd.DataFrame,
                       items: pd.DataFrame | None, reviews: pd.DataFrame | None) -> pd.DataFrame:
    """One row per person with an event, order or review in the 90 days to ``day``: USER_FEATURES columns."""
    gap_limit = settings.session_gap_minutes * 60
    events = clickstream[clickstream["user_id"].notna()].copy()
    events["age"] = events["dt"].map(lambda d: (day - d).days)
    context = events[(events["age"] >= 0) & (events["age"] <= LOOKBACK)]          # includes the day before
    per_day = context.groupby(["user_id", "dt"]).size()
    bot_days = set(per_day[per_day > settings.bot_max_events_per_day].index)
    is_bot_day = pd.Series([(u, d) in bot_days for u, d in zip(context["user_id"], context["dt"], strict=True)],
                           index=context.index, dtype=bool)
    human_context = context[~is_bot_day]
    window = context[context["age"] < LOOKBACK]
    order_lines = orders.copy()
    order_lines["age"] = order_lines["dt"].map(lambda d: (day - d).days)
    order_lines = order_lines[(order_lines["age"] >= 0) & (order_lines["age"] < LOOKBACK)]
    review_rows = pd.DataFrame(columns=["user_id", "dt", "review_time", "review_text", "age"])
    if reviews is not None:
        review_rows = reviews.copy()
        review_rows["age"] = review_rows["dt"].map(lambda d: (day - d).days)
        review_rows = review_rows[(review_rows["age"] >= 0) & (review_rows["age"] < LOOKBACK)]

    percentile: dict[str, float] = {}
    titles: dict[str, str] = {}
    if items is not None:
        priced = items[items["price"].notna() & items["category_id"].notna()]
        for _, group in priced.groupby("category_id"):
            ranks = group["price"].rank(method="min")
            for item_id, rank in zip(group["item_id"], ranks, strict=True):
                percentile[item_id] = 0.5 if len(group) == 1 else (rank - 1) / (len(group) - 1)
        titles = {r.item_id: r.title for r in items.itertuples() if isinstance(r.title, str)}

    people = sorted(set(window["user_id"]) | set(order_lines["user_id"]) | set(review_rows["user_id"]))
    rows = []
    for person in people:
        mine = window[window["user_id"] == person]
        row: dict[str, object] = {"user_id": person}
        ages = list(mine["age"]) + list(order_lines.loc[order_lines["user_id"] == person, "age"]) + list(
            review_rows.loc[review_rows["user_id"] == person, "age"])
        row["days_since_first_event"], row["days_since_last_event"] = max(ages), min(ages)

        # Orders: one record per order.
        lines = order_lines[order_lines["user_id"] == person]
        paid_orders, all_orders = [], 0
        returned = 0
        bought_days: dict[str, set] = {}
        for _, order in lines.groupby("order_id"):
            all_orders += 1
            statuses = set(order["status"])
            returned += int("refunded" in statuses) + int("cancelled" in statuses)
            paid = order[order["status"] == "paid"]
            if len(paid):
                amount = float((paid["quantity"] * paid["unit_price"] - paid["discount"]).sum())
                # An order belongs to the day of its (latest) line: the smallest age.
                paid_orders.append((int(order["age"].min()), amount, bool((paid["discount"] > 0).any())))
                for category in paid["category_id"].dropna():
                    bought_days.setdefault(category, set()).add(order["dt"].max())
        order_ages = [age for age, _, _ in paid_orders]
        row["days_since_last_order"] = min(order_ages) if order_ages else None
        for w in (30, 90):
            in_w = [(a, m) for a, m, _ in paid_orders if a < w]
            row[f"orders_{w}d"] = len(in_w)
            row[f"spend_{w}d"] = float(sum(m for _, m in in_w))
        row["avg_order_value_90d"] = _ratio(row["spend_90d"], row["orders_90d"])
        order_day_ages = sorted(set(order_ages))
        row["mean_days_between_orders_90d"] = (
            (max(order_day_ages) - min(order_day_ages)) / (len(order_day_ages) - 1) if len(order_day_ages) >= 2
            else None)
        row["repeat_purchase_rate_90d"] = _ratio(sum(1 for d in bought_days.values() if len(d) >= 2),
                                                 len(bought_days))
        row["discount_order_share_90d"] = _ratio(sum(1 for *_, disc in paid_orders if disc), len(paid_orders))
        row["refund_rate_90d"] = _ratio(returned, all_orders)

        # Behaviour counts (bot days included: they are counted, just not sessionised).
        for w in WINDOWS_DAYS:
            in_w = mine[mine["age"] < w]
            row[f"events_{w}d"] = len(in_w)
            for event_type, name in COUNTED_EVENTS.items():
                row[f"{name}_{w}d"] = int((in_w["event_type"] == event_type).sum())
        for w in (7, 30, 90):
            row[f"active_days_{w}d"] = mine.loc[mine["age"] < w, "dt"].nunique()

        # Sessions over human days, in time order, with the day before the window as context.
        humans = human_context[human_context["user_id"] == person]
        humans = humans.sort_values(["event_time", "event_id"])
        times = list(humans["event_time"])
        dts, kinds, channels = list(humans["dt"]), list(humans["event_type"]), list(humans["channel"])
        ages_h = list(humans["age"])
        sessions = bounces = seconds = 0
        gaps: list[float] = []
        parts: dict[tuple[int, dt.date], set] = {}
        landing: dict[str, int] = {}
        session_number = 0
        for k, time in enumerate(times):
            gap = None if k == 0 else (time - times[k - 1]).total_seconds()
            start = gap is None or gap > gap_limit
            session_number += int(start)
            if ages_h[k] >= 30:
                continue
            if start:
                sessions += 1
                follows = (k + 1 < len(times) and dts[k + 1] == dts[k]
                           and (times[k + 1] - time).total_seconds() <= gap_limit)
                bounces += int(not follows)
                if isinstance(channels[k], str):
                    landing[channels[k]] = landing.get(channels[k], 0) + 1
            else:
                seconds += gap
                gaps.append(gap)
            parts.setdefault((session_number, dts[k]), set()).add(kinds[k])
        human_events_30 = int((humans["age"] < 30).sum())
        row["sessions_30d"] = sessions
        row["avg_session_minutes_30d"] = _ratio(seconds / 60.0, sessions)
        row["events_per_session_30d"] = _ratio(human_events_30, sessions)
        row["bounce_rate_30d"] = _ratio(bounces, sessions)
        row["view_to_cart_rate_30d"] = _ratio(row["carts_30d"], row["views_30d"])
        cart_to_buy = min(row["buys_30d"] / row["carts_30d"], 1.0) if row["carts_30d"] else None
        row["cart_to_buy_rate_30d"] = cart_to_buy
        row["cart_abandonment_rate_30d"] = None if cart_to_buy is None else 1.0 - cart_to_buy
        searched = [kinds_ for kinds_ in parts.values() if "search" in kinds_]
        row["search_to_buy_rate_30d"] = _ratio(sum(1 for k in searched if "buy" in k), len(searched))

        # Preferences.
        weights = settings.affinity_weights
        recent_category: dict[str, float] = {}
        decayed = {"category": {}, "brand": {}}
        platforms: dict[str, int] = {}
        for r in mine.itertuples():
            weight = weights.get(r.event_type, 0.0)
            decay = 0.5 ** (r.age / settings.affinity_half_life_days)
            for kind, key in (("category", r.category_id), ("brand", r.brand)):
                if isinstance(key, str) and weight > 0:
                    decayed[kind][key] = decayed[kind].get(key, 0.0) + weight * decay
            if r.age < 30:
                if isinstance(r.category_id, str) and weight > 0:
                    recent_category[r.category_id] = recent_category.get(r.category_id, 0.0) + weight
                if isinstance(r.platform, str):
                    platforms[r.platform] = platforms.get(r.platform, 0) + 1
        row["top_category_30d"] = _top_key(recent_category)
        for kind, column in (("category", "top_categories"), ("brand", "top_brands")):
            scores = ((round(v, 6), k) for k, v in decayed[kind].items())
            ranked = sorted(((v, k) for v, k in scores if v > 0), reverse=True)[: settings.top_k]
            row[column] = [(k, v) for v, k in ranked]
        priced_events = [percentile[i] for i, t in zip(mine["item_id"], mine["event_type"], strict=True)
                         if t in ("view", "cart", "buy") and i in percentile]
        price = sum(priced_events) / len(priced_events) if priced_events else None
        row["price_percentile_90d"] = price
        low, high = settings.price_tier_edges
        row["price_tier"] = None if price is None else "low" if price < low else "mid" if price < high else "high"
        recent = mine[mine["age"] < 30]
        counts = {part: 0 for part in DAYPARTS}
        for time in recent["event_time"]:
            counts[_daypart(time.hour)] += 1
        for part in DAYPARTS:
            row[f"{part}_share_30d"] = _ratio(counts[part], len(recent))
        row["preferred_daypart"] = (max(DAYPARTS, key=lambda p: (counts[p], -DAYPARTS.index(p)))
                                    if len(recent) else None)
        row["weekend_share_30d"] = _ratio(int(recent["dt"].map(lambda d: d.weekday() >= 5).sum()), len(recent))
        row["preferred_platform"] = _top_key({k: float(v) for k, v in platforms.items()})
        row["preferred_channel"] = _top_key({k: float(v) for k, v in landing.items()})

        # Risk and lifecycle.
        per_active_day = _ratio(row["events_30d"], row["active_days_30d"])
        row["events_per_active_day_30d"] = per_active_day
        cv = None
        if len(gaps) >= settings.bot_min_gaps:
            mean = sum(gaps) / len(gaps)
            if mean > 0:
                variance = max(sum(g * g for g in gaps) / len(gaps) - mean * mean, 0.0)
                cv = math.sqrt(variance) / mean
        row["inter_event_gap_cv_30d"] = cv
        bot_day_recent = any((person, d) in bot_days for d in recent["dt"])
        row["bot_suspect"] = bool((per_active_day or 0) > settings.bot_events_per_active_day or bot_day_recent
                                  or (cv is not None and cv < settings.bot_max_gap_cv))
        rules = settings.lifecycle
        row["lifecycle_stage"] = (
            "new" if row["days_since_first_event"] <= rules.new_max_tenure_days
            else "active" if row["days_since_last_event"] <= rules.active_max_idle_days
            else "sleeping" if row["days_since_last_event"] <= rules.sleeping_max_idle_days
            else "churned")

        # Text: per day, newest text first, capped; then days newest first, capped again.
        texts = []
        human_window = humans[humans["age"] < settings.text_window_days]
        for r in human_window.itertuples():
            if r.event_type == "search" and isinstance(r.search_query, str):
                texts.append((r.dt, r.event_time, r.search_query))
            if r.event_type in TEXT_EVENT_TYPES and r.item_id in titles:
                texts.append((r.dt, r.event_time, titles[r.item_id]))
        for r in review_rows[review_rows["user_id"] == person].itertuples():
            if r.age < settings.text_window_days and isinstance(r.review_text, str):
                texts.append((r.dt, r.review_time, r.review_text))
        distinct_texts = sorted({text for *_, text in texts})
        segmented = _segment_series(pd.Series(distinct_texts, dtype=object), settings.min_token_length)
        tokens = {text: list(words) for text, words in zip(distinct_texts, segmented, strict=True)}
        document: list[str] = []
        for text_day in sorted({d for d, *_ in texts}, reverse=True):
            todays = sorted(((time, text) for d, time, text in texts if d == text_day), reverse=True)
            day_tokens: list[str] = []
            for _time, text in todays:
                day_tokens += tokens[text]
            document += day_tokens[: settings.max_tokens_per_user]
        row["text_document"] = " ".join(document[: settings.max_tokens_per_user])
        row["dt"] = day
        rows.append(row)
    return pd.DataFrame(rows, columns=USER_FEATURES.columns)
