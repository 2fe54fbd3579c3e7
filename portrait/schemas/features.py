"""Contracts of the derived tables: the daily rollups, their bookkeeping and ``user_features``."""

from __future__ import annotations

from pyspark.sql import types as T

from portrait.schemas.contract import TableContract, _col

WINDOWS_DAYS: tuple[int, ...] = (1, 7, 30, 90)
# Event types counted per window in user_features, and the name each count gets (``<name>_<w>d``).
COUNTED_EVENTS: dict[str, str] = {"view": "views", "search": "searches", "cart": "carts", "fav": "favs", "buy": "buys"}
DAYPARTS: tuple[str, ...] = ("night", "morning", "afternoon", "evening")  # local hours 0-5, 6-11, 12-17, 18-23
# Nested types keep Spark's default nullable elements: Spark cannot cast into non-nullable elements.
_COUNT_MAP = T.MapType(T.StringType(), T.LongType())
_WEIGHT_MAP = T.MapType(T.StringType(), T.DoubleType())
_SCORED_KEYS = T.ArrayType(T.StructType([T.StructField("key", T.StringType()), T.StructField("score", T.DoubleType())]))

USER_DAILY_ACTIVITY = TableContract(
    name="user_daily_activity",
    description="Per-person, per-day rollup of clickstream, orders and text, computed once per day; every "
                "window feature of user_features is a sum or merge over these rows.",
    schema=T.StructType(
        [
            _col("user_id", T.StringType(), "Person id (stitched when an identity graph exists).", False),
            _col("events", T.LongType(), "Clickstream events on dt.", False),
            _col("views", T.LongType(), "View events on dt.", False),
            _col("searches", T.LongType(), "Search events on dt.", False),
            _col("carts", T.LongType(), "Add-to-cart events on dt.", False),
            _col("remove_carts", T.LongType(), "Remove-from-cart events on dt.", False),
            _col("favs", T.LongType(), "Favourite events on dt.", False),
            _col("buys", T.LongType(), "Purchase events on dt.", False),
            _col("sessions", T.LongType(), "Sessions started on dt (an event after an inactivity gap longer than features.session_gap_minutes, or the person's first event); a session running past midnight is counted on the day it started.", False),
            _col("bounce_sessions", T.LongType(), "Sessions started on dt with no further event of theirs on dt.", False),
            _col("session_seconds", T.DoubleType(), "Seconds spent in sessions on dt: the sum of in-session gaps ending on dt.", False),
            _col("search_segments", T.LongType(), "Parts of sessions on dt that contain a search.", False),
            _col("search_buy_segments", T.LongType(), "Of those, parts that also contain a purchase event.", False),
            _col("gap_count", T.LongType(), "In-session gaps between consecutive events ending on dt (their sum is session_seconds).", False),
            _col("gap_seconds_sumsq", T.DoubleType(), "Sum of their squares (for the regularity of bots).", False),
            _col("first_event_time", T.TimestampType(), "First event on dt; null when the person only ordered."),
            _col("last_event_time", T.TimestampType(), "Last event on dt; null when the person only ordered."),
            _col("night_events", T.LongType(), "Events at local hours 0-5.", False),
            _col("morning_events", T.LongType(), "Events at local hours 6-11.", False),
            _col("afternoon_events", T.LongType(), "Events at local hours 12-17.", False),
            _col("evening_events", T.LongType(), "Events at local hours 18-23.", False),
            _col("platform_events", _COUNT_MAP, "Events per client platform.", False),
            _col("landing_channels", _COUNT_MAP, "Sessions started on dt per channel of their first event.", False),
            _col("category_weights", _WEIGHT_MAP, "Interest weight per category: events weighted by features.affinity_weights.", False),
            _col("brand_weights", _WEIGHT_MAP, "Interest weight per brand, weighted the same way.", False),
            _col("price_percentile_sum", T.DoubleType(), "Sum over priced view/cart/buy events of the item price's percentile within its category (catalogue prices).", False),
            _col("price_percentile_count", T.LongType(), "Number of events in that sum.", False),
            _col("paid_orders", T.LongType(), "Distinct orders placed on dt that are paid.", False),
            _col("paid_amount", T.DoubleType(), "Their amount: quantity × unit price − discount.", False),
            _col("discounted_orders", T.LongType(), "Paid orders on dt with a discount on any line.", False),
            _col("orders", T.LongType(), "Distinct orders placed on dt, any status.", False),
            _col("refunded_orders", T.LongType(), "Orders placed on dt now refunded.", False),
            _col("cancelled_orders", T.LongType(), "Orders placed on dt now cancelled.", False),
            _col("bought_categories", T.ArrayType(T.StringType()), "Distinct categories of paid order lines on dt.", False),
            _col("tokens", T.ArrayType(T.StringType()), "Text tokens of dt, newest first: searches, titles of items acted on, reviews; segmented, capped at features.max_tokens_per_user.", False),
            _col("bot_day", T.BooleanType(), "More than features.bot_max_events_per_day events on dt: sessions and text are not computed for the day.", False),
            _col("dt", T.DateType(), "Activity date in the configured time zone; partition column.", False),
        ]
    ),
    partition_by=("dt",),
    key=("user_id", "dt"),
)


ROLLUP_INPUTS = TableContract(
    name="rollup_inputs",
    description="How many input rows the stored rollup of each day was computed from: one row each time a day "
                "is rolled up (or an erasure removes rows of it); the newest row of a day describes its stored "
                "rollup. A day whose inputs now hold other counts (late events, a deletion) is rolled up again.",
    schema=T.StructType(
        [
            _col("dt", T.DateType(), "The rolled-up day (a dt of user_daily_activity).", False),
            _col("clickstream_rows", T.LongType(), "clickstream rows of dt when the rollup was computed.", False),
            _col("previous_day_clickstream_rows", T.LongType(), "clickstream rows of the day before dt (sessions running over midnight start there).", False),
            _col("orders_rows", T.LongType(), "orders rows (lines) of dt.", False),
            _col("reviews_rows", T.LongType(), "reviews rows of dt (0 without a reviews table).", False),
            _col("recorded_at", T.TimestampType(), "When the counts were taken, just before the rollup read its inputs, or when an erasure adjusted them (UTC instant).", False),
        ]
    ),
    key=("dt", "recorded_at"),
)


def _window_columns() -> list[T.StructField]:
    columns = []
    for window in WINDOWS_DAYS:
        columns.append(_col(f"events_{window}d", T.LongType(), f"Clickstream events in the {window} days to dt.", False))
        for event_type, name in COUNTED_EVENTS.items():
            columns.append(_col(f"{name}_{window}d", T.LongType(), f"{event_type} events in the {window} days to dt.", False))
    return columns


USER_FEATURES = TableContract(
    name="user_features",
    description="Per-user features as of the end of date dt, using only data up to then (families in docs/FEATURES.md).",
    schema=T.StructType(
        [
            _col("user_id", T.StringType(), "Person id.", False),
            # RFM and value
            _col("days_since_first_event", T.IntegerType(), "Days from the first event or order in the 90 days to dt (tenure proxy).", False),
            _col("days_since_last_event", T.IntegerType(), "Days from the last event or order in the 90 days to dt (0 = on dt).", False),
            _col("days_since_last_order", T.IntegerType(), "Recency: days from the last paid order in the 90 days to dt; null if none."),
            _col("orders_30d", T.LongType(), "Frequency: distinct paid orders in the 30 days to dt.", False),
            _col("spend_30d", T.DoubleType(), "Monetary: paid spend after discount in the 30 days to dt.", False),
            _col("orders_90d", T.LongType(), "Distinct paid orders in the 90 days to dt.", False),
            _col("spend_90d", T.DoubleType(), "Paid spend after discount in the 90 days to dt.", False),
            _col("avg_order_value_90d", T.DoubleType(), "spend_90d / orders_90d; null without paid orders."),
            _col("mean_days_between_orders_90d", T.DoubleType(), "Days from the first to the last paid-order day over (order days - 1); null with fewer than two order days."),
            _col("repeat_purchase_rate_90d", T.DoubleType(), "Share of bought categories bought on two or more days in 90 days; null without paid orders."),
            _col("discount_order_share_90d", T.DoubleType(), "Share of paid orders in 90 days with a discount; null without paid orders."),
            _col("refund_rate_90d", T.DoubleType(), "Refunded or cancelled orders over all orders placed in 90 days; null without orders."),
            # behaviour
            *_window_columns(),
            _col("active_days_7d", T.LongType(), "Days with at least one event in the 7 days to dt.", False),
            _col("active_days_30d", T.LongType(), "Days with at least one event in the 30 days to dt.", False),
            _col("active_days_90d", T.LongType(), "Days with at least one event in the 90 days to dt.", False),
            _col("sessions_30d", T.LongType(), "Sessions started in the 30 days to dt.", False),
            _col("avg_session_minutes_30d", T.DoubleType(), "Minutes in sessions per session, 30 days; null without sessions."),
            _col("events_per_session_30d", T.DoubleType(), "Events per session, 30 days (bot days excluded); null without sessions."),
            _col("bounce_rate_30d", T.DoubleType(), "Share of sessions with a single event, 30 days; null without sessions."),
            _col("view_to_cart_rate_30d", T.DoubleType(), "carts_30d / views_30d; null without views."),
            _col("cart_to_buy_rate_30d", T.DoubleType(), "buys_30d / carts_30d, at most 1; null without carts."),
            _col("cart_abandonment_rate_30d", T.DoubleType(), "1 - cart_to_buy_rate_30d; null without carts."),
            _col("search_to_buy_rate_30d", T.DoubleType(), "Share of session parts with a search that also have a purchase, 30 days; null without searches."),
            # preferences
            _col("top_category_30d", T.StringType(), "Category with most events in the 30 days to dt (ties: larger id)."),
            _col("top_categories", _SCORED_KEYS, "Top features.top_k categories by interest score: event weights decayed with features.affinity_half_life_days over 90 days, highest first.", False),
            _col("top_brands", _SCORED_KEYS, "Top features.top_k brands by the same decayed interest score.", False),
            _col("price_percentile_90d", T.DoubleType(), "Average percentile (0-1) of the prices the user looked at within their categories, 90 days; null without priced events."),
            _col("price_tier", T.StringType(), "low, mid or high from price_percentile_90d and features.price_tier_edges; null when unknown."),
            *[_col(f"{part}_share_30d", T.DoubleType(), f"Share of events in the {part} (local time), 30 days; null without events.") for part in DAYPARTS],
            _col("preferred_daypart", T.StringType(), "Daypart with most events in 30 days (ties: earlier daypart); null without events."),
            _col("weekend_share_30d", T.DoubleType(), "Share of events on Saturdays and Sundays, 30 days; null without events."),
            _col("preferred_platform", T.StringType(), "Platform with most events in 30 days (ties: smaller name); null without events."),
            _col("preferred_channel", T.StringType(), "Channel that started most sessions in 30 days (ties: smaller name); null without sessions."),
            # risk and lifecycle
            _col("events_per_active_day_30d", T.DoubleType(), "events_30d / active_days_30d; null without events."),
            _col("inter_event_gap_cv_30d", T.DoubleType(), "Coefficient of variation of in-session gaps, 30 days (low = machine-like regularity); null with fewer than features.bot_min_gaps gaps."),
            _col("bot_suspect", T.BooleanType(), "Event rate above features.bot_events_per_active_day, a bot day, or inter-event regularity below features.bot_max_gap_cv.", False),
            _col("lifecycle_stage", T.StringType(), "new, active, sleeping or churned by the features.lifecycle rules.", False),
            # text
            _col("text_document", T.StringType(), "Space-separated tokens of the user's searches, item titles acted on and reviews in the features.text_window_days to dt, newest day first, capped at features.max_tokens_per_user."),
            _col("dt", T.DateType(), "Feature date: features describe the user as of the end of this date.", False),
        ]
    ),
    partition_by=("dt",),
    key=("user_id", "dt"),
)

# The purchase history every row of a date's population carries (portrait/features/population.py), from
# customer_value; user_portrait repeats them.
PURCHASE_HISTORY: tuple[tuple[str, str], ...] = (
    ("days_since_last_purchase", "Days from the last paid order in value.retention_days to dt (recency over the "
                                 "whole purchase history, where user_features sees 90 days); null without one."),
    ("purchase_days", "Days with a paid order in value.retention_days to dt; null without one."),
)

# The value columns every customer_value row carries and user_portrait repeats for its persons.
VALUE_PREDICTIONS: tuple[tuple[str, str], ...] = (
    ("p_alive", "Probability the customer has not dropped out (BG/NBD); 1 without a repeat purchase."),
    ("expected_purchases_30d", "Expected purchase days in the 30 days after dt (BG/NBD)."),
    ("expected_purchases_90d", "Expected purchase days in the 90 days after dt (BG/NBD)."),
    ("expected_purchases_365d", "Expected purchase days in the 365 days after dt (BG/NBD)."),
    ("expected_order_value", "Expected value of a purchase day (Gamma-Gamma): the customer's mean shrunk towards the population's."),
    ("clv", "Expected margin over value.clv_periods periods of 30 days after dt, discounted by value.discount_rate per period."),
)

CUSTOMER_VALUE = TableContract(
    name="customer_value",
    description="Every customer with a paid order in value.retention_days to dt: purchase history summary and "
                "its BG/NBD and Gamma-Gamma predictions (null when too few customers to fit).",
    schema=T.StructType(
        [
            _col("user_id", T.StringType(), "Person id (stitched when an identity graph exists).", False),
            _col("frequency", T.IntegerType(), "Repeat purchase days: days with a paid order after the first, in the retention window.", False),
            _col("recency_days", T.IntegerType(), "Days from the first to the last purchase day.", False),
            _col("age_days", T.IntegerType(), "Days from the first purchase day to dt.", False),
            _col("mean_repeat_value", T.DoubleType(), "Mean paid amount of the repeat purchase days; null without one."),
            *[_col(name, T.DoubleType(), f"{comment} Null when the models were not fitted.") for name, comment in VALUE_PREDICTIONS],
            _col("value_model_run_id", T.StringType(), "MLflow run of the fit the predictions come from; null when not fitted."),
            _col("dt", T.DateType(), "Date the history runs to (end of day); partition column.", False),
        ]
    ),
    partition_by=("dt",),
    key=("user_id", "dt"),
    checks=(("valid_value", "frequency >= 0 AND recency_days BETWEEN 0 AND age_days "
                            "AND (p_alive IS NULL OR p_alive BETWEEN 0 AND 1) AND (clv IS NULL OR clv >= 0)"),),
)
