"""Scoring with a fitted propensity model; evaluation lives in :mod:`portrait.model.evaluation`."""

from __future__ import annotations

from pyspark.ml import PipelineModel
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame

from portrait.features.behaviour import Transformation
from portrait.model.pipeline import PROBABILITY

SCORE = "purchase_propensity"


def score(model: PipelineModel, output: str = SCORE) -> Transformation:
    """Add ``output`` (default ``purchase_propensity``): the model's probability of the positive class; keep
    the rows' columns (a second model, e.g. churn, can score the same rows into another column)."""

    def transform(features: DataFrame) -> DataFrame:
        scored = model.transform(features)
        return scored.select(*features.columns, vector_to_array(PROBABILITY)[1].alias(output))

    return transform
