"""Point-in-time training sets: features as of D, label from what happened in (D, D + H]."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from portrait.features.dates import Transformation
from portrait.schemas.partitions import date_literal

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


def activity_days(clickstream: DataFrame, orders: DataFrame) -> DataFrame:
    """(user_id, dt) of every day a person was active: any clickstream event or any order. An orders-only shop
    (no clickstream) has activity too, so its churn label means something."""
    return clickstream.select("user_id", "dt").unionByName(orders.select("user_id", "dt"))


def label_churn(activity: DataFrame, horizon_days: int) -> Transformation:
    """Add ``label`` = 1.0 when the user has *no* activity dated in (dt, dt + horizon_days], else 0.0.

    The churn target: the same point-in-time rule as :func:`label_purchases`, looking only forward from
    each row's own ``dt``. ``activity`` has ``user_id`` and ``dt`` (:func:`activity_days`: any event or order).
    """

    def transform(features: DataFrame) -> DataFrame:
        active_days = (
            activity.where(F.col("user_id").isNotNull())
            .select("user_id", F.col("dt").alias("event_dt"))
            .distinct()
        )
        keys = features.select("user_id", "dt")
        in_horizon = (
            (keys["user_id"] == active_days["user_id"])
            & (active_days["event_dt"] > keys["dt"])
            & (active_days["event_dt"] <= F.date_add(keys["dt"], horizon_days))
        )
        still_active = keys.join(active_days, in_horizon, how="left_semi").withColumn("__active", F.lit(True))
        return (
            features.join(still_active, on=["user_id", "dt"], how="left")
            .withColumn(LABEL, F.when(F.col("__active"), F.lit(0.0)).otherwise(F.lit(1.0)))
            .drop("__active")
        )

    return transform


def split_by_date(training_set: DataFrame, test_date: dt.date) -> tuple[DataFrame, DataFrame]:
    """Time-based split: snapshots before ``test_date`` train, the ``test_date`` snapshot evaluates."""
    test_day = date_literal(test_date)
    return training_set.where(F.col("dt") < test_day), training_set.where(F.col("dt") == test_day)


def class_weights(weight_col: str) -> Transformation:
    """Add ``weight_col`` = rows / (2 * rows of the row's class), so both classes weigh the same in total.

    A set with a 10% positive rate gives positives 5.0 and negatives 0.556. One aggregate reaches the driver.
    """

    def transform(labelled: DataFrame) -> DataFrame:
        counts = labelled.agg(F.count(F.lit(1)).alias("rows"), F.sum(LABEL).alias("positives")).first()
        rows, positives = int(counts["rows"]), float(counts["positives"] or 0.0)
        negatives = rows - positives
        if positives == 0 or negatives == 0:
            raise ValueError(f"class weights need both labels; the training set has {positives:.0f} positives "
                             f"of {rows} rows")
        positive_weight, negative_weight = rows / (2 * positives), rows / (2 * negatives)
        return labelled.withColumn(
            weight_col, F.when(F.col(LABEL) == 1.0, F.lit(positive_weight)).otherwise(F.lit(negative_weight))
        )

    return transform


_HASH_BUCKETS = 10_000


def split_by_user_hash(training_set: DataFrame, test_fraction: float, seed: int) -> tuple[DataFrame, DataFrame]:
    """Random split by user: ``xxhash64(user_id, seed)`` buckets pick the test users; all snapshots of a user
    fall on the same side, so no user is on both sides. Deterministic for a seed, whatever the partitioning.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    bucket = F.pmod(F.xxhash64(F.col("user_id"), F.lit(int(seed))), F.lit(_HASH_BUCKETS))
    is_test = bucket < F.lit(int(round(test_fraction * _HASH_BUCKETS)))
    return training_set.where(~is_test), training_set.where(is_test)
