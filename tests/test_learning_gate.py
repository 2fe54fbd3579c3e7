"""A model that learnt nothing is never registered or published (portrait/model/gate.py, stages/train.py).

The gates themselves on exact numbers, then one daily run on a shop far too young to learn from (43 persons,
9 days, as the real behaviour sample that registered a model of all-zero scores): it says why with the numbers, publishes the portrait with rule tags and null scores, and registers
nothing; a model trained on the same shop that does not beat its baselines is logged with its evaluation but
not registered.
"""

from __future__ import annotations

import datetime as dt
import math
import re

import mlflow
import pytest
from pyspark.sql import functions as F

from portrait import graph
from portrait.config import ModelConfig
from portrait.lakehouse import Lakehouse
from portrait.model import tracking
from portrait.model.evaluation import binary_metrics
from portrait.model.gate import NothingToLearnError, SetSize, check_learnable, lift_refusal, set_size
from portrait.publish.assemble import UNSCORED_COLUMNS
from portrait.schemas import CUSTOMER_VALUE, PUBLISH_CHECKS, USER_PORTRAIT
from portrait.stages import train
from tests.conftest import make_config

DAY = dt.date(2026, 11, 20)
SETTINGS = ModelConfig(min_training_rows=100, min_class_rows=10)


def test_set_size_counts_rows_positives_and_persons(spark):
    rows = spark.createDataFrame([("a", 1.0), ("a", 0.0), ("b", 0.0), ("c", 1.0), ("c", 1.0)], ["user_id", "label"])
    size = set_size(rows)
    assert (size.rows, size.positives, size.negatives, size.persons) == (5, 3, 2, 3)


def test_enough_rows_of_both_classes_pass():
    check_learnable("purchase", SetSize(100, 10, 60), SetSize(20, 10, 20), SETTINGS)


@pytest.mark.parametrize(("train_set", "test_set", "short"), [
    (SetSize(2, 0, 2), SetSize(1, 0, 1),
     "2 training rows (model.min_training_rows: 100); 0 positive training rows (model.min_class_rows: 10); "
     "0 positive test rows (model.min_class_rows: 10)"),
    (SetSize(100, 95, 50), SetSize(20, 10, 20), "5 negative training rows (model.min_class_rows: 10)"),
    (SetSize(500, 50, 400), SetSize(200, 0, 180), "0 positive test rows (model.min_class_rows: 10)"),
])
def test_too_little_to_learn_from_names_each_shortfall_with_the_numbers(train_set, test_set, short):
    with pytest.raises(NothingToLearnError) as raised:
        check_learnable("purchase", train_set, test_set, SETTINGS)
    message = str(raised.value)
    assert f"target 'purchase' has too little history to learn from: {short}. " in message
    assert f"Training set {train_set.describe()}; test set {test_set.describe()}" in message
    assert "Nothing was trained or registered" in message


@pytest.mark.parametrize(("auc", "random", "rfm", "margin", "refused_by"), [
    (0.80, 0.50, 0.70, 0.01, None),
    (0.6578, 0.50, 0.6580, 0.0, "rfm"),     # below its RFM baseline: learnt nothing the rule does not know
    (0.71, 0.50, 0.70, 0.01, "rfm"),        # above, but not by the margin
    (0.52, 0.53, 0.40, 0.0, "random"),
    (math.nan, 0.50, 0.70, 0.0, "random"),  # undefined never passes
])
def test_a_model_must_beat_every_baseline_by_the_margin(auc, random, rfm, margin, refused_by):
    metrics = {"auc_roc": auc, "baseline_random_auc_roc": random, "baseline_rfm_auc_roc": rfm, "rows": 400.0}
    refusal = lift_refusal(metrics, margin)
    if refused_by is None:
        assert refusal is None
    else:
        baseline = {"random": random, "rfm": rfm}[refused_by]
        assert refusal == (f"test AUC-ROC {auc:.4f} does not beat the {refused_by} baseline's {baseline:.4f} by "
                           f"more than model.baseline_margin {margin} on the same 400 rows")


def test_auc_of_rows_of_one_class_is_undefined_not_zero_or_one(spark):
    one_class = spark.createDataFrame([(0.0, 0.2), (0.0, 0.9), (0.0, 0.5)], ["label", "purchase_propensity"])
    metrics = binary_metrics(one_class)
    assert math.isnan(metrics["auc_roc"]) and math.isnan(metrics["auc_pr"])
    assert (metrics["rows"], metrics["base_rate"]) == (3.0, 0.0)


@pytest.fixture(scope="module")
def young_shop(spark, tmp_path_factory):
    """``portrait daily`` on a generated shop of 43 persons and 9 days, both targets configured: purchase has
    two snapshots of history, its first two days (too few rows), churn none (its 30-day label reaches back too
    far)."""
    cfg = make_config(tmp_path_factory.mktemp("young") / "shop", GENERATE__USERS="43", GENERATE__DAYS="9",
                      MODEL__TARGETS="[purchase, churn]", MODEL__TRAINING_SNAPSHOTS="2", MODEL__SNAPSHOT_STEP_DAYS="1")
    summary = graph.run_daily(Lakehouse(spark, cfg), DAY)
    return cfg, summary


def _registered_models(cfg) -> list:
    tracking.use_store(cfg)
    return mlflow.MlflowClient().search_registered_models()


def test_a_young_shop_gets_a_portrait_with_rule_tags_and_null_scores_and_no_model(spark, young_shop):
    cfg, summary = young_shop
    assert set(summary.not_trained) == {"purchase", "churn"}
    too_little = "target '{}' has too little history to learn from: "
    assert re.match(too_little.format("purchase") + r"\d+ training rows \(model.min_training_rows: 100\)",
                    summary.not_trained["purchase"])
    assert summary.not_trained["churn"].startswith(too_little.format("churn") + "no training rows on the snapshot")
    rendered = summary.render()
    assert "not trained (purchase): target 'purchase' has too little history" in rendered
    assert f"portrait scored with: {graph.NO_MODEL}" in rendered
    assert _registered_models(cfg) == []

    lake = Lakehouse(spark, cfg)
    portrait = lake.read_day(USER_PORTRAIT, DAY)
    assert portrait.count() == summary.portrait_rows > 0
    unscored = portrait.agg(*[F.count(F.col(c)).alias(c) for c in (*UNSCORED_COLUMNS, "churn_score")]).first()
    assert unscored.asDict() == dict.fromkeys((*UNSCORED_COLUMNS, "churn_score"), 0)
    assert portrait.where(F.size("reason_codes") > 0).isEmpty()
    # 43 customers are too few for the value models too: every buyer has a value row, without predictions.
    values = lake.read_day(CUSTOMER_VALUE, DAY)
    assert values.count() > 0 and values.where(F.col("p_alive").isNotNull() | F.col("clv").isNotNull()).isEmpty()
    assert portrait.where(F.col("p_alive").isNotNull()).isEmpty()
    # Rule and statistical tags are published as on any day: every person has a lifecycle and an RFM tag.
    tagged = portrait.where(F.exists("tags", lambda t: t.startswith("lifecycle_"))
                            & F.exists("tags", lambda t: t.startswith("rfm_")))
    assert tagged.count() == summary.portrait_rows
    # The quality gate allowed exactly the model's columns to be null, and only on this date's checks.
    limits = {r["subject"]: r["threshold"] for r in lake.read_day(PUBLISH_CHECKS, DAY)
              .where(F.col("check") == "null_rate").collect()}
    assert {c: limits[c] for c in UNSCORED_COLUMNS} == dict.fromkeys(UNSCORED_COLUMNS, 1.0)
    assert limits["rfm_segment"] == cfg.publish.max_null_rate


def test_a_model_without_lift_over_its_baselines_is_logged_but_not_registered(spark, young_shop):
    cfg, _ = young_shop
    # The row minimums lowered so that the shop trains; a margin no model reaches so that it learns nothing.
    strict = cfg.model_copy(update={"model": cfg.model.model_copy(
        update={"min_training_rows": 1, "min_class_rows": 1, "baseline_margin": 1.0})})
    result = train.train(Lakehouse(spark, strict), DAY)
    assert result.registered_version is None and result.promotion is None
    assert result.refusal.startswith(f"test AUC-ROC {result.metrics['auc_roc']:.4f} does not beat the random")
    run = mlflow.MlflowClient().get_run(result.run_id)
    assert run.data.tags["registration"] == "refused"
    assert run.data.tags["registration_refusal"] == result.refusal
    assert run.data.metrics["baseline_rfm_auc_roc"] == pytest.approx(result.metrics["baseline_rfm_auc_roc"])
    assert _registered_models(strict) == []
