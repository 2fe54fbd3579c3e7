"""Behaviour and RFM features as of a date: pure DataFrame → DataFrame transformations.

Point in time: ``dt`` is the event's date in the configured time zone, so "everything before the end of
day D" is exactly ``dt <= D``. Every function here filters on ``dt`` first, which is also the partition
column, so Delta reads only the days a window needs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

LOOKBACK_DAYS = 90
ACTIVITY_WINDOWS_DAYS = (7, 30)
SPEND_WINDOWS_DAYS = (30, 90)
# Event types counted per window, and the name each count gets in user_features.
COUNTED_EVENTS = {"view": "views", "search": "searches", "cart": "carts", "fav": "favs", "buy": "buys"}

Transformation = Callable[[DataFrame], DataFrame]


def _date_lit(day: dt.date) -> Column:
    return F.lit(day).cast("date")


def within_days(day: dt.date, days: int) -> Column:
    """True for rows whose ``dt`` lies in the ``days`` days ending on ``day`` (both ends included)."""
    return (F.col("dt") <= _date_lit(day)) & (F.col("dt") > F.date_sub(_date_lit(day), days))


def events_until(day: dt.date, days: int) -> Transformation:
    """Keep rows of the ``days`` days ending on ``day``; nothing after ``day`` can pass."""

    def transform(frame: DataFrame) -> DataFrame:
        return frame.where(within_days(day, days))

    return transform


def activity_features(day: dt.date) -> Transformation:
    """Per-user event counts per type and window, active days, first/last activity and top category.

    Input: clickstream rows (any dates; only logged-in events of the 90 days to ``day`` are used).
    Output columns: ``user_id``, ``<type>_<w>d`` for each counted type and window, ``active_days_30d``,
    ``days_since_first_event``, ``days_since_last_event``, ``top_category_30d``.
    """

    def transform(events: DataFrame) -> DataFrame:
        recent = events.transform(events_until(day, LOOKBACK_DAYS)).where(F.col("user_id").isNotNull())
        counts = [
            F.count(F.when(within_days(day, window) & (F.col("event_type") == event_type), True))
            .alias(f"{name}_{window}d")
            for window in ACTIVITY_WINDOWS_DAYS
            for event_type, name in COUNTED_EVENTS.items()
        ]
        per_user = recent.groupBy("user_id").agg(
            *counts,
            F.count_distinct(F.when(within_days(day, 30), F.col("dt"))).alias("active_days_30d"),
            F.datediff(_date_lit(day), F.min("dt")).alias("days_since_first_event"),
            F.datediff(_date_lit(day), F.max("dt")).alias("days_since_last_event"),
        )
        # Most frequent category in 30 days; ties go to the larger category id so the result is stable.
        top_category = (
            recent.where(within_days(day, 30) & F.col("category_id").isNotNull())
            .groupBy("user_id", "category_id")
            .agg(F.count(F.lit(1)).alias("events"))
            .groupBy("user_id")
            .agg(F.max(F.struct("events", "category_id")).getField("category_id").alias("top_category_30d"))
        )
        return per_user.join(top_category, on="user_id", how="left")

    return transform


def order_features(day: dt.date) -> Transformation:
    """Per-user RFM inputs from paid order lines up to ``day``.

    Output columns: ``user_id``, ``days_since_last_order`` (recency), ``orders_<w>d`` (frequency: distinct
    orders) and ``spend_<w>d`` (monetary: quantity × unit price − discount) for 30 and 90 days, and
    ``days_since_first_order``, used to complete the user's first-activity date.
    """

    def transform(orders: DataFrame) -> DataFrame:
        paid = orders.transform(events_until(day, LOOKBACK_DAYS)).where(F.col("status") == "paid")
        # One row per order first, so order counts need no COUNT(DISTINCT).
        per_order = paid.groupBy("user_id", "order_id").agg(
            F.max("dt").alias("dt"),
            F.sum(F.col("quantity") * F.col("unit_price") - F.col("discount")).alias("amount"),
        )
        windows = []
        for window in SPEND_WINDOWS_DAYS:
            in_window = within_days(day, window)
            windows += [
                F.count(F.when(in_window, True)).alias(f"orders_{window}d"),
                F.coalesce(F.sum(F.when(in_window, F.col("amount"))), F.lit(0.0)).alias(f"spend_{window}d"),
            ]
        return per_order.groupBy("user_id").agg(
            F.datediff(_date_lit(day), F.max("dt")).alias("days_since_last_order"),
            F.datediff(_date_lit(day), F.min("dt")).alias("days_since_first_order"),
            *windows,
        )

    return transform


def combine_activity_and_orders(orders_per_user: DataFrame) -> Transformation:
    """Join activity and order features: every user with an event or a paid order in the lookback.

    Users with orders but no logged events get zero counts; first/last activity then come from orders.
    """

    def transform(activity: DataFrame) -> DataFrame:
        joined = activity.join(orders_per_user, on="user_id", how="full")
        zero_filled = {c: 0 for c in joined.columns if c.split("_")[0] in COUNTED_EVENTS.values()}
        zero_filled.update({"active_days_30d": 0, "orders_30d": 0, "orders_90d": 0,
                            "spend_30d": 0.0, "spend_90d": 0.0})
        return (
            joined.fillna(zero_filled)
            .withColumn(
                "days_since_first_event",
                F.greatest("days_since_first_event", "days_since_first_order").cast("int"),
            )
            .withColumn(
                "days_since_last_event",
                F.least("days_since_last_event", "days_since_last_order").cast("int"),
            )
            .drop("days_since_first_order")
        )

    return transform
