"""The composed user_features row: every family together, exact on a hand-made shop."""

from __future__ import annotations

import datetime as dt

from pyspark.testing import assertDataFrameEqual

from portrait.config import FeaturesConfig
from portrait.features.user_features import build_user_features
from portrait.schemas import CLICKSTREAM, ITEMS, ORDERS, USER_FEATURES

D = dt.date(2026, 11, 20)
UTC = dt.timezone.utc


def _event(event_id, user, event_type, day, hour, item=None, category=None, query=None):
    time = dt.datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
    return (event_id, user, "dev-" + (user or "anon"), None, time, event_type, item, category, None, None,
            query, "organic", "app", day)


def _line(order_id, line, user, day, status, quantity, price, discount):
    time = dt.datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    return (order_id, line, user, time, status, "i1", "c1", quantity, price, discount, day)


def test_every_family_on_a_hand_made_shop(spark):
    clickstream = spark.createDataFrame([
        _event("e1", "u1", "view", D, 10, "i1", "c1"),
        _event("e2", "u1", "search", dt.date(2026, 11, 19), 9, query="红色 连衣裙"),
        _event("e3", "u1", "cart", dt.date(2026, 11, 10), 8, "i1", "c1"),
        _event("e4", "u1", "view", dt.date(2026, 11, 21), 8, "i2", "c2"),   # after D: invisible
        _event("e5", "u2", "view", dt.date(2026, 10, 1), 8, "i2", "c2"),    # 50 days before D
        _event("e6", None, "view", D, 11, "i2", "c2"),                      # anonymous: not a user
    ], CLICKSTREAM.schema)
    orders = spark.createDataFrame([
        _line("o1", 1, "u1", dt.date(2026, 11, 15), "paid", 1, 100.0, 10.0),
        _line("o1", 2, "u1", dt.date(2026, 11, 15), "paid", 2, 50.0, 0.0),
        _line("o2", 1, "u3", dt.date(2026, 9, 1), "paid", 1, 30.0, 0.0),     # orders, no events
        _line("o3", 1, "u1", dt.date(2026, 11, 18), "refunded", 1, 999.0, 0.0),
    ], ORDERS.schema)
    items = spark.createDataFrame([
        ("i1", "Nike 跑步鞋", "c1", "运动 > 跑步", "Nike", 100.0),
        ("i2", "Apple iPhone", "c2", "数码 > 手机", "Apple", 5999.0),
    ], ITEMS.schema)

    features = build_user_features(D, FeaturesConfig(), clickstream, orders, items=items, reviews=None)

    assert features.columns == USER_FEATURES.columns
    columns = ("user_id", "days_since_first_event", "days_since_last_event", "days_since_last_order", "orders_30d",
               "spend_30d", "orders_90d", "spend_90d", "refund_rate_90d", "events_1d", "views_7d", "searches_7d",
               "carts_30d", "events_90d", "active_days_30d", "top_category_30d", "price_tier", "lifecycle_stage",
               "text_document", "dt")
    expected = spark.createDataFrame([
        ("u1", 10, 0, 5, 1, 190.0, 1, 190.0, 0.5, 1, 1, 1, 1, 3, 3, "c1", "mid", "new",
         "nike 跑步 鞋 红色 连衣裙 nike 跑步 鞋", D),
        ("u2", 50, 50, None, 0, 0.0, 0, 0.0, None, 0, 0, 0, 0, 1, 0, None, "mid", "churned", "", D),
        ("u3", 80, 80, 80, 0, 0.0, 1, 30.0, 0.0, 0, 0, 0, 0, 0, 0, None, None, "churned", "", D),
    ], "user_id string, days_since_first_event int, days_since_last_event int, days_since_last_order int, "
       "orders_30d long, spend_30d double, orders_90d long, spend_90d double, refund_rate_90d double, "
       "events_1d long, views_7d long, searches_7d long, carts_30d long, events_90d long, active_days_30d long, "
       "top_category_30d string, price_tier string, lifecycle_stage string, text_document string, dt date")
    assertDataFrameEqual(features.select(*columns), expected, rtol=0.0, atol=0.0)


def test_token_cap_keeps_the_newest_tokens(spark):
    clickstream = spark.createDataFrame([
        _event("e1", "u1", "search", dt.date(2026, 11, 18), 9, query=" ".join(f"w{k}" for k in range(1, 11))),
        _event("e2", "u1", "search", dt.date(2026, 11, 19), 9, query="newest query"),
    ], CLICKSTREAM.schema)
    orders = spark.createDataFrame([], ORDERS.schema)
    features = build_user_features(D, FeaturesConfig(max_tokens_per_user=20), clickstream, orders)
    assert features.first()["text_document"] == "newest query w1 w2 w3 w4 w5 w6 w7 w8 w9 w10"
    capped = build_user_features(D, FeaturesConfig(max_tokens_per_user=10), clickstream, orders)
    assert capped.first()["text_document"] == "newest query w1 w2 w3 w4 w5 w6 w7 w8"
