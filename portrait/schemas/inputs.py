"""Contracts of the input tables: clickstream, orders, items, users and reviews."""

from __future__ import annotations

from pyspark.sql import types as T

from portrait.schemas.contract import TableContract, _col

# Event types of the clickstream contract.  "buy" is the purchase event; orders carry the money.
EVENT_TYPES: tuple[str, ...] = ("view", "search", "cart", "remove_cart", "fav", "buy")
ORDER_STATUSES: tuple[str, ...] = ("paid", "refunded", "cancelled")

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

INPUT_TABLES: tuple[TableContract, ...] = (CLICKSTREAM, ORDERS, ITEMS, USERS, REVIEWS)
