"""Every table's contract: columns, types, nullability, partitioning and column meanings.

This module is the single source for table layouts. ``docs/DATA.md`` documents the same contracts for
people, and a test keeps the two in step. Reads pass these schemas explicitly; writes select exactly
these columns, so a table never drifts by accident.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import types as T

# Event types of the clickstream contract.  "buy" is the purchase event; orders carry the money.
EVENT_TYPES: tuple[str, ...] = ("view", "search", "cart", "remove_cart", "fav", "buy")
ORDER_STATUSES: tuple[str, ...] = ("paid", "refunded", "cancelled")


def _col(name: str, data_type: T.DataType, comment: str, nullable: bool = True) -> T.StructField:
    return T.StructField(name, data_type, nullable, metadata={"comment": comment})


# Column names that hold a raw person id wherever they appear (see TableContract.person_columns).
PERSON_ID_COLUMNS: tuple[str, ...] = ("user_id", "anonymous_id", "person_id")
PERSON_KEY_COLUMN = "person_key"


@dataclass(frozen=True)
class TableContract:
    """A Delta table's layout: schema with column comments, partition columns and key."""

    name: str
    description: str
    schema: T.StructType
    partition_by: tuple[str, ...] = ()
    key: tuple[str, ...] = ()
    optional: bool = False
    # Delta CHECK constraints: (name, SQL condition every row must satisfy); part of the table's first commit.
    checks: tuple[tuple[str, str], ...] = ()
    # Delta table properties (name, value) set when the table is created; `portrait maintain` adds missing ones.
    properties: tuple[tuple[str, str], ...] = ()
    # Personal data (docs/SECURITY.md). Columns holding a raw person id (user, device or stitched person id):
    # None derives them from the column names in PERSON_ID_COLUMNS, so a new table with a `user_id` column is
    # covered by `portrait forget` without anything to declare; set a tuple where the names differ.
    person_columns: tuple[str, ...] | None = None
    # Free-text columns that may contain a raw id anywhere in the text (e.g. a quarantined source row).
    person_text_columns: tuple[str, ...] = ()
    # Read by BI tools: must carry no raw id, only `person_key` (HMAC, portrait.privacy); a test scans them.
    bi_facing: bool = False

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.schema.fields]

    @property
    def id_columns(self) -> tuple[str, ...]:
        """Columns holding a raw person id, erased by ``portrait forget``."""
        if self.person_columns is not None:
            return self.person_columns
        return tuple(c for c in self.columns if c in PERSON_ID_COLUMNS)

    @property
    def person_key_columns(self) -> tuple[str, ...]:
        """Columns holding the pseudonymised person key (HMAC of a person id)."""
        return tuple(c for c in self.columns if c == PERSON_KEY_COLUMN)

    def comment(self, column: str) -> str:
        return self.schema[column].metadata.get("comment", "")


CLICKSTREAM = TableContract(
    name="clickstream",
    description="Behaviour events from web and app: one row per event.",
    schema=T.StructType(
        [
            _col("event_id", T.StringType(), "Unique id of the event; the deduplication key.", False),
            _col("user_id", T.StringType(), "Logged-in customer id; null for anonymous visitors."),
            _col("anonymous_id", T.StringType(), "Device or cookie id; links anonymous events to a user."),
            _col("session_id", T.StringType(), "Session id from the tracker, when it sends one."),
            _col("event_time", T.TimestampType(), "When the event happened (UTC instant).", False),
            _col("event_type", T.StringType(), "One of view, search, cart, remove_cart, fav, buy.", False),
            _col("item_id", T.StringType(), "Item acted on; null for searches."),
            _col("category_id", T.StringType(), "Leaf category of the item."),
            _col("brand", T.StringType(), "Brand of the item."),
            _col("price", T.DoubleType(), "Listed unit price at event time, in the shop currency."),
            _col("search_query", T.StringType(), "Raw search text for search events (any language)."),
            _col("channel", T.StringType(), "Acquisition channel: organic, ads, email, social, direct."),
            _col("platform", T.StringType(), "Client platform: app, web, mini_program."),
            _col("dt", T.DateType(), "Event date in the configured time zone; partition column.", False),
        ]
    ),
    partition_by=("dt",),
    key=("event_id",),
    checks=(
        ("valid_event", "event_type IN ('view', 'search', 'cart', 'remove_cart', 'fav', 'buy') "
                        "AND (price IS NULL OR price >= 0)"),
    ),
)

ORDERS = TableContract(
    name="orders",
    description="Order lines: one row per item line of an order, with the order's status.",
    schema=T.StructType(
        [
            _col("order_id", T.StringType(), "Order id; an order has one or more lines.", False),
            _col("line_number", T.IntegerType(), "Line number within the order, from 1.", False),
            _col("user_id", T.StringType(), "Customer who placed the order.", False),
            _col("order_time", T.TimestampType(), "When the order was placed (UTC instant).", False),
            _col("status", T.StringType(), "paid, refunded or cancelled (latest known status).", False),
            _col("item_id", T.StringType(), "Item bought on this line.", False),
            _col("category_id", T.StringType(), "Leaf category of the item."),
            _col("quantity", T.IntegerType(), "Units bought on this line (at least 1).", False),
            _col("unit_price", T.DoubleType(), "Price per unit before discount.", False),
            _col("discount", T.DoubleType(), "Discount on the whole line, in currency (0 if none).", False),
            _col("dt", T.DateType(), "Order date in the configured time zone; partition column.", False),
        ]
    ),
    partition_by=("dt",),
    key=("order_id", "line_number"),
    checks=(
        ("valid_order_line", "line_number >= 1 AND quantity >= 1 AND unit_price >= 0 AND discount >= 0 "
                             "AND status IN ('paid', 'refunded', 'cancelled')"),
    ),
)

ITEMS = TableContract(
    name="items",
    description="Item catalogue: one row per item.",
    schema=T.StructType(
        [
            _col("item_id", T.StringType(), "Item id.", False),
            _col("title", T.StringType(), "Item title as shown in the shop (any language)."),
            _col("category_id", T.StringType(), "Leaf category id."),
            _col("category_path", T.StringType(), "Category path from root, separated by ' > '."),
            _col("brand", T.StringType(), "Brand name."),
            _col("price", T.DoubleType(), "Current list price."),
        ]
    ),
    key=("item_id",),
    optional=True,
)

USERS = TableContract(
    name="users",
    description="Registered customers: one row per user.",
    schema=T.StructType(
        [
            _col("user_id", T.StringType(), "Customer id.", False),
            _col("signup_date", T.DateType(), "Registration date."),
            _col("gender", T.StringType(), "Self-declared gender: f, m or null."),
            _col("age_band", T.StringType(), "Age band such as 18-24, 25-34."),
            _col("city_tier", T.StringType(), "City tier 1-5 of the delivery address."),
        ]
    ),
    key=("user_id",),
    optional=True,
)

REVIEWS = TableContract(
    name="reviews",
    description="Product reviews written by customers.",
    schema=T.StructType(
        [
            _col("review_id", T.StringType(), "Review id.", False),
            _col("user_id", T.StringType(), "Author.", False),
            _col("item_id", T.StringType(), "Reviewed item.", False),
            _col("review_time", T.TimestampType(), "When the review was written (UTC instant).", False),
            _col("rating", T.IntegerType(), "Star rating 1-5."),
            _col("review_text", T.StringType(), "Free text of the review (any language)."),
            _col("dt", T.DateType(), "Review date in the configured time zone; partition column.", False),
        ]
    ),
    partition_by=("dt",),
    key=("review_id",),
    optional=True,
)

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
# Delta refuses NOT NULL inside arrays, so the elements are nullable in the schema (never null in practice).
_INPUT_VERSIONS = T.ArrayType(T.StructType([T.StructField("table", T.StringType()),
                                             T.StructField("version", T.LongType())]))

USER_PORTRAIT = TableContract(
    name="user_portrait",
    description="One row per user per date: who they are, segments, interests, propensity and churn with reasons, "
                "risk flags and tags, for marketing and BI.",
    schema=T.StructType(
        [
            # identity
            _col("user_id", T.StringType(), "Customer id (restricted: raw identifier; BI reads person_key).", False),
            _col(PERSON_KEY_COLUMN, T.StringType(), "Pseudonymised person for BI: lower-case hex HMAC-SHA256 of user_id with the pseudonymisation key current when the partition was written (rotation: docs/SECURITY.md).", False),
            # base attributes (users table; null when it has no row for the person)
            _col("gender", T.StringType(), "Self-declared gender from users: f, m or null."),
            _col("age_band", T.StringType(), "Age band from users, e.g. 25-34; null when unknown."),
            _col("city_tier", T.StringType(), "City tier 1-5 of the delivery address from users; null when unknown."),
            _col("tenure_days", T.IntegerType(), "Days from users.signup_date to the feature date; null without a signup date."),
            # segments
            _col("lifecycle_stage", T.StringType(), "new, active, sleeping or churned by the features.lifecycle rules.", False),
            _col("rfm_segment", T.StringType(), "RFM segment code, e.g. champions, at_risk, hibernating, no_purchase.", False),
            _col("rfm_segment_zh", T.StringType(), "Chinese label of rfm_segment: name_zh of the tag rfm_<segment> in the tag registry (the code when it has none).", False),
            _col("rfm_segment_en", T.StringType(), "English label of rfm_segment: name_en of the tag rfm_<segment> (the code when it has none).", False),
            _col("recency_score", T.IntegerType(), "R score 1-5 (5 = bought most recently); 1 if never bought.", False),
            _col("frequency_score", T.IntegerType(), "F score 1-5 over 90-day paid order count.", False),
            _col("monetary_score", T.IntegerType(), "M score 1-5 over 90-day paid spend.", False),
            _col("value_tier", T.StringType(), "high (M score 5), mid (3-4), low (1-2) among buyers; none without a paid order in 90 days.", False),
            # interests and habits
            _col("top_category", T.StringType(), "Category with most events in the last 30 days."),
            _col("top_categories", _SCORED_KEYS, "Top features.top_k categories with their decayed interest scores, highest first (user_features.top_categories).", False),
            _col("top_brands", _SCORED_KEYS, "Top features.top_k brands with their decayed interest scores, highest first.", False),
            _col("price_tier", T.StringType(), "low, mid or high price level of what the user looks at (user_features.price_tier); null when unknown."),
            _col("preferred_daypart", T.StringType(), "Active-time pattern: the daypart with most events in 30 days (local time); null without events."),
            _col("weekend_share_30d", T.DoubleType(), "Active-time pattern: share of events on Saturdays and Sundays, 30 days; null without events."),
            _col("preferred_platform", T.StringType(), "Platform with most events in 30 days; null without events."),
            _col("preferred_channel", T.StringType(), "Channel that started most sessions in 30 days; null without sessions."),
            # model scores
            _col("purchase_propensity", T.DoubleType(), "Model probability of a paid order in the label horizon after dt.", False),
            _col("propensity_decile", T.IntegerType(), "Decile of purchase_propensity among users on dt (10 = highest).", False),
            _col("reason_codes", T.ArrayType(T.StringType(), True), "Top three reasons for purchase_propensity in words, each with its log-odds contribution, e.g. '3 add-to-cart events in the last 7 days (+0.42)'; empty when the model has no explanation.", False),
            _col("churn_score", T.DoubleType(), "Churn model probability of no activity in the model.churn_horizon_days after dt; null when churn is not among model.targets or has no champion."),
            _col("churn_decile", T.IntegerType(), "Decile of churn_score among users on dt (10 = most likely to churn); null with churn_score."),
            _col("churn_reason_codes", T.ArrayType(T.StringType(), True), "Top three reasons for churn_score in words, each with its log-odds contribution; empty without a churn score or explanation.", False),
            # risk flags
            _col("bot_suspect", T.BooleanType(), "Risk flag: machine-like activity (user_features.bot_suspect).", False),
            _col("high_refund_rate", T.BooleanType(), "Risk flag: user_features.refund_rate_90d at or above features.high_refund_rate.", False),
            # audience selection and lineage
            _col("tags", T.ArrayType(T.StringType(), True), "Tag codes that hold for the user on dt, for audience selection.", False),
            _col("model_name", T.StringType(), "Registered model that produced purchase_propensity.", False),
            _col("model_version", T.StringType(), "Registered version of that model in MLflow; null for a model that was not registered."),
            _col("model_run_id", T.StringType(), "MLflow run id of that model.", False),
            _col("churn_model_run_id", T.StringType(), "MLflow run id of the model that produced churn_score; null with churn_score."),
            _col("input_versions", _INPUT_VERSIONS, "Delta version of every input table the run read (clickstream, orders, items, users, reviews, identity_graph), by table name.", False),
            _col("feature_dt", T.DateType(), "Date of the features the portrait is built from.", False),
            _col("dt", T.DateType(), "Portrait date; partition column.", False),
        ]
    ),
    partition_by=("dt",),
    key=("user_id", "dt"),
    checks=(
        ("valid_scores", "recency_score BETWEEN 1 AND 5 AND frequency_score BETWEEN 1 AND 5 "
                         "AND monetary_score BETWEEN 1 AND 5 AND propensity_decile BETWEEN 1 AND 10 "
                         "AND purchase_propensity BETWEEN 0 AND 1 "
                         "AND (churn_score IS NULL OR (churn_score BETWEEN 0 AND 1 AND churn_decile BETWEEN 1 AND 10)) "
                         "AND value_tier IN ('high', 'mid', 'low', 'none')"),
    ),
    # Change Data Feed lets downstream tools (CRM syncs, marketing triggers) read only the rows that changed.
    properties=(("delta.enableChangeDataFeed", "true"),),
)

QUARANTINE = TableContract(
    name="quarantine",
    description="Ingested rows that broke a validation rule: one row per distinct bad source row, never loaded.",
    schema=T.StructType(
        [
            _col("quarantine_id", T.StringType(), "sha2 of format, source file and raw row: the deduplication key, the same in every run.", False),
            _col("ingest_run_id", T.StringType(), "Ingest run that first quarantined the row (see ingest_runs).", False),
            _col("format", T.StringType(), "Source format: taobao, retailrocket, rees46 or generic.", False),
            _col("source_file", T.StringType(), "File the row was read from (full URI).", False),
            _col("raw_row", T.StringType(), "The row as read: the text line, or the record as JSON for Parquet.", False),
            _col("rule", T.StringType(), "First validation rule the row broke, e.g. unknown_event_type.", False),
            _col("detail", T.StringType(), "What was wrong, naming the column and value.", False),
            _col("quarantined_at", T.TimestampType(), "When the row was first quarantined (UTC instant).", False),
        ]
    ),
    key=("quarantine_id",),
    checks=(("rule_not_empty", "length(rule) > 0"),),
    person_text_columns=("raw_row", "detail"),  # detail quotes source values of the row
)

INGEST_RUNS = TableContract(
    name="ingest_runs",
    description="One row per committed ingest run: what was read, accepted, duplicate and quarantined.",
    schema=T.StructType(
        [
            _col("run_id", T.StringType(), "Ingest run id, also stored on the quarantine rows of the run.", False),
            _col("format", T.StringType(), "Source format: taobao, retailrocket, rees46 or generic.", False),
            _col("path", T.StringType(), "File, glob or folder given to the run.", False),
            _col("files", T.IntegerType(), "Number of files read.", False),
            _col("started_at", T.TimestampType(), "Run start (UTC instant).", False),
            _col("finished_at", T.TimestampType(), "Commit of the run's last table write (UTC instant).", False),
            _col("rows_read", T.LongType(), "Data rows read (header and blank lines not counted).", False),
            _col("rows_accepted", T.LongType(), "Valid rows newly added to clickstream.", False),
            _col("rows_duplicate", T.LongType(), "Valid rows already loaded, or repeated within the batch: not added.", False),
            _col("rows_quarantined", T.LongType(), "Rows that broke a rule and went to quarantine.", False),
            _col("quarantined_by_rule", T.MapType(T.StringType(), T.LongType(), True), "Quarantined rows per rule name.", False),
            _col("order_lines_accepted", T.LongType(), "Order lines newly added to orders (derived from purchase events).", False),
            _col("min_dt", T.DateType(), "Earliest event date among accepted rows; null if none."),
            _col("max_dt", T.DateType(), "Latest event date among accepted rows; features from here on may need a re-run."),
            _col("ignored_columns", T.ArrayType(T.StringType(), True), "Source columns present in the files but not used (schema drift).", False),
            _col("missing_optional_columns", T.ArrayType(T.StringType(), True), "Optional source columns absent from the files, loaded as null.", False),
        ]
    ),
    key=("run_id",),
    checks=(("counts_add_up", "rows_read = rows_accepted + rows_duplicate + rows_quarantined"),),
)

IDENTITY_GRAPH = TableContract(
    name="identity_graph",
    description="Identity stitching: the person each user id and device/cookie id belongs to (rebuilt from clickstream).",
    schema=T.StructType(
        [
            _col("id", T.StringType(), "A user_id or an anonymous_id of clickstream.", False),
            _col("id_type", T.StringType(), "user or anonymous.", False),
            _col("person_id", T.StringType(), "Stitched person: the smallest user_id of the id's connected component.", False),
            _col("component_user_ids", T.IntegerType(), "Number of user ids in the component (at most identity.max_ids_per_person).", False),
            _col("component_anonymous_ids", T.IntegerType(), "Number of anonymous ids in the component.", False),
        ]
    ),
    key=("id_type", "id"),
    checks=(("id_type_known", "id_type IN ('user', 'anonymous')"),),
    person_columns=("id", "person_id"),
)

IDENTITY_MERGE_LOG = TableContract(
    name="identity_merge_log",
    description="Identity decisions, each logged once by the first build taking it: merges, refused merges, exclusions.",
    schema=T.StructType(
        [
            _col("build_id", T.StringType(), "First identity build that took the decision.", False),
            _col("built_at", T.TimestampType(), "When that build ran (UTC instant).", False),
            _col("id", T.StringType(), "The user or anonymous id concerned.", False),
            _col("id_type", T.StringType(), "user or anonymous.", False),
            _col("action", T.StringType(), "merged (user id joined another person), refused_over_merge or excluded.", False),
            _col("person_id", T.StringType(), "Person the id was merged into; null when refused or excluded."),
            _col("linked_user_ids", T.IntegerType(), "User ids the id was linked to (directly for a device, via the component otherwise).", False),
            _col("reason", T.StringType(), "Why, in words, with the limit or rule applied.", False),
        ]
    ),
    key=("id_type", "id", "action", "person_id"),
    checks=(("action_known", "action IN ('merged', 'refused_over_merge', 'excluded')"),),
    person_columns=("id", "person_id"),
)

JOB_RUNS = TableContract(
    name="job_runs",
    description="Run audit: one row per job run, written when it ends, to trace and replay any past output.",
    schema=T.StructType(
        [
            _col("run_id", T.StringType(), "Id of this job run.", False),
            _col("job", T.StringType(), "Job name: daily (also per backfill date), features, score, monitor.", False),
            _col("run_date", T.DateType(), "The --date the job ran for.", False),
            _col("status", T.StringType(), "succeeded or failed.", False),
            _col("started_at", T.TimestampType(), "Start (UTC instant).", False),
            _col("ended_at", T.TimestampType(), "End (UTC instant).", False),
            _col("rows_in", T.LongType(), "Rows the job read from its main input (e.g. user_features of the date)."),
            _col("rows_out", T.LongType(), "Rows the job wrote to its main output (e.g. user_portrait of the date)."),
            _col("input_versions", T.MapType(T.StringType(), T.LongType(), True), "Delta version of every input table the job read, by table name; replay reads these versions.", False),
            _col("output_versions", T.MapType(T.StringType(), T.LongType(), True), "Delta version of every table the job wrote, after its write.", False),
            _col("mlflow_run_id", T.StringType(), "MLflow run that trained (train) or produced the scores (score, daily)."),
            _col("error_message", T.StringType(), "Exception type and message of a failed run; null on success."),
            _col("environment", T.StringType(), "Configured environment: local, dev, prod or test.", False),
            _col("git_commit", T.StringType(), "Code version that ran (PORTRAIT_GIT_COMMIT or the checkout's HEAD)."),
            _col("config_fingerprint", T.StringType(), "Hash of the effective configuration.", False),
        ]
    ),
    key=("run_id",),
    checks=(("status_known", "status IN ('succeeded', 'failed')"),),
)

MONITORING = TableContract(
    name="monitoring",
    description="Drift and volume checks of each daily run: one row per check, subject and reference.",
    schema=T.StructType(
        [
            _col("check", T.StringType(), "psi (feature drift), score_psi (score drift) or volume (input events).", False),
            _col("subject", T.StringType(), "The feature, score or table checked.", False),
            _col("reference", T.StringType(), "What it was compared with: previous day, training reference, trailing mean.", False),
            _col("value", T.DoubleType(), "PSI, or relative change of volume; null when a side had no data."),
            _col("threshold", T.DoubleType(), "Configured limit for this check.", False),
            _col("breached", T.BooleanType(), "value above threshold (absolute change for volume).", False),
            _col("dt", T.DateType(), "Date checked; partition column.", False),
        ]
    ),
    partition_by=("dt",),
    key=("dt", "check", "subject", "reference"),
)

ERASURE_REQUESTS = TableContract(
    name="erasure_requests",
    description="Erasure audit: one row per `portrait forget` request that finished; holds no raw id.",
    schema=T.StructType(
        [
            _col("request_id", T.StringType(), "Id of the erasure request.", False),
            _col("person_keys", T.ArrayType(T.StringType(), False), "HMAC-SHA256 person key of each requested id (the key of key_fingerprint): proves which persons were erased without naming them.", False),
            _col("key_fingerprint", T.StringType(), "Short SHA-256 fingerprint of the pseudonymisation key used (tells key rotations apart; not the key).", False),
            _col("ids_requested", T.IntegerType(), "Distinct ids in the request.", False),
            _col("ids_erased", T.IntegerType(), "Distinct ids erased: the requested ones plus every id stitched to the same person.", False),
            _col("rows_deleted", T.MapType(T.StringType(), T.LongType(), False), "Rows deleted per table name (tables without any row of the persons: 0).", False),
            _col("models_marked", T.ArrayType(T.StringType(), False), "Registered model versions 'name/version' trained on the persons' data, tagged for retraining in MLflow.", False),
            _col("vacuumed", T.BooleanType(), "Whether VACUUM ran after the deletes (with privacy.vacuum_retention_hours).", False),
            _col("vacuum_retention_hours", T.IntegerType(), "Retention VACUUM used: files of the deleted rows are physically gone once they are this old.", False),
            _col("requested_at", T.TimestampType(), "When the request started (UTC instant).", False),
            _col("finished_at", T.TimestampType(), "When the deletes and marking finished (UTC instant).", False),
        ]
    ),
    key=("request_id",),
)

PUBLISH_CHECKS = TableContract(
    name="publish_checks",
    description="Quality gate of each portrait date: one row per check and subject, written before the portrait.",
    schema=T.StructType(
        [
            _col("check", T.StringType(), "row_count, null_rate, tag_coverage, segment_share or score_psi.", False),
            _col("subject", T.StringType(), "What was checked: the table, a column, a segment as column=value, or a score.", False),
            _col("value", T.DoubleType(), "Relative row count change, null share, share of rows with a tag, change of a segment's share, or PSI; null when there is no previous portrait date to compare with."),
            _col("threshold", T.DoubleType(), "Configured limit (publish section): a maximum, or for tag_coverage a minimum.", False),
            _col("passed", T.BooleanType(), "Whether the check passed; the date is published only if all passed (or publish.enforce is off).", False),
            _col("reference_dt", T.DateType(), "Previous portrait date compared with; null for the first date."),
            _col("checked_at", T.TimestampType(), "When the checks ran (UTC instant).", False),
            _col("dt", T.DateType(), "Portrait date checked; partition column.", False),
        ]
    ),
    partition_by=("dt",),
    key=("dt", "check", "subject"),
    checks=(("check_known", "`check` IN ('row_count', 'null_rate', 'tag_coverage', 'segment_share', 'score_psi')"),),
)

PORTRAIT_CHANGES = TableContract(
    name="portrait_changes",
    description="Tags each user gained or lost since the previous portrait date: one row per user with a change.",
    schema=T.StructType(
        [
            _col("user_id", T.StringType(), "Customer id, as in user_portrait.", False),
            _col("change_kind", T.StringType(), "new_user (not in the previous portrait), left (in it, not on dt) or tags_changed.", False),
            _col("gained", T.ArrayType(T.StringType(), True), "Tag codes on dt that the user did not have on previous_dt, sorted.", False),
            _col("lost", T.ArrayType(T.StringType(), True), "Tag codes of previous_dt that the user no longer has on dt, sorted.", False),
            _col("previous_dt", T.DateType(), "Previous portrait date compared with (the latest before dt).", False),
            _col("dt", T.DateType(), "Portrait date; partition column.", False),
        ]
    ),
    partition_by=("dt",),
    key=("user_id", "dt"),
    checks=(("change_kind_known", "change_kind IN ('new_user', 'left', 'tags_changed') AND previous_dt < dt"),),
)

# BI tables: what BI tools and marketing read. They carry person_key (HMAC of user_id), never a raw id.
_PERSON_KEY_FIELD = _col(PERSON_KEY_COLUMN, T.StringType(), "Pseudonymised person: lower-case hex HMAC-SHA256 of user_id with the pseudonymisation key (portrait.privacy); the same person has the same key on every date while the key is unchanged.", False)

PORTRAIT_LATEST = TableContract(
    name="portrait_latest",
    description="Each person's newest user_portrait row, pseudonymised: one row per person_key, for BI tools.",
    # The portrait's columns follow user_portrait, with user_id replaced by person_key.
    schema=T.StructType(
        [_PERSON_KEY_FIELD]
        + [_col("dt", T.DateType(), "Portrait date of this row: the person's newest date in user_portrait.", False)
           if f.name == "dt" else f
           for f in USER_PORTRAIT.schema.fields if f.name not in (*PERSON_ID_COLUMNS, PERSON_KEY_COLUMN)]
    ),
    key=(PERSON_KEY_COLUMN,),
    checks=USER_PORTRAIT.checks,
    # Updated by MERGE every day; the change feed gives CRM syncs only the persons whose row changed.
    properties=(("delta.enableChangeDataFeed", "true"),),
    bi_facing=True,
)

SEGMENT_KINDS: tuple[str, ...] = ("rfm_segment", "lifecycle_stage", "propensity_decile", "tag")

SEGMENT_DAILY = TableContract(
    name="segment_daily",
    description="Size and average value of every segment per portrait date; groups below privacy.min_group_size are left out.",
    schema=T.StructType(
        [
            _col("segment_kind", T.StringType(), "What the segment is a value of: rfm_segment, lifecycle_stage, propensity_decile or tag.", False),
            _col("segment", T.StringType(), "The value: an RFM segment code, a lifecycle stage, a decile 1-10 or a tag code.", False),
            _col("users", T.LongType(), "Persons in the segment on dt (with Laplace noise when privacy.noise_epsilon is set); at least privacy.min_group_size before noise.", False),
            _col("avg_propensity", T.DoubleType(), "Average purchase_propensity of the segment's persons.", False),
            _col("avg_spend_90d", T.DoubleType(), "Average paid spend in the 90 days to the feature date (user_features.spend_90d); null when no feature row matched."),
            _col("avg_orders_90d", T.DoubleType(), "Average distinct paid orders in the 90 days to the feature date (user_features.orders_90d); null when no feature row matched."),
            _col("dt", T.DateType(), "Portrait date; partition column.", False),
        ]
    ),
    partition_by=("dt",),
    key=("dt", "segment_kind", "segment"),
    checks=(("segment_kind_known", "segment_kind IN ('rfm_segment', 'lifecycle_stage', 'propensity_decile', 'tag') "
                                   "AND users >= 0"),),
    bi_facing=True,
)

BI_TABLES: tuple[TableContract, ...] = (PORTRAIT_LATEST, SEGMENT_DAILY)
PUBLISH_TABLES: tuple[TableContract, ...] = (PUBLISH_CHECKS, PORTRAIT_CHANGES)
PRIVACY_TABLES: tuple[TableContract, ...] = (ERASURE_REQUESTS,)
INPUT_TABLES: tuple[TableContract, ...] = (CLICKSTREAM, ORDERS, ITEMS, USERS, REVIEWS)
OUTPUT_TABLES: tuple[TableContract, ...] = (USER_DAILY_ACTIVITY, ROLLUP_INPUTS, USER_FEATURES, USER_PORTRAIT)
INGEST_TABLES: tuple[TableContract, ...] = (QUARANTINE, INGEST_RUNS, IDENTITY_GRAPH, IDENTITY_MERGE_LOG)
OPERATIONS_TABLES: tuple[TableContract, ...] = (JOB_RUNS, MONITORING)
ALL_TABLES: dict[str, TableContract] = {
    t.name: t for t in INPUT_TABLES + OUTPUT_TABLES + INGEST_TABLES + OPERATIONS_TABLES + PRIVACY_TABLES + PUBLISH_TABLES
    + BI_TABLES
}
