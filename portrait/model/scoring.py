"""Scoring with a fitted propensity model; evaluation lives in :mod:`portrait.model.evaluation`."""

from __future__ import annotations

from pyspark.ml import PipelineModel
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame

from portrait.features.behaviour import Transformation
from portrait.model.pipeline import PROBABILITY

SCORE = "purchase_propensity"


def score(model: PipelineModel) -> Transformation:
    """Add ``purchase_propensity`` (probability of the positive class) to feature rows; keep their columns."""

    def transform(features: DataFrame) -> DataFrame:
        scored = model.transform(features)
        return scored.select(*features.columns, vector_to_array(PROBABILITY)[1].alias(SCORE))

    return transform
