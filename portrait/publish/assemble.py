"""Assemble ``user_portrait`` rows from scored features: RFM segments, deciles and tags (lifecycle is a feature).

Population-relative scores (RFM quintiles, propensity deciles) need cut points over all users of the
date. They are computed with ``approxQuantile`` (a handful of numbers reach the driver) and passed in, so
the assembly itself is a plain row-wise transformation with no global sort or single-partition window.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from portrait.config import TagDefinition
from portrait.features.behaviour import Transformation
from portrait.model.scoring import SCORE
from portrait.publish.tags import apply_tags
from portrait.schemas import USER_PORTRAIT

QUANTILE_RELATIVE_ERROR = 0.001
REASON_CODES = "reason_codes"

# Classic RFM segments from the R and F scores, first matching rule wins; every (R, F) pair is covered.
RFM_SEGMENT_RULES: tuple[tuple[str, str], ...] = (
    ("champions", "recency_score >= 4 AND frequency_score >= 4"),
    ("loyal_customers", "recency_score >= 3 AND frequency_score >= 3"),
    ("new_customers", "recency_score >= 4 AND frequency_score <= 1"),
    ("potential_loyalists", "recency_score >= 3"),
    ("at_risk", "frequency_score >= 3"),
    ("hibernating", "TRUE"),
)
NO_PURCHASE_SEGMENT = "no_purchase"


@dataclass(frozen=True)
class CutPoints:
    """Population cut points for one date: RFM quintile edges over buyers and propensity decile edges."""

    recency: list[float]
    frequency: list[float]
    monetary: list[float]
    propensity: list[float]


def cut_points(scored_features: DataFrame) -> CutPoints:
    """Quantile edges of the date's population (4 quintile edges for R, F, M over buyers; 9 deciles)."""
    buyers = scored_features.where(F.col("days_since_last_order").isNotNull())
    quintiles = [0.2, 0.4, 0.6, 0.8]
    recency, frequency, monetary = buyers.approxQuantile(
        ["days_since_last_order", "orders_90d", "spend_90d"], quintiles, QUANTILE_RELATIVE_ERROR
    )
    deciles = [k / 10 for k in range(1, 10)]
    (propensity,) = scored_features.approxQuantile([SCORE], deciles, QUANTILE_RELATIVE_ERROR)
    return CutPoints(recency, frequency, monetary, propensity)


def rank_against(column: str, edges: list[float]) -> Column:
    """1 + the number of edges strictly below the value: 1..len(edges)+1, ties share a rank."""
    rank = F.lit(1)
    for edge in edges:
        rank = rank + F.when(F.col(column) > F.lit(float(edge)), 1).otherwise(0)
    return rank.cast("int")


def _rfm_segment() -> Column:
    segment = F.lit(None).cast("string")
    for name, rule in reversed(RFM_SEGMENT_RULES):
        segment = F.when(F.expr(rule), F.lit(name)).otherwise(segment)
    return segment


def assemble_portrait(day: dt.date, cuts: CutPoints, model_name: str, model_run_id: str,
                      tags: Sequence[TagDefinition] = ()) -> Transformation:
    """Scored ``user_features`` rows of ``day`` → ``user_portrait`` rows (the contract's columns).

    ``reason_codes`` are taken from the scored rows when they have that column (see
    :func:`portrait.model.explain.reason_codes`), else every row gets an empty list. ``tags`` is the tag
    registry (``cfg.tags``): its live tags fill the ``tags`` column (none given: every row gets an empty list).
    """

    def transform(scored: DataFrame) -> DataFrame:
        # Reason codes come from the model's explanation when the scored rows carry them.
        reasons = (F.coalesce(F.col(REASON_CODES), F.array().cast("array<string>"))
                   if REASON_CODES in scored.columns else F.array().cast("array<string>"))
        has_ordered = F.col("days_since_last_order").isNotNull()
        # A smaller recency is better, so R counts the edges the recency is *not* above.
        recency_rank = F.lit(len(cuts.recency) + 2) - rank_against("days_since_last_order", cuts.recency)
        with_scores = (
            scored.withColumn("recency_score", F.when(has_ordered, recency_rank).otherwise(1).cast("int"))
            .withColumn("frequency_score",
                        F.when(has_ordered, rank_against("orders_90d", cuts.frequency)).otherwise(1))
            .withColumn("monetary_score",
                        F.when(has_ordered, rank_against("spend_90d", cuts.monetary)).otherwise(1))
            .withColumn("rfm_segment", F.when(has_ordered, _rfm_segment()).otherwise(NO_PURCHASE_SEGMENT))
            .withColumn("propensity_decile", rank_against(SCORE, cuts.propensity))
        )
        return (
            with_scores.withColumn("top_category", F.col("top_category_30d"))
            .withColumn("model_name", F.lit(model_name))
            .withColumn("model_run_id", F.lit(model_run_id))
            .withColumn("feature_dt", F.col("dt"))
            .withColumn("dt", F.lit(day).cast("date"))
            .withColumn(REASON_CODES, reasons)
            .transform(apply_tags(tags))  # live tags of the registry, over feature and portrait columns
            .select(*[F.col(f.name).cast(f.dataType) for f in USER_PORTRAIT.schema.fields])
        )

    return transform
