"""Exact tests of point-in-time training sets (portrait/model/training.py)."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

from portrait.model.training import LABEL, label_purchases, snapshot_dates, split_by_date
from portrait.stages.train import target_config

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


# ---------------------------------------------------------------------------------------------
# class_weights
# ---------------------------------------------------------------------------------------------


def test_class_weights_balance_the_two_labels_exactly(spark):
    from portrait.model.training import class_weights

    rows = spark.createDataFrame([("a", 1.0), ("b", 0.0), ("c", 0.0), ("d", 0.0)], "user_id string, label double")
    actual = rows.transform(class_weights("w"))
    # 4 rows, 1 positive, 3 negatives: 4 / (2 * 1) = 2.0 and 4 / (2 * 3) = 2/3; each class weighs 2 in total.
    expected = spark.createDataFrame(
        [("a", 1.0, 2.0), ("b", 0.0, 2 / 3), ("c", 0.0, 2 / 3), ("d", 0.0, 2 / 3)],
        "user_id string, label double, w double",
    )
    assertDataFrameEqual(actual, expected, rtol=1e-12)


def test_class_weights_need_both_labels(spark):
    from portrait.model.training import class_weights

    rows = spark.createDataFrame([("a", 0.0), ("b", 0.0)], "user_id string, label double")
    with pytest.raises(ValueError, match="need both labels; the training set has 0 positives of 2 rows"):
        rows.transform(class_weights("w"))


# ---------------------------------------------------------------------------------------------
# split_by_user_hash
# ---------------------------------------------------------------------------------------------


def test_user_hash_split_keeps_every_user_on_one_side_and_is_deterministic(spark):
    from portrait.model.training import split_by_user_hash

    users = spark.range(400).select(F.concat(F.lit("u"), F.col("id").cast("string")).alias("user_id"))
    snapshots = spark.createDataFrame([(day(0),), (day(7),), (day(14),)], "dt date")
    rows = users.crossJoin(snapshots)
    train, test = split_by_user_hash(rows, test_fraction=0.25, seed=42)
    train_users = {r["user_id"] for r in train.select("user_id").distinct().collect()}
    test_users = {r["user_id"] for r in test.select("user_id").distinct().collect()}
    assert not train_users & test_users
    assert len(train_users | test_users) == 400
    assert train.count() + test.count() == 1200
    assert test.count() == 3 * len(test_users)  # every snapshot of a test user is in the test set
    assert 0.18 < len(test_users) / 400 < 0.32
    _, again = split_by_user_hash(rows.repartition(3), test_fraction=0.25, seed=42)
    assert {r["user_id"] for r in again.select("user_id").distinct().collect()} == test_users
    _, other_seed = split_by_user_hash(rows, test_fraction=0.25, seed=7)
    assert {r["user_id"] for r in other_seed.select("user_id").distinct().collect()} != test_users


def test_user_hash_split_rejects_a_fraction_outside_0_1(spark):
    from portrait.model.training import split_by_user_hash

    rows = spark.createDataFrame([("u1",)], "user_id string")
    with pytest.raises(ValueError, match="test_fraction must be between 0 and 1, got 1.5"):
        split_by_user_hash(rows, 1.5, 42)


# ---------------------------------------------------------------------------------------------
# label_churn
# ---------------------------------------------------------------------------------------------


def test_label_churn_horizon_boundaries_and_stacked_dates(spark):
    from portrait.model.training import label_churn

    features = spark.createDataFrame(
        [("same_day_only", D, 1), ("next_day", D, 2), ("last_day", D, 3), ("too_late", D, 4), ("silent", D, 5),
         ("stacked", D, 6), ("stacked", day(30), 7)],
        FEATURES,
    )
    clickstream = spark.createDataFrame(
        [
            ("same_day_only", D),       # activity on dt itself is the past: churned
            ("next_day", day(1)),       # active in the horizon: not churned
            ("last_day", day(30)),      # last day of the horizon counts
            ("too_late", day(31)),      # after the horizon: churned
            ("stacked", day(10)),       # active after D, but nothing after D + 30: churned on the later row
            (None, day(1)),             # anonymous events never count for anyone
        ],
        "user_id string, dt date",
    )
    actual = features.transform(label_churn(clickstream, horizon_days=30))
    expected = spark.createDataFrame(
        [("same_day_only", D, 1, 1.0), ("next_day", D, 2, 0.0), ("last_day", D, 3, 0.0), ("too_late", D, 4, 1.0),
         ("silent", D, 5, 1.0), ("stacked", D, 6, 0.0), ("stacked", day(30), 7, 1.0)],
        LABELLED,
    )
    assertDataFrameEqual(actual, expected)


def test_an_order_is_activity_for_the_churn_label_so_an_orders_only_shop_has_both_classes(spark):
    from portrait.model.training import activity_days, label_churn

    features = spark.createDataFrame([("buyer", D, 1), ("gone", D, 2)], FEATURES)
    clickstream = spark.createDataFrame([], "user_id string, dt date, event_type string")  # no clickstream
    orders = spark.createDataFrame([("buyer", day(12), "o1"), ("gone", D, "o2")], "user_id string, dt date, order_id string")
    actual = features.transform(label_churn(activity_days(clickstream, orders), horizon_days=30))
    assertDataFrameEqual(actual, spark.createDataFrame([("buyer", D, 1, 0.0), ("gone", D, 2, 1.0)], LABELLED))


def test_target_config_derives_the_churn_model_experiment_and_horizon(tmp_path):
    from portrait.config import ConfigError
    from tests.conftest import make_config

    cfg = make_config(tmp_path, MODEL__TARGETS="[purchase, churn]", MODEL__CHURN_HORIZON_DAYS="21")
    assert target_config(cfg, "purchase") is cfg
    churn = target_config(cfg, "churn")
    assert (churn.model.name, churn.mlflow.experiment) == ("purchase_propensity_churn", "portrait_churn")
    assert churn.model.label_horizon_days == 21
    assert churn.mlflow.tracking_uri == cfg.mlflow.tracking_uri and churn.lakehouse == cfg.lakehouse
    with pytest.raises(ValueError, match="unknown training target 'ltv'"):
        target_config(cfg, "ltv")
    with pytest.raises(ConfigError, match="targets must start with 'purchase'"):
        make_config(tmp_path, MODEL__TARGETS="[churn]")
