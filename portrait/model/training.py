"""Point-in-time training sets: features as of D, label from what happened in (D, D + H]."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from portrait.features.behaviour import Transformation

LABEL = "label"


def snapshot_dates(run_date: dt.date, horizon_days: int, snapshots: int, step_days: int) -> list[dt.date]:
    """Feature dates whose label window (D, D + horizon] has fully passed by ``run_date``, oldest first.

    The newest is ``run_date - horizon``; each earlier one is ``step_days`` before the next.
    """
    newest = run_date - dt.timedelta(days=horizon_days)
    return sorted(newest - dt.timedelta(days=step_days * k) for k in range(snapshots))


def label_purchases(orders: DataFrame, horizon_days: int) -> Transformation:
    """Add ``label`` = 1.0 when the user has a paid order dated in (dt, dt + horizon_days], else 0.0.

    Input: feature rows with ``user_id`` and ``dt`` (any number of feature dates stacked). The label looks
    only forward from each row's own ``dt``, so stacking dates cannot leak one snapshot into another.
    """

    def transform(features: DataFrame) -> DataFrame:
        order_days = (
            orders.where(F.col("status") == "paid")
            .select("user_id", F.col("dt").alias("order_dt"))
            .distinct()
        )
        keys = features.select("user_id", "dt")
        in_horizon = (
            (keys["user_id"] == order_days["user_id"])
            & (order_days["order_dt"] > keys["dt"])
            & (order_days["order_dt"] <= F.date_add(keys["dt"], horizon_days))
        )
        positives = (
            keys.join(order_days, in_horizon, how="left_semi")
            .withColumn(LABEL, F.lit(1.0))
        )
        return (
            features.join(positives, on=["user_id", "dt"], how="left")
            .withColumn(LABEL, F.coalesce(F.col(LABEL), F.lit(0.0)))
        )

    return transform


def split_by_date(training_set: DataFrame, test_date: dt.date) -> tuple[DataFrame, DataFrame]:
    """Time-based split: snapshots before ``test_date`` train, the ``test_date`` snapshot evaluates."""
    test_day = F.lit(test_date).cast("date")
    return training_set.where(F.col("dt") < test_day), training_set.where(F.col("dt") == test_day)
