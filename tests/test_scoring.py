"""Tests of evaluation, scoring and the propensity Pipeline (portrait/model/scoring.py, pipeline.py)."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from pyspark.ml.feature import HashingTF, VectorSlicer
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

from portrait.config import ModelConfig
from portrait.features.population import POPULATION_SCHEMA
from portrait.model.evaluation import binary_metrics as evaluate
from portrait.model.pipeline import CATEGORICAL_FEATURES, COUNT_FEATURES, MODEL_INPUT_COLUMNS, build_pipeline
from portrait.model.scoring import SCORE, score
from portrait.model.training import LABEL

SCORED = "label double, purchase_propensity double"

# ---------------------------------------------------------------------------------------------
# evaluate
# ---------------------------------------------------------------------------------------------


def test_evaluate_perfect_ranking(spark):
    scored = spark.createDataFrame([(1.0, 0.9), (1.0, 0.8), (0.0, 0.3), (0.0, 0.1)], SCORED)
    metrics = evaluate(scored)
    expected_log_loss = -(math.log(0.9) + math.log(0.8) + math.log(1 - 0.3) + math.log(1 - 0.1)) / 4
    assert set(metrics) == {"auc_roc", "auc_pr", "log_loss", "brier", "base_rate", "rows"}
    assert metrics["auc_roc"] == pytest.approx(1.0, abs=1e-12)
    assert metrics["auc_pr"] == pytest.approx(1.0, abs=1e-12)
    assert metrics["log_loss"] == pytest.approx(expected_log_loss, abs=1e-9)
    assert metrics["base_rate"] == 0.5
    assert metrics["rows"] == 4.0


def test_evaluate_reversed_ranking(spark):
    scored = spark.createDataFrame([(1.0, 0.1), (1.0, 0.3), (0.0, 0.8), (0.0, 0.9)], SCORED)
    metrics = evaluate(scored)
    expected_log_loss = -(math.log(0.1) + math.log(0.3) + math.log(1 - 0.8) + math.log(1 - 0.9)) / 4
    assert metrics["auc_roc"] == pytest.approx(0.0, abs=1e-12)
    assert metrics["log_loss"] == pytest.approx(expected_log_loss, abs=1e-9)
    assert metrics["base_rate"] == 0.5


def test_evaluate_partial_ranking_and_base_rate(spark):
    # One positive above two of three negatives: AUC = 2/3.
    scored = spark.createDataFrame([(1.0, 0.5), (0.0, 0.2), (0.0, 0.6), (0.0, 0.4)], SCORED)
    metrics = evaluate(scored)
    expected_log_loss = -(math.log(0.5) + math.log(0.8) + math.log(0.4) + math.log(0.6)) / 4
    assert metrics["auc_roc"] == pytest.approx(2 / 3, abs=1e-12)
    assert metrics["log_loss"] == pytest.approx(expected_log_loss, abs=1e-9)
    assert metrics["base_rate"] == 0.25
    assert metrics["rows"] == 4.0


def test_evaluate_log_loss_is_finite_for_certain_mistakes(spark):
    """Probabilities 0 and 1 are clipped to [1e-15, 1 - 1e-15] before the logarithm."""
    scored = spark.createDataFrame([(1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (0.0, 0.0)], SCORED)
    low, high = 1e-15, 1 - 1e-15  # high is the double nearest 1 - 1e-15, so 1 - high is not exactly 1e-15
    expected = (-math.log(low) - math.log(1 - high) - math.log(high) - math.log(1 - low)) / 4
    assert 34 < expected * 2 < 35
    assert evaluate(scored)["log_loss"] == pytest.approx(expected, abs=1e-9)


# ---------------------------------------------------------------------------------------------
# build_pipeline + score
# ---------------------------------------------------------------------------------------------

# Small on purpose: ten L-BFGS iterations already separate the planted rule and keep the fit to seconds.
SETTINGS = ModelConfig(hashing_features=64, idf_min_doc_freq=2, selected_text_features=3, reg_param=0.01,
                       max_iter=10)
VOCABULARY = ("shoes", "phone", "dress", "book", "tea", "lamp", "bag")
INFORMATIVE = "coupon"
# The model's input contract (user_features columns), a label, and one extra column scoring must keep.
LABELLED = T.StructType(
    [POPULATION_SCHEMA[c] for c in MODEL_INPUT_COLUMNS]
    + [T.StructField(LABEL, T.DoubleType(), False), T.StructField("dt", T.DateType(), False)]
)


def _row(i: int) -> tuple:
    """User i: the planted rule is label = ("coupon" in the text) and carts_7d > 0.

    Other features vary with i through periods (4, 5, 7, 11, 13, ...) that carry no information about
    i % 2 (coupon) or i % 3 (carts), so only those two can explain the label.
    """
    coupon = i % 2 == 0
    carts_7d = i % 3
    words = [VOCABULARY[i % 7], VOCABULARY[(i // 7) % 7]] + ([INFORMATIVE] if coupon else [])
    orders_30d = (i // 4) % 2
    values = {
        "orders_30d": orders_30d, "spend_30d": orders_30d * 12.5, "orders_90d": orders_30d + (i // 8) % 2,
        "spend_90d": orders_30d * 12.5 + ((i // 8) % 2) * 20.0,
        "views_7d": (i * 7) % 13, "searches_7d": (i // 5) % 4, "carts_7d": carts_7d, "favs_7d": (i // 11) % 2,
        "buys_7d": (i // 13) % 2,
        "views_30d": (i * 7) % 13 + 5, "searches_30d": (i // 5) % 4 + 1, "carts_30d": carts_7d + (i // 7) % 2,
        "favs_30d": (i // 11) % 2 + 1, "buys_30d": (i // 13) % 2,
        "active_days_30d": 1 + i % 29, "days_since_first_event": 30 + i % 50, "days_since_last_event": i % 7,
    }
    assert set(values) == set(COUNT_FEATURES)
    recency = None if i % 5 == 0 else i % 17
    label = 1.0 if coupon and carts_7d > 0 else 0.0
    # Categorical levels v0..v3 and null (period 5: no information about i % 2 or i % 3 either).
    levels = {name: None if i % 5 == 4 else f"v{i % 5}" for name in CATEGORICAL_FEATURES}
    # Purchase history: periods that carry nothing about i % 2 or i % 3 either; none for every fifth user.
    bought = i % 5 != 1
    history = {"purchase_days": 1 + i % 7, "days_since_last_purchase": 10 * ((i * 7) % 13), "p_alive": 0.1 * (i % 7),
               "expected_purchases_30d": 0.05 * ((i * 7) % 13), "expected_purchases_90d": 0.1 * ((i // 11) % 2),
               "expected_purchases_365d": 0.3 * (i % 7)}
    history = {name: value if bought else None for name, value in history.items()}
    inputs = {"user_id": f"u{i:03d}", **values, "days_since_last_order": recency, **levels, **history,
              "text_document": " ".join(words)}
    return (*[inputs[c] for c in MODEL_INPUT_COLUMNS], label, dt.date(2024, 6, 30))


@pytest.fixture(scope="module")
def labelled(spark):
    return spark.createDataFrame([_row(i) for i in range(200)], LABELLED)


@pytest.fixture(scope="module")
def model(labelled):
    return build_pipeline(SETTINGS).fit(labelled)


def test_synthetic_set_is_what_the_tests_assume(labelled):
    counts = {r[LABEL]: r["count"] for r in labelled.groupBy(LABEL).count().collect()}
    assert counts == {1.0: 66, 0.0: 134}


def test_score_keeps_every_input_column_and_adds_a_probability(spark, labelled, model):
    scored = labelled.transform(score(model))
    assert scored.columns == [*labelled.columns, SCORE]
    assert dict(scored.dtypes)[SCORE] == "double"
    stats = scored.agg(F.count(F.lit(1)).alias("rows"), F.min(SCORE).alias("low"), F.max(SCORE).alias("high"),
                       F.count(SCORE).alias("scored")).first()
    assert stats["rows"] == stats["scored"] == 200
    assert 0.0 <= stats["low"] < stats["high"] <= 1.0
    # The input columns come back unchanged.
    assertDataFrameEqual(scored.drop(SCORE), labelled)


def test_score_needs_no_label(labelled, model):
    """The logged model takes raw user_features rows: scoring must not read the label."""
    features = labelled.drop(LABEL)
    scored = features.transform(score(model))
    assert scored.columns == [*features.columns, SCORE]
    assert scored.count() == 200


def test_fitted_pipeline_ranks_planted_positives_above_negatives(labelled, model):
    metrics = evaluate(labelled.transform(score(model)))
    assert metrics["auc_roc"] > 0.9
    assert metrics["base_rate"] == pytest.approx(66 / 200, abs=1e-12)
    assert metrics["log_loss"] < math.log(2)


def test_chi_square_selector_keeps_the_informative_term(model):
    hashing = next(s for s in model.stages if isinstance(s, HashingTF))
    selector = next(s for s in model.stages if isinstance(s, VectorSlicer))
    informative = hashing.indexOf(INFORMATIVE)
    noise = {hashing.indexOf(w) for w in VOCABULARY}
    assert informative not in noise, "hash collision: pick another hashing_features for this test"
    assert hashing.getNumFeatures() == SETTINGS.hashing_features and hashing.getBinary()
    assert len(selector.getIndices()) == SETTINGS.selected_text_features
    assert informative in selector.getIndices()


def test_empty_or_missing_text_document_gives_no_text_features(labelled, model):
    """A user without text (``text_document`` "" or null) must get an all-zero text vector.

    Spark's ``Tokenizer`` splits "" into [""], so the empty string would otherwise be hashed as a term:
    every text-less user shares a phantom token whose bucket may also be a real word's.
    """
    no_text = labelled.where(F.col("user_id").isin("u000", "u001")).withColumn(
        "text_document", F.when(F.col("user_id") == "u000", F.lit("")).otherwise(F.lit(None).cast("string"))
    )
    hashing = next(s for s in model.stages if isinstance(s, HashingTF))
    rows = model.transform(no_text).select("user_id", hashing.getOutputCol()).collect()
    assert {r[0]: int(r[1].numNonzeros()) for r in rows} == {"u000": 0, "u001": 0}


def test_class_weights_setting_sets_the_weight_column_of_logistic_regression():
    from pyspark.ml.classification import LogisticRegression

    from portrait.model.pipeline import WEIGHT

    weighted = build_pipeline(SETTINGS.model_copy(update={"class_weights": True})).getStages()[-1]
    plain = build_pipeline(SETTINGS).getStages()[-1]
    assert isinstance(weighted, LogisticRegression)
    assert weighted.isSet("weightCol") and weighted.getWeightCol() == WEIGHT
    assert not plain.isSet("weightCol")
