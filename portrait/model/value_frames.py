"""Customer value in Spark: the per-customer purchase summary, the fit's bounded input, and the predictions.

The summary is built from the (stitched) ``orders`` of the retention window: a purchase day is a day with a paid
order. The fit itself runs on the driver
(portrait/model/value.py) over the summary grouped by (frequency, recency, age), which has far fewer rows than
customers; predictions for every customer run in Spark, as a vectorised (Arrow) function because the BG/NBD
expectation needs the Gauss hypergeometric function, which Spark has no built-in for.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from portrait.config.model import ValueConfig
from portrait.features.dates import Transformation
from portrait.features.rollups import per_order
from portrait.model import value
from portrait.schemas import VALUE_PREDICTIONS
from portrait.schemas.partitions import date_literal

SUMMARY_COLUMNS = ("frequency", "recency_days", "age_days", "mean_repeat_value")
_PREDICTIONS = T.StructType([T.StructField(name, T.DoubleType()) for name, _ in VALUE_PREDICTIONS])


# Amounts are summed as decimals: a sum of doubles depends on the order the rows arrive in, which a shuffle
# does not fix, and the fit (and every prediction) of a re-run must not move with it.
_MONEY = "decimal(38,4)"


def _purchase_days(orders: DataFrame, after: dt.date, last: dt.date) -> DataFrame:
    """(user_id, dt, paid_amount as a decimal) of every day in (``after``, ``last``] with a paid order."""
    in_window = orders.where((F.col("dt") <= date_literal(last)) & (F.col("dt") > date_literal(after)))
    amount = F.round(F.col("amount"), 4).cast(_MONEY)
    return (per_order(in_window).where(F.col("paid") == 1)
            .groupBy("user_id", "dt").agg(F.coalesce(F.sum(amount), F.lit(0).cast(_MONEY)).alias("paid_amount")))


def value_summary(day: dt.date, retention_days: int) -> Transformation:
    """``orders`` lines → one row per person with a paid order in the ``retention_days`` to ``day``:
    ``frequency`` (purchase days after the first), ``recency_days``, ``age_days``, ``mean_repeat_value`` (null
    without a repeat purchase day) and ``dt`` = ``day``. A purchase day is a day with a paid order
    (:func:`portrait.features.rollups.per_order`)."""

    def transform(orders: DataFrame) -> DataFrame:
        # Read from the orders, not the daily rollups: the rollups reach back only as far as the lookback of
        # the dates computed, the purchase history back the whole retention window.
        buys = _purchase_days(orders, day - dt.timedelta(days=retention_days), day)
        per_person = buys.groupBy("user_id").agg(
            F.min("dt").alias("first"), F.max("dt").alias("last"), F.count(F.lit(1)).alias("days"),
            F.sum("paid_amount").alias("spend"), F.min_by("paid_amount", "dt").alias("first_spend"))
        frequency = (F.col("days") - 1).cast("int")
        return per_person.select(
            "user_id", frequency.alias("frequency"),
            F.datediff("last", "first").alias("recency_days"),
            F.datediff(date_literal(day), "first").alias("age_days"),
            F.when(frequency > 0, ((F.col("spend") - F.col("first_spend")).cast("double") / frequency))
            .alias("mean_repeat_value"),
            date_literal(day).alias("dt"))

    return transform


def holdout_input(orders: DataFrame, day: dt.date, settings: ValueConfig) -> pd.DataFrame:
    """The held-out check's rows (portrait/model/value_holdout.py): the summary to ``day - value.holdout_days``
    grouped by (frequency, recency, age) and the purchase days each customer made after it, to ``day``, with
    a ``weight``; bounded like the fit's input."""
    cut = day - dt.timedelta(days=settings.holdout_days)
    calibration = orders.transform(value_summary(cut, settings.retention_days))
    later = _purchase_days(orders, cut, day).groupBy("user_id").agg(F.count(F.lit(1)).alias("holdout_purchases"))
    grouped = (calibration.join(later, "user_id", "left")
               .withColumn("holdout_purchases", F.coalesce("holdout_purchases", F.lit(0)))
               .groupBy("frequency", "recency_days", "age_days", "holdout_purchases")
               .agg(F.count(F.lit(1)).alias("weight")))
    return _bounded(grouped, settings)


def fit_input(summary: DataFrame, settings: ValueConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows the driver fits on: the summary grouped by (frequency, recency, age) with a ``weight``, and the
    repeat customers' (frequency, mean value) for the spend model; each at most ``value.max_fit_rows`` rows (a
    seeded sample of a larger one, weights kept)."""
    grouped = summary.groupBy("frequency", "recency_days", "age_days").agg(F.count(F.lit(1)).alias("weight"))
    spend = summary.where(F.col("mean_repeat_value") > 0).select("frequency", "mean_repeat_value")
    return _bounded(grouped, settings), _bounded(spend, settings)


def _bounded(frame: DataFrame, settings: ValueConfig) -> pd.DataFrame:
    # One job when the frame fits (the usual case); only a larger one is counted and sampled.
    collected = frame.limit(settings.max_fit_rows + 1).toPandas()
    if len(collected) > settings.max_fit_rows:
        collected = frame.sample(fraction=settings.max_fit_rows / frame.count(), seed=settings.seed).toPandas()
    # Sorted: the likelihood is a sum, and a sum in another order differs in its last bits, and so would the
    # fit and every prediction of a re-run.
    return collected.sort_values(list(collected.columns), ignore_index=True)


def with_predictions(purchases: value.BgNbd | None, spend: value.GammaGamma | None, settings: ValueConfig,
                     run_id: str | None) -> Transformation:
    """Summary rows → the ``customer_value`` columns: the predictions of the fitted models (null without)."""

    def predict(frequency: pd.Series, recency: pd.Series, age: pd.Series, mean_value: pd.Series) -> pd.DataFrame:
        x, t_x, T, m = (s.to_numpy(dtype=float, na_value=np.nan) for s in (frequency, recency, age, mean_value))
        return pd.DataFrame({
            "p_alive": value.probability_alive(purchases, x, t_x, T),
            **{f"expected_purchases_{days}d": value.expected_purchases(purchases, days, x, t_x, T)
               for days in (30, 90, 365)},
            "expected_order_value": value.expected_order_value(spend, x, m),
            "clv": value.customer_lifetime_value(purchases, spend, x, t_x, T, m, settings.clv_periods,
                                                 settings.margin, settings.discount_rate),
        })

    def transform(summary: DataFrame) -> DataFrame:
        if purchases is None or spend is None:
            predictions: list[Column] = [F.lit(None).cast("double").alias(name) for name, _ in VALUE_PREDICTIONS]
        else:
            predicted = F.pandas_udf(predict, _PREDICTIONS)(*[F.col(c) for c in SUMMARY_COLUMNS])
            # NaN (a hypergeometric function undefined for the parameters) is unknown: null.
            predictions = [F.when(~F.isnan(predicted[name]), predicted[name]).alias(name)
                           for name, _ in VALUE_PREDICTIONS]
        return summary.select("user_id", *SUMMARY_COLUMNS, *predictions,
                              F.lit(run_id).cast("string").alias("value_model_run_id"), "dt")

    return transform
