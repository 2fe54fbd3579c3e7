"""Exact tests of point-in-time training sets (portrait/model/training.py)."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

from portrait.model.training import LABEL, label_purchases, snapshot_dates, split_by_date

D = dt.date(2024, 6, 1)
H = 7


def day(offset: int) -> dt.date:
    return D + dt.timedelta(days=offset)


# ---------------------------------------------------------------------------------------------
# snapshot_dates
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("run_date", "horizon", "snapshots", "step", "expected"),
    [
        (dt.date(2024, 6, 30), 7, 3, 7, [dt.date(2024, 6, 9), dt.date(2024, 6, 16), dt.date(2024, 6, 23)]),
        (dt.date(2024, 6, 30), 7, 1, 7, [dt.date(2024, 6, 23)]),
        (dt.date(2024, 6, 30), 7, 4, 2,
         [dt.date(2024, 6, 17), dt.date(2024, 6, 19), dt.date(2024, 6, 21), dt.date(2024, 6, 23)]),
        # Across a month and a leap day.
        (dt.date(2024, 3, 2), 1, 3, 1, [dt.date(2024, 2, 28), dt.date(2024, 2, 29), dt.date(2024, 3, 1)]),
    ],
)
def test_snapshot_dates_exact(run_date, horizon, snapshots, step, expected):
    assert snapshot_dates(run_date, horizon, snapshots, step) == expected


def test_newest_snapshot_label_window_ends_on_the_run_date():
    dates = snapshot_dates(dt.date(2024, 6, 30), horizon_days=7, snapshots=5, step_days=3)
    assert dates[-1] + dt.timedelta(days=7) == dt.date(2024, 6, 30)
    assert dates == sorted(dates) and len(set(dates)) == 5


# ---------------------------------------------------------------------------------------------
# label_purchases
# ---------------------------------------------------------------------------------------------

FEATURES = "user_id string, dt date, orders_30d long"
ORDERS = "order_id string, line_number int, user_id string, status string, dt date"
LABELLED = T.StructType(
    [
        T.StructField("user_id", T.StringType()),
        T.StructField("dt", T.DateType()),
        T.StructField("orders_30d", T.LongType()),
        T.StructField(LABEL, T.DoubleType()),
    ]
)


def test_label_purchases_horizon_boundaries_statuses_and_stacked_dates(spark):
    features = spark.createDataFrame(
        [
            ("same_day", D, 1),
            ("next_day", D, 2),
            ("last_day", D, 3),
            ("too_late", D, 4),
            ("refunded", D, 5),
            ("past_only", D, 6),
            ("multi", D, 7),
            ("no_orders", D, 8),
            # The same user on two stacked feature dates: each labelled from its own dt.
            ("stacked", D, 9),
            ("stacked", day(H), 10),
            ("stacked2", D, 11),
            ("stacked2", day(H), 12),
        ],
        FEATURES,
    )
    orders = spark.createDataFrame(
        [
            ("o1", 1, "same_day", "paid", D),              # on D itself: already in the features
            ("o2", 1, "next_day", "paid", day(1)),
            ("o3", 1, "last_day", "paid", day(H)),         # D + H: last day of the horizon
            ("o4", 1, "too_late", "paid", day(H + 1)),
            ("o5", 1, "refunded", "refunded", day(2)),
            ("o6", 1, "refunded", "cancelled", day(3)),
            ("o7", 1, "past_only", "paid", day(-1)),
            ("o8", 1, "multi", "paid", day(2)),            # several lines and orders: still one row
            ("o8", 2, "multi", "paid", day(2)),
            ("o9", 1, "multi", "paid", day(3)),
            ("o10", 1, "stacked", "paid", day(H + 3)),     # outside D's horizon, inside D+H's
            ("o11", 1, "stacked2", "paid", day(3)),        # inside D's horizon, before D+H
            ("o12", 1, "nobody", "paid", day(1)),          # another user's order labels nobody else
        ],
        ORDERS,
    )
    expected = spark.createDataFrame(
        [
            ("same_day", D, 1, 0.0),
            ("next_day", D, 2, 1.0),
            ("last_day", D, 3, 1.0),
            ("too_late", D, 4, 0.0),
            ("refunded", D, 5, 0.0),
            ("past_only", D, 6, 0.0),
            ("multi", D, 7, 1.0),
            ("no_orders", D, 8, 0.0),
            ("stacked", D, 9, 0.0),
            ("stacked", day(H), 10, 1.0),
            ("stacked2", D, 11, 1.0),
            ("stacked2", day(H), 12, 0.0),
        ],
        LABELLED,
    )
    actual = features.transform(label_purchases(orders, H))
    assert actual.columns == ["user_id", "dt", "orders_30d", LABEL]
    assertDataFrameEqual(actual, expected, rtol=0.0, atol=0.0)


def test_label_purchases_when_features_derive_from_the_same_orders(spark):
    """Features computed from the orders frame itself (shared lineage) must still be labelled per row."""
    orders = spark.createDataFrame(
        [("o1", 1, "u1", "paid", D), ("o2", 1, "u1", "paid", day(3)), ("o3", 1, "u2", "paid", D)], ORDERS
    )
    features = orders.groupBy("user_id", "dt").agg(F.count(F.lit(1)).alias("orders_30d"))
    expected = spark.createDataFrame(
        [("u1", D, 1, 1.0), ("u1", day(3), 1, 0.0), ("u2", D, 1, 0.0)], LABELLED
    )
    assertDataFrameEqual(features.transform(label_purchases(orders, H)), expected)


def test_label_horizon_of_one_day(spark):
    features = spark.createDataFrame([("a", D, 1), ("b", D, 1)], FEATURES)
    orders = spark.createDataFrame([("o1", 1, "a", "paid", day(1)), ("o2", 1, "b", "paid", day(2))], ORDERS)
    expected = spark.createDataFrame([("a", D, 1, 1.0), ("b", D, 1, 0.0)], LABELLED)
    assertDataFrameEqual(features.transform(label_purchases(orders, 1)), expected)


# ---------------------------------------------------------------------------------------------
# split_by_date
# ---------------------------------------------------------------------------------------------


def test_split_by_date_trains_on_earlier_snapshots_and_tests_on_the_test_date(spark):
    rows = [("u1", day(-14), 1), ("u2", day(-7), 2), ("u1", D, 3), ("u3", D, 4), ("u1", day(7), 5)]
    training_set = spark.createDataFrame(rows, FEATURES)
    train, test = split_by_date(training_set, D)
    assertDataFrameEqual(train, spark.createDataFrame([("u1", day(-14), 1), ("u2", day(-7), 2)], FEATURES))
    assertDataFrameEqual(test, spark.createDataFrame([("u1", D, 3), ("u3", D, 4)], FEATURES))
