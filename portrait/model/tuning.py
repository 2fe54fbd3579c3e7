"""Hyper-parameter search over the propensity Pipeline: regParam × elasticNetParam × numTopFeatures.

``TrainValidationSplit`` (one random split of the training rows) or ``CrossValidator`` (k folds), both
seeded with ``model.seed`` and scored by AUC-ROC; the best candidate is refitted on all training rows.
Rows are split at random, so one user's snapshots can fall on both sides of a validation split: fine for
choosing among candidates, while the reported test metrics still come from the held-out test set.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.ml import PipelineModel
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.ml.tuning import CrossValidator, ParamGridBuilder, TrainValidationSplit
from pyspark.sql import DataFrame

from portrait.config import ModelConfig
from portrait.model.pipeline import ChiSquareTopK, build_pipeline
from portrait.model.training import LABEL


@dataclass(frozen=True)
class TuningResult:
    """The refitted best model, its parameters and every candidate's validation AUC-ROC."""

    model: PipelineModel
    best: dict[str, float]
    validation_auc_roc: float
    candidates: list[dict[str, float]]

    def params(self) -> dict[str, float]:
        return {f"best_{name}": value for name, value in self.best.items()}


def tune(settings: ModelConfig, train: DataFrame) -> TuningResult:
    """Search ``settings.tuning``'s grid on ``train`` (labelled ``user_features`` rows) and refit the best."""
    tuning = settings.tuning
    pipeline = build_pipeline(settings)
    stages = pipeline.getStages()
    lr = next(s for s in stages if isinstance(s, LogisticRegression))
    selector = next(s for s in stages if isinstance(s, ChiSquareTopK))
    named = {"reg_param": lr.regParam, "elastic_net_param": lr.elasticNetParam,
             "selected_text_features": selector.numTopFeatures}
    grid = (
        ParamGridBuilder()
        .addGrid(lr.regParam, [float(v) for v in tuning.reg_params])
        .addGrid(lr.elasticNetParam, [float(v) for v in tuning.elastic_net_params])
        .addGrid(selector.numTopFeatures, [int(v) for v in tuning.selected_text_features])
        .build()
    )
    evaluator = BinaryClassificationEvaluator(rawPredictionCol="rawPrediction", labelCol=LABEL,
                                              metricName="areaUnderROC")
    if tuning.method == "cross_validation":
        search = CrossValidator(estimator=pipeline, estimatorParamMaps=grid, evaluator=evaluator,
                                numFolds=tuning.folds, parallelism=tuning.parallelism, seed=settings.seed)
        fitted = search.fit(train)
        scores = list(fitted.avgMetrics)
    else:
        search = TrainValidationSplit(estimator=pipeline, estimatorParamMaps=grid, evaluator=evaluator,
                                      trainRatio=tuning.train_ratio, parallelism=tuning.parallelism,
                                      seed=settings.seed)
        fitted = search.fit(train)
        scores = list(fitted.validationMetrics)
    candidates = [
        {**{name: float(params[param]) for name, param in named.items()}, "validation_auc_roc": float(auc)}
        for params, auc in zip(grid, scores, strict=True)
    ]
    best_index = max(range(len(scores)), key=lambda i: (scores[i], -i))  # first of equal scores wins
    best = {k: v for k, v in candidates[best_index].items() if k != "validation_auc_roc"}
    return TuningResult(fitted.bestModel, best, float(scores[best_index]), candidates)
