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


@dataclass(frozen=True)
class TableContract:
    """A Delta table's layout: schema with column comments, partition columns and key."""

    name: str
    description: str
    schema: T.StructType
    partition_by: tuple[str, ...] = ()
    key: tuple[str, ...] = ()
    optional: bool = False

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.schema.fields]

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

USER_FEATURES = TableContract(
    name="user_features",
    description="Per-user features as of the end of date dt, using only data up to then.",
    schema=T.StructType(
        [
            _col("user_id", T.StringType(), "Customer id.", False),
            _col("days_since_first_event", T.IntegerType(), "Days from the first event in the 90 days to dt (tenure proxy).", False),
            _col("days_since_last_event", T.IntegerType(), "Days from the last event in the 90 days to dt (0 = on dt).", False),
            _col("days_since_last_order", T.IntegerType(), "Recency: days from the last paid order to dt; null if none."),
            _col("orders_30d", T.LongType(), "Frequency: distinct paid orders in the 30 days to dt.", False),
            _col("spend_30d", T.DoubleType(), "Monetary: paid spend after discount in the 30 days to dt.", False),
            _col("orders_90d", T.LongType(), "Distinct paid orders in the 90 days to dt.", False),
            _col("spend_90d", T.DoubleType(), "Paid spend after discount in the 90 days to dt.", False),
            _col("views_7d", T.LongType(), "View events in the 7 days to dt.", False),
            _col("searches_7d", T.LongType(), "Search events in the 7 days to dt.", False),
            _col("carts_7d", T.LongType(), "Add-to-cart events in the 7 days to dt.", False),
            _col("favs_7d", T.LongType(), "Favourite events in the 7 days to dt.", False),
            _col("buys_7d", T.LongType(), "Purchase events in the 7 days to dt.", False),
            _col("views_30d", T.LongType(), "View events in the 30 days to dt.", False),
            _col("searches_30d", T.LongType(), "Search events in the 30 days to dt.", False),
            _col("carts_30d", T.LongType(), "Add-to-cart events in the 30 days to dt.", False),
            _col("favs_30d", T.LongType(), "Favourite events in the 30 days to dt.", False),
            _col("buys_30d", T.LongType(), "Purchase events in the 30 days to dt.", False),
            _col("active_days_30d", T.LongType(), "Days with at least one event in the 30 days to dt.", False),
            _col("top_category_30d", T.StringType(), "Category with most events in the 30 days to dt."),
            _col("text_document", T.StringType(), "Space-separated tokens of the user's searches, viewed and bought item titles and reviews in the 30 days to dt (segmented, lower-case, capped)."),
            _col("dt", T.DateType(), "Feature date: features describe the user as of the end of this date.", False),
        ]
    ),
    partition_by=("dt",),
    key=("user_id", "dt"),
)

USER_PORTRAIT = TableContract(
    name="user_portrait",
    description="One row per user per date: segments, interests, propensity and tags for BI and marketing.",
    schema=T.StructType(
        [
            _col("user_id", T.StringType(), "Customer id (restricted: raw identifier).", False),
            _col("lifecycle_stage", T.StringType(), "new, active, sleeping or churned, from recency and tenure.", False),
            _col("rfm_segment", T.StringType(), "RFM segment code, e.g. champions, at_risk, hibernating.", False),
            _col("recency_score", T.IntegerType(), "R score 1-5 (5 = bought most recently); 1 if never bought.", False),
            _col("frequency_score", T.IntegerType(), "F score 1-5 over 90-day paid order count.", False),
            _col("monetary_score", T.IntegerType(), "M score 1-5 over 90-day paid spend.", False),
            _col("top_category", T.StringType(), "Category with most events in the last 30 days."),
            _col("purchase_propensity", T.DoubleType(), "Model probability of a paid order in the label horizon after dt.", False),
            _col("propensity_decile", T.IntegerType(), "Decile of purchase_propensity among users on dt (10 = highest).", False),
            _col("tags", T.ArrayType(T.StringType(), True), "Tag codes that hold for the user on dt, for audience selection.", False),
            _col("model_name", T.StringType(), "Model that produced purchase_propensity.", False),
            _col("model_run_id", T.StringType(), "MLflow run id of that model.", False),
            _col("feature_dt", T.DateType(), "Date of the features the portrait is built from.", False),
            _col("dt", T.DateType(), "Portrait date; partition column.", False),
        ]
    ),
    partition_by=("dt",),
    key=("user_id", "dt"),
)

INPUT_TABLES: tuple[TableContract, ...] = (CLICKSTREAM, ORDERS, ITEMS, USERS, REVIEWS)
OUTPUT_TABLES: tuple[TableContract, ...] = (USER_FEATURES, USER_PORTRAIT)
ALL_TABLES: dict[str, TableContract] = {t.name: t for t in INPUT_TABLES + OUTPUT_TABLES}
