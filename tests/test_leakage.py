"""Leakage tests on generated data: the model cannot learn from noise, and features never look past D.

(a) Trained on shuffled labels, the production pipeline must score the (real-label) test snapshot no better
    than chance: AUC within 0.05 of 0.5. A label that leaked into the features (or test rows seen in
    training) would keep the AUC high. Two sources of spread around 0.5 make the bound honest or not:
    the test sample (under the null the AUC's standard error is sqrt((n1 + n0 + 1) / (12 n1 n0)), Hanley &
    McNeil; the test asserts 0.05 is at least three of them), and the noise-fitted model itself: its score is
    a random direction in feature space, and the numeric features are few and all correlated with activity,
    which predicts purchases, so one shuffle can land about 0.06 from 0.5 by chance. The test therefore
    averages the AUC over four seeded shuffles, which halves that part of the spread; the bound is then about
    two to three combined standard errors, and deterministic for the fixed seeds. The real labels, through the
    same pipeline on the same rows, must score outside the bound, so the check can fail. The rows are the
    daily shop's (tests/shops.py): the snapshots its run trained on, already stored.
(b) Events and paid orders planted *after* the newest snapshot date (inside its label window, and on the run
    date) into a copy of the daily shop leave every feature row of every snapshot identical once the features
    are recomputed, while the planted orders do flip exactly the planted users' labels (the planted data is
    read).
"""

from __future__ import annotations

import datetime as dt
import math
from zoneinfo import ZoneInfo

import pytest
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from portrait import io
from portrait.lakehouse import Lakehouse
from portrait.model.evaluation import binary_metrics
from portrait.model.pipeline import build_pipeline
from portrait.model.scoring import score
from portrait.model.training import LABEL, snapshot_dates
from portrait.schemas import CLICKSTREAM, ORDERS, USER_FEATURES
from portrait.stages import features as feature_stage
from portrait.stages import train as train_stage
from tests.shops import RUN_DATE

SHUFFLE_SEEDS = (20261120, 1, 2, 3)
BOUND = 0.05


def _shuffle_labels(rows: DataFrame, seed: int) -> DataFrame:
    """The same rows with their labels permuted: row i (by key) gets the label of row i in a seeded
    hash order. Class counts are unchanged, and the order does not depend on the partitioning."""
    by_key = Window.orderBy("user_id", "dt")
    by_hash = Window.orderBy(F.xxhash64("user_id", "dt", F.lit(seed)), "user_id", "dt")
    keyed = rows.withColumn("__i", F.row_number().over(by_key)).drop(LABEL)
    labels = rows.select(F.row_number().over(by_hash).alias("__i"), F.col(LABEL))
    return keyed.join(labels, on="__i", how="inner").drop("__i")


def _null_auc_standard_error(positives: int, negatives: int) -> float:
    return math.sqrt((positives + negatives + 1) / (12.0 * positives * negatives))


@pytest.mark.slow
@pytest.mark.mission
def test_shuffled_labels_give_chance_auc_on_the_test_snapshot(spark, daily_shop):
    # The daily shop's snapshots, as its run trained on them (the features are stored, nothing is written).
    cfg = daily_shop.cfg
    _, train, test = train_stage.training_sets(Lakehouse(spark, cfg), RUN_DATE)
    train, test = train.cache(), test.cache()
    counts = {r[LABEL]: r["count"] for r in test.groupBy(LABEL).count().collect()}
    standard_error = _null_auc_standard_error(int(counts[1.0]), int(counts[0.0]))
    assert 3 * standard_error <= BOUND, f"test set too small for an honest bound: SE {standard_error:.4f}"

    shuffled = train.transform(lambda rows: _shuffle_labels(rows, SHUFFLE_SEEDS[0]))

    def label_counts(rows: DataFrame) -> dict[float, int]:
        return {r[LABEL]: r["count"] for r in rows.groupBy(LABEL).count().collect()}

    assert label_counts(shuffled) == label_counts(train)
    moved = train.select("user_id", "dt", F.col(LABEL).alias("before")).join(
        shuffled.select("user_id", "dt", LABEL), on=["user_id", "dt"], how="inner")
    assert moved.count() == train.count() and moved.where(F.col("before") != F.col(LABEL)).count() > 0

    def test_auc(rows: DataFrame) -> float:
        return binary_metrics(test.transform(score(build_pipeline(cfg.model).fit(rows))))["auc_roc"]

    noise_aucs = [test_auc(train.transform(lambda rows, s=seed: _shuffle_labels(rows, s))) for seed in SHUFFLE_SEEDS]
    noise_auc = sum(noise_aucs) / len(noise_aucs)
    real_auc = test_auc(train)
    print(f"shuffled-label AUCs {noise_aucs}, real-label AUC {real_auc}, test-sample SE {standard_error}")
    assert abs(noise_auc - 0.5) <= BOUND, (
        f"shuffled-label AUC {noise_auc:.4f} = mean of {[round(a, 4) for a in noise_aucs]} "
        f"(test-sample SE {standard_error:.4f})")
    assert real_auc - 0.5 > BOUND, f"real-label AUC {real_auc:.4f}: the check above could not fail"
    train.unpersist()
    test.unpersist()


def _local_instant(day: dt.date, hour: int, time_zone: str) -> dt.datetime:
    """Naive UTC datetime of ``hour``:00 local time on ``day`` (Spark reads naive datetimes as UTC here)."""
    local = dt.datetime(day.year, day.month, day.day, hour, tzinfo=ZoneInfo(time_zone))
    return local.astimezone(dt.timezone.utc).replace(tzinfo=None)


def _plant(spark, cfg, users: list[str], days: list[dt.date]) -> None:
    """Append to clickstream and orders, for each user and day: a view, two carts and one paid order."""
    events, orders = [], []
    for user in users:
        for day in days:
            at = _local_instant(day, 12, cfg.time_zone)
            for k, kind in enumerate(("view", "cart", "cart")):
                events.append((f"planted-{user}-{day}-{k}", user, None, None, at, kind, "planted-item",
                               "planted-category", "planted-brand", 99.0, None, "organic", "app", day))
            orders.append((f"planted-{user}-{day}", 1, user, at, "paid", "planted-item", "planted-category",
                           1, 99.0, 0.0, day))
    io.append_rows(spark, cfg, CLICKSTREAM, spark.createDataFrame(events, CLICKSTREAM.schema))
    io.append_rows(spark, cfg, ORDERS, spark.createDataFrame(orders, ORDERS.schema))


@pytest.mark.slow
@pytest.mark.mission
def test_no_feature_row_of_a_snapshot_sees_data_after_its_date(spark, daily_shop, tmp_path):
    cfg = daily_shop.copy(tmp_path / "shop")  # rows are planted into the copy
    dates = snapshot_dates(RUN_DATE, cfg.model.label_horizon_days, cfg.model.training_snapshots,
                           cfg.model.snapshot_step_days)
    newest = dates[-1]

    def labelled_rows() -> DataFrame:
        """Materialised now: a cached plan would be reused for the same query after the planting."""
        _, train, test = train_stage.training_sets(Lakehouse(spark, cfg), RUN_DATE)
        return train.unionByName(test).localCheckpoint(eager=True)

    before = labelled_rows()
    assert before.select("dt").distinct().count() == len(dates)
    # Users who do not buy in the newest snapshot's label window: planting an order there must flip them.
    planted = [r["user_id"] for r in before.where((F.col("dt") == F.lit(newest)) & (F.col(LABEL) == 0.0))
               .select("user_id").orderBy("user_id").limit(20).collect()]
    assert len(planted) == 20
    # The day after the newest snapshot (inside its label window, after every snapshot date) and the run date.
    after_newest = newest + dt.timedelta(days=1)
    _plant(spark, cfg, planted, [after_newest, RUN_DATE])
    # The planted days' rollups are stored first, so a window looking past its date would see them.
    feature_stage.compute(Lakehouse(spark, cfg), after_newest)
    feature_stage.compute(Lakehouse(spark, cfg), RUN_DATE)
    for day in dates:  # recompute the features as of each D from the tables that now hold the planted rows
        feature_stage.compute(Lakehouse(spark, cfg), day)
    after = labelled_rows()

    features = [c for c in before.columns if c != LABEL]
    assertDataFrameEqual(after.select(*features), before.select(*features))
    flipped = (
        before.select("user_id", "dt", F.col(LABEL).alias("before"))
        .join(after.select("user_id", "dt", LABEL), on=["user_id", "dt"], how="inner")
        .where(F.col("before") != F.col(LABEL))
        .select("user_id", "dt", "before", LABEL)
    )
    assertDataFrameEqual(
        flipped, spark.createDataFrame([(u, newest, 0.0, 1.0) for u in planted], "user_id string, dt date, "
                                       "before double, label double"))
    # The planted events are visible to the features of the date they fall on: the check above could fail.
    seen = (io.read_table(spark, cfg, USER_FEATURES)
            .where((F.col("dt") == F.lit(after_newest)) & F.col("user_id").isin(planted)))
    assert seen.where(F.col("carts_7d") >= 2).count() == len(planted)
