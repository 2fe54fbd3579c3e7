"""Scoring and evaluation of a fitted propensity model."""

from __future__ import annotations

from pyspark.ml import PipelineModel
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from portrait.features.behaviour import Transformation
from portrait.model.pipeline import PROBABILITY
from portrait.model.training import LABEL

SCORE = "purchase_propensity"
# Probabilities are clipped before the logarithm so one confident mistake cannot make log loss infinite.
_LOG_LOSS_EPSILON = 1e-15


def score(model: PipelineModel) -> Transformation:
    """Add ``purchase_propensity`` (probability of the positive class) to feature rows; keep their columns."""

    def transform(features: DataFrame) -> DataFrame:
        scored = model.transform(features)
        return scored.select(*features.columns, vector_to_array(PROBABILITY)[1].alias(SCORE))

    return transform


def evaluate(scored: DataFrame) -> dict[str, float]:
    """AUC-ROC, AUC-PR, log loss and base rate of labelled, scored rows (``label``, ``purchase_propensity``)."""
    evaluator = BinaryClassificationEvaluator(rawPredictionCol=SCORE, labelCol=LABEL)
    p = F.least(F.greatest(F.col(SCORE), F.lit(_LOG_LOSS_EPSILON)), F.lit(1 - _LOG_LOSS_EPSILON))
    stats = scored.agg(
        F.count(F.lit(1)).alias("rows"),
        F.avg(LABEL).alias("base_rate"),
        F.avg(-(F.col(LABEL) * F.log(p) + (1 - F.col(LABEL)) * F.log(1 - p))).alias("log_loss"),
    ).first()
    return {
        "auc_roc": evaluator.evaluate(scored, {evaluator.metricName: "areaUnderROC"}),
        "auc_pr": evaluator.evaluate(scored, {evaluator.metricName: "areaUnderPR"}),
        "log_loss": float(stats["log_loss"]),
        "base_rate": float(stats["base_rate"]),
        "rows": float(stats["rows"]),
    }
