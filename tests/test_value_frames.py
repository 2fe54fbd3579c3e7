"""Customer value in Spark (portrait/model/value_frames.py): the summary, the fit's input and the predictions."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

from portrait.config import ValueConfig
from portrait.model import value
from portrait.model.value_frames import fit_input, holdout_input, value_summary, with_predictions
from portrait.schemas import CUSTOMER_VALUE

D = dt.date(2026, 11, 20)
ORDER_LINES = ("user_id string, order_id string, dt date, status string, quantity int, unit_price double, "
               "discount double")
SUMMARY = "user_id string, frequency int, recency_days int, age_days int, mean_repeat_value double, dt date"


def _day(days_before: int) -> dt.date:
    return D - dt.timedelta(days=days_before)


def test_summary_counts_purchase_days_in_the_retention_window_only(spark):
    orders = spark.createDataFrame([
        ("a", "o1", _day(30), "paid", 1, 50.0, 0.0),      # first purchase day
        ("a", "o2", _day(20), "paid", 2, 30.0, 0.0),      # two orders on one day: one purchase day of 80
        ("a", "o3", _day(20), "paid", 1, 25.0, 5.0),
        ("a", "o4", _day(10), "cancelled", 1, 70.0, 0.0),  # not paid: no purchase day
        ("a", "o5", _day(5), "paid", 1, 40.0, 0.0),
        ("a", "o5", _day(5), "paid", 1, 10.0, 10.0),      # a second line of o5: 40 in all
        ("b", "o6", _day(3), "paid", 1, 20.0, 0.0),       # one purchase day: no repeat, no repeat value
        ("c", "o7", _day(400), "paid", 1, 99.0, 0.0),     # outside 365 days of retention
        ("c", "o8", _day(-1), "paid", 1, 99.0, 0.0),      # after D
        ("d", "o9", _day(365), "paid", 1, 10.0, 0.0),     # the first day outside the window (D - 365 < dt)
        ("d", "o10", _day(364), "paid", 1, 30.0, 0.0),
        ("e", "o11", _day(2), "refunded", 1, 30.0, 0.0),  # never paid: not a customer
    ], ORDER_LINES).withColumn("category_id", F.lit(None).cast("string"))
    expected = spark.createDataFrame([
        ("a", 2, 25, 30, 60.0, D),
        ("b", 0, 0, 3, None, D),
        ("d", 0, 0, 364, None, D),
    ], SUMMARY)
    assertDataFrameEqual(orders.transform(value_summary(D, 365)), expected)


def test_the_fit_input_groups_identical_histories_and_keeps_repeat_values(spark):
    summary = spark.createDataFrame([
        ("a", 2, 25, 30, 60.0, D), ("b", 2, 25, 30, 10.0, D), ("c", 0, 0, 3, None, D),
    ], SUMMARY)
    grouped, spend = fit_input(summary, ValueConfig())
    assert sorted(map(tuple, grouped[["frequency", "recency_days", "age_days", "weight"]].to_numpy().tolist())) == \
        [(0, 0, 3, 1), (2, 25, 30, 2)]
    assert sorted(map(tuple, spend.to_numpy().tolist())) == [(2.0, 10.0), (2.0, 60.0)]


def test_predictions_in_spark_equal_the_models_on_the_driver(spark):
    purchases, spend = value.BgNbd(0.25, 4.0, 1.5, 4.0), value.GammaGamma(6.0, 4.0, 15.0)
    settings = ValueConfig()
    summary = spark.createDataFrame([
        ("a", 2, 25, 30, 60.0, D), ("b", 0, 0, 3, None, D), ("c", 7, 200, 300, 12.5, D),
    ], SUMMARY)
    rows = {r["user_id"]: r for r in summary.transform(with_predictions(purchases, spend, settings, "run-1")).collect()}
    assert list(rows["a"].asDict()) == CUSTOMER_VALUE.columns
    x, t_x, T_, m = np.array([2, 0, 7.0]), np.array([25, 0, 200.0]), np.array([30, 3, 300.0]), \
        np.array([60.0, np.nan, 12.5])
    expected = {
        "p_alive": value.probability_alive(purchases, x, t_x, T_),
        "expected_purchases_90d": value.expected_purchases(purchases, 90, x, t_x, T_),
        "expected_order_value": value.expected_order_value(spend, x, m),
        "clv": value.customer_lifetime_value(purchases, spend, x, t_x, T_, m, settings.clv_periods, settings.margin,
                                             settings.discount_rate),
    }
    for column, values in expected.items():
        assert [rows[u][column] for u in "abc"] == pytest.approx(list(values), rel=1e-12)
    assert {r["value_model_run_id"] for r in rows.values()} == {"run-1"}


def test_without_fitted_models_every_prediction_is_null(spark):
    summary = spark.createDataFrame([("a", 2, 25, 30, 60.0, D)], SUMMARY)
    [row] = summary.transform(with_predictions(None, None, ValueConfig(), None)).collect()
    assert [row[c] for c in ("p_alive", "expected_purchases_30d", "clv", "value_model_run_id")] == [None] * 4
    assert (row["frequency"], row["mean_repeat_value"]) == (2, 60.0)


def test_an_undefined_expectation_is_null_not_nan(spark):
    summary = spark.createDataFrame([("a", 0, 0, 30, None, D), ("b", 2, 25, 30, 60.0, D)], SUMMARY)
    # a + b + x - 1 = 0 for the one-off buyer: a pole of the hypergeometric function.
    rows = {r["user_id"]: r for r in summary.transform(with_predictions(
        value.BgNbd(0.25, 4.0, 0.4, 0.6), value.GammaGamma(6.0, 4.0, 15.0), ValueConfig(), "run-1")).collect()}
    assert rows["a"]["expected_purchases_90d"] is None and rows["a"]["clv"] is None
    assert rows["a"]["p_alive"] == 1.0
    assert rows["b"]["expected_purchases_90d"] > 0.0


def test_the_summary_schema_is_the_contracts(spark):
    summary = spark.createDataFrame([], T.StructType.fromDDL(ORDER_LINES + ", category_id string")).transform(value_summary(D, 365))
    types = {f.name: f.dataType for f in CUSTOMER_VALUE.schema.fields}
    assert {f.name: f.dataType for f in summary.schema.fields} == {c: types[c] for c in summary.columns}


def test_the_held_out_input_is_the_summary_at_the_cut_with_the_purchase_days_after_it(spark):
    cut = 90  # ValueConfig().holdout_days
    lines = [("a", "o1", _day(200)), ("a", "o2", _day(150)), ("a", "o3", _day(50)), ("a", "o4", _day(50)),
             ("a", "o5", _day(10)),
             ("b", "o6", _day(100)),          # nothing after the cut
             ("c", "o7", _day(30)),           # a customer only after the cut: not in the calibration summary
             ("d", "o8", _day(100)), ("d", "o9", _day(cut)),  # the cut's own day is calibration
             ("d", "o10", _day(-1))]          # after the date: not held out either
    orders = spark.createDataFrame([(u, o, d, "paid", 1, 10.0, 0.0) for u, o, d in lines], ORDER_LINES) \
        .withColumn("category_id", F.lit(None).cast("string"))
    grouped = holdout_input(orders, D, ValueConfig())
    rows = sorted(map(tuple, grouped[["frequency", "recency_days", "age_days", "holdout_purchases", "weight"]]
                      .to_numpy().tolist()))
    assert rows == [(0, 0, 10, 0, 1), (1, 10, 10, 0, 1), (1, 50, 110, 2, 1)]
