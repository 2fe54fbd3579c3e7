"""Exact tests of the behaviour and RFM feature transformations (portrait/features/behaviour.py)."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

from portrait.features.behaviour import (
    activity_features,
    combine_activity_and_orders,
    events_until,
    order_features,
    within_days,
)

D = dt.date(2024, 6, 30)


def day(offset: int) -> dt.date:
    """``D + offset`` days (negative = before D)."""
    return D + dt.timedelta(days=offset)


def assert_exact(actual, expected, **kwargs) -> None:
    """Rows and schema equal (nullability ignored), floats to 1e-9: the inputs are chosen to be exact."""
    assertDataFrameEqual(actual, expected, rtol=0.0, atol=1e-9, **kwargs)


# ---------------------------------------------------------------------------------------------
# within_days / events_until
# ---------------------------------------------------------------------------------------------

DATED = T.StructType([T.StructField("label", T.StringType()), T.StructField("dt", T.DateType())])


def test_within_days_includes_the_day_and_excludes_day_minus_n_and_later_days(spark):
    frame = spark.createDataFrame(
        [("D+1", day(1)), ("D", day(0)), ("D-1", day(-1)), ("D-6", day(-6)), ("D-7", day(-7)),
         ("D-29", day(-29)), ("D-30", day(-30)), ("null", None)],
        DATED,
    )
    expected = spark.createDataFrame(
        [("D+1", False, False), ("D", True, True), ("D-1", True, True), ("D-6", True, True),
         ("D-7", False, True), ("D-29", False, True), ("D-30", False, False), ("null", None, None)],
        "label string, in_7 boolean, in_30 boolean",
    )
    actual = frame.select(F.col("label"), within_days(D, 7).alias("in_7"), within_days(D, 30).alias("in_30"))
    assert_exact(actual, expected)


def test_within_one_day_is_exactly_the_day(spark):
    frame = spark.createDataFrame([("D+1", day(1)), ("D", day(0)), ("D-1", day(-1))], DATED)
    assert_exact(frame.transform(events_until(D, 1)), spark.createDataFrame([("D", day(0))], DATED))


def test_events_until_keeps_the_window_and_never_a_later_day(spark):
    """Leakage: rows dated after D must not pass, however close to D they are."""
    frame = spark.createDataFrame(
        [("D+1", day(1)), ("D+30", day(30)), ("D", day(0)), ("D-6", day(-6)), ("D-7", day(-7))], DATED
    )
    expected = spark.createDataFrame([("D", day(0)), ("D-6", day(-6))], DATED)
    assert_exact(frame.transform(events_until(D, 7)), expected)


# ---------------------------------------------------------------------------------------------
# activity_features
# ---------------------------------------------------------------------------------------------

EVENTS = "event_id string, user_id string, event_type string, category_id string, dt date"
ACTIVITY = (
    "user_id string, views_7d long, searches_7d long, carts_7d long, favs_7d long, buys_7d long, "
    "views_30d long, searches_30d long, carts_30d long, favs_30d long, buys_30d long, "
    "active_days_30d long, days_since_first_event int, days_since_last_event int, top_category_30d string"
)


def test_activity_features_exact_counts_windows_recency_and_top_category(spark):
    events = spark.createDataFrame(
        [
            # u1: every counted type, on both sides of the 7- and 30-day boundaries.
            ("e01", "u1", "view", "c1", day(0)),
            ("e02", "u1", "view", "c1", day(0)),
            ("e03", "u1", "cart", "c2", day(0)),
            ("e04", "u1", "search", None, day(-6)),
            ("e05", "u1", "fav", "c2", day(-6)),
            ("e06", "u1", "view", "c2", day(-7)),        # 30d only
            ("e07", "u1", "buy", "c2", day(-7)),         # 30d only
            ("e08", "u1", "view", "c3", day(-29)),       # last day of the 30d window
            ("e09", "u1", "view", "c3", day(-30)),       # 90d only: no count, no active day, no category
            ("e10", "u1", "view", "c3", day(-30)),
            ("e11", "u1", "remove_cart", "c1", day(-89)),  # not counted, but the first event in 90 days
            ("e12", "u1", "view", "c9", day(-90)),       # outside the lookback
            ("e13", "u1", "buy", "c9", day(1)),          # after D: leakage
            ("e14", "u1", "buy", "c9", day(1)),
            # u2: only old activity (in 90 days, not in 30).
            ("e20", "u2", "view", "c4", day(-40)),
            ("e21", "u2", "cart", "c4", day(-45)),
            # Anonymous events are ignored entirely.
            ("e30", None, "view", "c1", day(0)),
            ("e31", None, "buy", "c1", day(0)),
            # u3: only after D, u4: only before the lookback -> no row at all.
            ("e40", "u3", "view", "c1", day(1)),
            ("e41", "u4", "view", "c1", day(-90)),
        ],
        EVENTS,
    )
    expected = spark.createDataFrame(
        [
            # user  v7 s7 c7 f7 b7  v30 s30 c30 f30 b30 active first last top
            ("u1", 2, 1, 1, 1, 0, 4, 1, 1, 1, 1, 4, 89, 0, "c2"),
            ("u2", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 45, 40, None),
        ],
        ACTIVITY,
    )
    assert_exact(events.transform(activity_features(D)), expected)


def test_top_category_tie_goes_to_the_larger_category_id_and_ignores_older_and_null_categories(spark):
    events = spark.createDataFrame(
        [
            ("e1", "u1", "view", "c4", day(-3)),
            ("e2", "u1", "view", "c4", day(-3)),
            ("e3", "u1", "fav", "c7", day(-2)),
            ("e4", "u1", "cart", "c7", day(-1)),   # c4 and c7 tie at 2 events: c7 wins
            ("e5", "u1", "search", None, day(-1)),  # null category never wins, however frequent
            ("e6", "u1", "search", None, day(-1)),
            ("e7", "u1", "search", None, day(-1)),
            ("e8", "u1", "view", "c9", day(-30)),   # most frequent overall, but outside 30 days
            ("e9", "u1", "view", "c9", day(-31)),
            ("e10", "u1", "view", "c9", day(-32)),
            # u2: the tie-break must not depend on the order rows arrive in.
            ("f1", "u2", "view", "c7", day(0)),
            ("f2", "u2", "view", "c4", day(0)),
            # u3: within 30 days only category-less events -> null top category.
            ("g1", "u3", "search", None, day(0)),
            ("g2", "u3", "view", "c1", day(-31)),
        ],
        EVENTS,
    )
    actual = events.transform(activity_features(D)).select("user_id", "top_category_30d")
    expected = spark.createDataFrame(
        [("u1", "c7"), ("u2", "c7"), ("u3", None)], "user_id string, top_category_30d string"
    )
    assert_exact(actual, expected)


def test_active_days_count_distinct_days_not_events(spark):
    events = spark.createDataFrame(
        [(f"e{k}", "u1", "view", "c1", day(0)) for k in range(5)]
        + [("x1", "u1", "view", "c1", day(-29)), ("x2", "u1", "search", None, day(-10))],
        EVENTS,
    )
    actual = events.transform(activity_features(D)).select(
        "user_id", "active_days_30d", "days_since_first_event", "days_since_last_event"
    )
    expected = spark.createDataFrame(
        [("u1", 3, 29, 0)], "user_id string, active_days_30d long, days_since_first_event int, "
        "days_since_last_event int"
    )
    assert_exact(actual, expected)


# ---------------------------------------------------------------------------------------------
# order_features
# ---------------------------------------------------------------------------------------------

ORDER_LINES = (
    "order_id string, line_number int, user_id string, status string, quantity int, unit_price double, "
    "discount double, dt date"
)
ORDER_FEATURES = (
    "user_id string, days_since_last_order int, days_since_first_order int, orders_30d long, spend_30d double, "
    "orders_90d long, spend_90d double"
)


def test_order_features_exact_rfm_inputs(spark):
    orders = spark.createDataFrame(
        [
            # u1: o1 has two lines (one order, spend 2*10.25-0.5 + 1*5.0 = 25.0).
            ("o1", 1, "u1", "paid", 2, 10.25, 0.5, day(-2)),
            ("o1", 2, "u1", "paid", 1, 5.0, 0.0, day(-2)),
            ("o2", 1, "u1", "paid", 1, 8.0, 0.0, day(-29)),     # last day of the 30-day window
            ("o3", 1, "u1", "paid", 3, 2.5, 1.5, day(-30)),     # 90 days only: 6.0
            ("o4", 1, "u1", "refunded", 1, 100.0, 0.0, day(-1)),
            ("o5", 1, "u1", "cancelled", 1, 100.0, 0.0, day(0)),
            ("o6", 1, "u1", "paid", 1, 1000.0, 0.0, day(1)),    # after D: leakage
            ("o7", 1, "u1", "paid", 4, 0.25, 0.0, day(-89)),    # last day of the lookback: 1.0
            ("o8", 1, "u1", "paid", 1, 50.0, 0.0, day(-90)),    # outside the lookback
            # u2: paid on D itself, plus a partly refunded two-line order.
            ("p1", 1, "u2", "paid", 2, 1.5, 0.5, day(0)),       # 2.5
            ("p2", 1, "u2", "paid", 1, 4.0, 0.0, day(-3)),      # 4.0
            ("p2", 2, "u2", "refunded", 1, 6.0, 0.0, day(-3)),  # not spend
            # u3: only an old paid order -> zero (not null) 30-day frequency and spend.
            ("q1", 1, "u3", "paid", 1, 12.0, 0.0, day(-45)),
            # u4: refunded / cancelled only, u5: paid only after D -> no row.
            ("r1", 1, "u4", "refunded", 1, 9.0, 0.0, day(-1)),
            ("r2", 1, "u4", "cancelled", 1, 9.0, 0.0, day(-2)),
            ("s1", 1, "u5", "paid", 1, 9.0, 0.0, day(2)),
        ],
        ORDER_LINES,
    )
    expected = spark.createDataFrame(
        [
            ("u1", 2, 89, 2, 33.0, 4, 40.0),
            ("u2", 0, 3, 2, 6.5, 2, 6.5),
            ("u3", 45, 45, 0, 0.0, 1, 12.0),
        ],
        ORDER_FEATURES,
    )
    assert_exact(orders.transform(order_features(D)), expected)


def test_order_features_multi_line_order_counted_once_and_discount_per_line(spark):
    orders = spark.createDataFrame(
        [
            ("o1", 1, "u1", "paid", 3, 10.0, 5.0, day(-1)),  # 25.0: the discount is for the whole line
            ("o1", 2, "u1", "paid", 2, 0.5, 0.0, day(-1)),   # 1.0
            ("o1", 3, "u1", "paid", 1, 4.0, 1.0, day(-1)),   # 3.0
        ],
        ORDER_LINES,
    )
    actual = orders.transform(order_features(D)).select("user_id", "orders_30d", "spend_30d", "orders_90d")
    expected = spark.createDataFrame([("u1", 1, 29.0, 1)], "user_id string, orders_30d long, spend_30d double, "
                                     "orders_90d long")
    assert_exact(actual, expected)


# ---------------------------------------------------------------------------------------------
# combine_activity_and_orders
# ---------------------------------------------------------------------------------------------

COMBINED = (
    "user_id string, views_7d long, searches_7d long, carts_7d long, favs_7d long, buys_7d long, "
    "views_30d long, searches_30d long, carts_30d long, favs_30d long, buys_30d long, "
    "active_days_30d long, days_since_first_event int, days_since_last_event int, top_category_30d string, "
    "days_since_last_order int, orders_30d long, spend_30d double, orders_90d long, spend_90d double"
)


def test_combine_keeps_every_user_fills_zeros_and_merges_first_and_last_activity(spark):
    activity = spark.createDataFrame(
        [
            # both: orders reach further back (40) and are more recent (1) than events.
            ("both", 3, 1, 2, 0, 1, 9, 2, 4, 1, 2, 6, 20, 3, "c1"),
            # events reach further back and are more recent than the orders.
            ("both2", 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 60, 0, "c2"),
            ("events_only", 0, 2, 0, 0, 0, 5, 2, 0, 0, 0, 3, 50, 8, "c3"),
        ],
        ACTIVITY,
    )
    orders = spark.createDataFrame(
        [
            ("both", 1, 40, 1, 10.0, 3, 35.5),
            ("both2", 5, 10, 2, 20.0, 2, 20.0),
            ("orders_only", 12, 70, 1, 7.25, 2, 19.25),
        ],
        ORDER_FEATURES,
    )
    expected = spark.createDataFrame(
        [
            ("both", 3, 1, 2, 0, 1, 9, 2, 4, 1, 2, 6, 40, 1, "c1", 1, 1, 10.0, 3, 35.5),
            ("both2", 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 60, 0, "c2", 5, 2, 20.0, 2, 20.0),
            ("events_only", 0, 2, 0, 0, 0, 5, 2, 0, 0, 0, 3, 50, 8, "c3", None, 0, 0.0, 0, 0.0),
            ("orders_only", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 70, 12, None, 12, 1, 7.25, 2, 19.25),
        ],
        COMBINED,
    )
    actual = activity.transform(combine_activity_and_orders(orders))
    assert_exact(actual, expected, ignoreColumnOrder=True)
    assert "days_since_first_order" not in actual.columns


def test_combine_of_real_activity_and_order_features(spark):
    """The two feature families composed: an orders-only user and an events-only user as of D."""
    events = spark.createDataFrame(
        [("e1", "browser", "view", "c1", day(-2)), ("e2", "browser", "cart", "c1", day(-2)),
         ("e3", None, "view", "c1", day(0))],
        EVENTS,
    )
    orders = spark.createDataFrame(
        [("o1", 1, "buyer", "paid", 1, 20.0, 0.0, day(-5)), ("o2", 1, "buyer", "paid", 1, 30.0, 0.0, day(-35)),
         ("o3", 1, "browser", "refunded", 1, 20.0, 0.0, day(-1))],
        ORDER_LINES,
    )
    actual = (
        events.transform(activity_features(D))
        .transform(combine_activity_and_orders(orders.transform(order_features(D))))
        .select("user_id", "carts_7d", "active_days_30d", "days_since_first_event", "days_since_last_event",
                "days_since_last_order", "orders_30d", "spend_30d", "orders_90d", "spend_90d")
    )
    expected = spark.createDataFrame(
        [("browser", 1, 1, 2, 2, None, 0, 0.0, 0, 0.0),
         ("buyer", 0, 0, 35, 5, 5, 1, 20.0, 2, 50.0)],
        "user_id string, carts_7d long, active_days_30d long, days_since_first_event int, "
        "days_since_last_event int, days_since_last_order int, orders_30d long, spend_30d double, "
        "orders_90d long, spend_90d double",
    )
    assert_exact(actual, expected)
