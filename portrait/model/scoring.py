"""Scoring with a fitted propensity model, and ranking scores against population cut points; evaluation lives in
:mod:`portrait.model.evaluation`."""

from __future__ import annotations

from pyspark.ml import PipelineModel
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from portrait.features.dates import Transformation
from portrait.model.pipeline import PROBABILITY

SCORE = "purchase_propensity"
# Relative error of the approxQuantile cut points that scores and features are ranked against.
QUANTILE_RELATIVE_ERROR = 0.001


def score(model: PipelineModel, output: str = SCORE) -> Transformation:
    """Add ``output`` (default ``purchase_propensity``): the model's probability of the positive class; keep
    the rows' columns (a second model, e.g. churn, can score the same rows into another column)."""

    def transform(features: DataFrame) -> DataFrame:
        scored = model.transform(features)
        return scored.select(*features.columns, vector_to_array(PROBABILITY)[1].alias(output))

    return transform


def rank_against(column: str, edges: list[float]) -> Column:
    """1 + the number of edges strictly below the value: 1..len(edges)+1, ties share a rank."""
    rank = F.lit(1)
    for edge in edges:
        rank = rank + F.when(F.col(column) > F.lit(float(edge)), 1).otherwise(0)
    return rank.cast("int")
