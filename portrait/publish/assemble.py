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
from portrait.features.dates import Transformation
from portrait.model.scoring import QUANTILE_RELATIVE_ERROR, SCORE, rank_against
from portrait.privacy import person_key
from portrait.publish.tags import apply_tags
from portrait.schemas import PERSON_KEY_COLUMN, PURCHASE_HISTORY, USER_PORTRAIT
from portrait.schemas.partitions import date_literal
from portrait.schemas.published import PORTRAIT_VALUE_COLUMNS

REASON_CODES = "reason_codes"
CHURN_SCORE = "churn_score"
CHURN_REASON_CODES = "churn_reason_codes"
CLV = "clv"
HORIZON_PROPENSITIES = "horizon_propensities"
# The purchase model's columns: null on a date no model scored (none has learnt enough yet).
UNSCORED_COLUMNS: tuple[str, ...] = (SCORE, "propensity_decile", "model_name", "model_version", "model_run_id")
# Columns of the users table carried into the portrait as they are (tenure_days is derived from signup_date).
USER_ATTRIBUTES: tuple[str, ...] = ("gender", "age_band", "city_tier")

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
    """Population cut points for one date: RFM quintile edges over buyers, propensity and churn decile edges
    (each empty when the rows carry no such score)."""

    recency: list[float]
    frequency: list[float]
    monetary: list[float]
    propensity: tuple[float, ...] = ()
    churn: tuple[float, ...] = ()
    clv: tuple[float, ...] = ()  # quintile edges of the predicted customer value, over persons that have one


@dataclass(frozen=True)
class PortraitLineage:
    """Where a date's portrait comes from: the models that scored it (None: no model did) and the input table
    versions read."""

    model_name: str | None
    model_run_id: str | None
    model_version: str | None = None
    churn_model_run_id: str | None = None
    input_versions: tuple[tuple[str, int], ...] = ()
    horizon_model_run_ids: tuple[tuple[str, str], ...] | None = None  # None: no horizon targets configured


def cut_points(scored_features: DataFrame) -> CutPoints:
    """Quantile edges of the date's population (4 quintile edges for R, F, M over buyers; 9 deciles of each
    score; 4 quintile edges of ``clv`` over the persons with one)."""
    buyers = scored_features.where(F.col("days_since_last_order").isNotNull())
    quintiles = [0.2, 0.4, 0.6, 0.8]
    recency, frequency, monetary = buyers.approxQuantile(
        ["days_since_last_order", "orders_90d", "spend_90d"], quintiles, QUANTILE_RELATIVE_ERROR
    )
    deciles = [k / 10 for k in range(1, 10)]
    # One pass for every score; approxQuantile skips each column's nulls (persons without a score or a value).
    scores = [c for c in (SCORE, CHURN_SCORE, CLV) if c in scored_features.columns]
    quantiles = scored_features.approxQuantile(scores, deciles, QUANTILE_RELATIVE_ERROR) if scores else []
    edges = dict(zip(scores, quantiles, strict=True))
    return CutPoints(recency, frequency, monetary, tuple(edges.get(SCORE, ())), tuple(edges.get(CHURN_SCORE, ())),
                     tuple(edges.get(CLV, ())[1::2]))  # deciles 2, 4, 6, 8: the quintile edges


def _rfm_segment() -> Column:
    segment = F.lit(None).cast("string")
    for name, rule in reversed(RFM_SEGMENT_RULES):
        segment = F.when(F.expr(rule), F.lit(name)).otherwise(segment)
    return segment


def segment_labels(tags: Sequence[TagDefinition]) -> dict[str, tuple[str, str]]:
    """RFM segment code → (Chinese, English) label, from the registry's tags ``rfm_<segment>`` under ``rfm``."""
    return {tag.code.removeprefix("rfm_"): (tag.name_zh, tag.name_en)
            for tag in tags if tag.parent == "rfm" and tag.code.startswith("rfm_")}


def _label(segment: Column, labels: dict[str, tuple[str, str]], index: int) -> Column:
    label = segment  # a segment without a registry tag is labelled by its code
    for code, names in labels.items():
        label = F.when(segment == F.lit(code), F.lit(names[index])).otherwise(label)
    return label


def _value_tier(clv_edges: tuple[float, ...]) -> Column:
    """From predicted value where the person has one (their CLV's quintile: 5 high, 3-4 mid, 1-2 low), else
    from past spend (the M score, likewise); none without a paid order in the lookback or a predicted value."""
    by_spend = (F.when(F.col("rfm_segment") == NO_PURCHASE_SEGMENT, "none")
                .when(F.col("monetary_score") >= 5, "high")
                .when(F.col("monetary_score") >= 3, "mid")
                .otherwise("low"))
    if not clv_edges:
        return by_spend
    quintile = rank_against(CLV, list(clv_edges))
    by_value = F.when(quintile >= 5, "high").when(quintile >= 3, "mid").otherwise("low")
    return F.when(F.col(CLV).isNotNull(), by_value).otherwise(by_spend)


def with_user_attributes(users: DataFrame | None) -> Transformation:
    """Add the base attributes of the ``users`` table (``USER_ATTRIBUTES`` and ``signup_date``) by
    ``user_id``; without the table (it is optional) they are null."""

    def transform(features: DataFrame) -> DataFrame:
        if users is None:
            return features.select("*", *[F.lit(None).cast("string").alias(c) for c in USER_ATTRIBUTES],
                                   F.lit(None).cast("date").alias("signup_date"))
        # users is keyed by user_id but Delta does not enforce keys: should an id repeat, keep one row
        # deterministically (the latest signup, then the largest values) so a person never gets two rows.
        columns = ("signup_date", *USER_ATTRIBUTES)
        newest = F.max(F.struct(*columns)).alias("newest")
        attributes = users.groupBy("user_id").agg(newest).select(
            "user_id", *[F.col(f"newest.{c}").alias(c) for c in columns])
        return features.join(attributes, "user_id", "left")

    return transform


def _optional(columns: Sequence[str], column: str, data_type: str) -> Column:
    return F.col(column) if column in columns else F.lit(None).cast(data_type)


def _reasons(columns: Sequence[str], column: str) -> Column:
    # Reason codes come from the models' explanations when the scored rows carry them.
    return (F.coalesce(F.col(column), F.array().cast("array<string>"))
            if column in columns else F.array().cast("array<string>"))


def _with_scores(cuts: CutPoints, propensity: Column, churn: Column) -> Transformation:
    """RFM scores and segment, propensity and churn deciles against the population's cut points."""
    has_ordered = F.col("days_since_last_order").isNotNull()
    # A smaller recency is better, so R counts the edges the recency is *not* above.
    recency_rank = F.lit(len(cuts.recency) + 2) - rank_against("days_since_last_order", cuts.recency)

    def transform(scored: DataFrame) -> DataFrame:
        return (
            scored.withColumn("recency_score", F.when(has_ordered, recency_rank).otherwise(1).cast("int"))
            .withColumn("frequency_score",
                        F.when(has_ordered, rank_against("orders_90d", cuts.frequency)).otherwise(1))
            .withColumn("monetary_score",
                        F.when(has_ordered, rank_against("spend_90d", cuts.monetary)).otherwise(1))
            .withColumn("rfm_segment", F.when(has_ordered, _rfm_segment()).otherwise(NO_PURCHASE_SEGMENT))
            .withColumn(SCORE, propensity)
            .withColumn("propensity_decile",
                        F.when(propensity.isNotNull(), rank_against(SCORE, list(cuts.propensity))))
            .withColumn(CHURN_SCORE, churn)
            .withColumn("churn_decile", F.when(churn.isNotNull(), rank_against(CHURN_SCORE, list(cuts.churn))))
        )

    return transform


def _with_person(columns: Sequence[str], pseudonym_key: bytes, labels: dict[str, tuple[str, str]],
                 high_refund_rate: float, clv_edges: tuple[float, ...]) -> Transformation:
    """Person key, base attributes, segment labels, value tier, top category, the refund risk flag and the
    customer value columns; ``columns`` are those of the scored rows (attributes and values they lack are
    null)."""

    def transform(rows: DataFrame) -> DataFrame:
        return (
            rows.withColumn(PERSON_KEY_COLUMN, person_key(F.col("user_id"), pseudonym_key))
            .withColumn("gender", _optional(columns, "gender", "string"))
            .withColumn("age_band", _optional(columns, "age_band", "string"))
            .withColumn("city_tier", _optional(columns, "city_tier", "string"))
            .withColumn("tenure_days", F.datediff(F.col("dt"), _optional(columns, "signup_date", "date")))
            .withColumn("rfm_segment_zh", _label(F.col("rfm_segment"), labels, 0))
            .withColumn("rfm_segment_en", _label(F.col("rfm_segment"), labels, 1))
            .withColumns({c: _optional(columns, c, "int") for c, _ in PURCHASE_HISTORY})
            .withColumns({c: _optional(columns, c, "double") for c in PORTRAIT_VALUE_COLUMNS})
            .withColumn("value_tier", _value_tier(clv_edges))
            .withColumn("top_category", F.col("top_category_30d"))
            .withColumn("high_refund_rate", F.coalesce(F.col("refund_rate_90d") >= F.lit(high_refund_rate),
                                                       F.lit(False)))
        )

    return transform


def _with_lineage(columns: Sequence[str], day: dt.date, lineage: PortraitLineage, churn: Column) -> Transformation:
    """Models and input versions behind the row, the feature and portrait dates, and the reason codes."""
    versions = F.array(*[F.struct(F.lit(table).alias("table"), F.lit(version).cast("long").alias("version"))
                         for table, version in sorted(lineage.input_versions)])
    horizon_runs = F.lit(None)
    if lineage.horizon_model_run_ids is not None:
        targets, runs = zip(*lineage.horizon_model_run_ids, strict=True) if lineage.horizon_model_run_ids else ((), ())
        horizon_runs = F.map_from_arrays(F.array(*map(F.lit, targets)).cast("array<string>"),
                                         F.array(*map(F.lit, runs)).cast("array<string>"))

    def transform(rows: DataFrame) -> DataFrame:
        return (
            rows.withColumn("model_name", F.lit(lineage.model_name).cast("string"))
            .withColumn("model_version", F.lit(lineage.model_version).cast("string"))
            .withColumn("model_run_id", F.lit(lineage.model_run_id).cast("string"))
            .withColumn("churn_model_run_id",
                        F.when(churn.isNotNull(), F.lit(lineage.churn_model_run_id)).cast("string"))
            .withColumn("horizon_propensities", _optional(columns, HORIZON_PROPENSITIES, "map<string,double>"))
            .withColumn("horizon_model_run_ids", horizon_runs.cast("map<string,string>"))
            .withColumn("input_versions", versions)
            .withColumn("feature_dt", F.col("dt"))
            .withColumn("dt", date_literal(day))
            .withColumn(REASON_CODES, _reasons(columns, REASON_CODES))
            .withColumn(CHURN_REASON_CODES, _reasons(columns, CHURN_REASON_CODES))
        )

    return transform


def assemble_portrait(day: dt.date, cuts: CutPoints, lineage: PortraitLineage, pseudonym_key: bytes,
                      tags: Sequence[TagDefinition] = (), high_refund_rate: float = 0.5) -> Transformation:
    """Scored ``user_features`` rows of ``day`` → ``user_portrait`` rows (the contract's columns).

    The rows may carry ``reason_codes`` and ``churn_reason_codes`` (see
    :func:`portrait.model.explain.reason_codes`; else every row gets an empty list), ``purchase_propensity``
    and ``churn_score`` (else null) and the base attributes of :func:`with_user_attributes` (else null).
    ``tags`` is the tag registry (``cfg.tags``): its live tags fill the ``tags`` column and its
    ``rfm_<segment>`` tags name the RFM segments. ``pseudonym_key`` makes ``person_key``
    (:func:`portrait.privacy.person_key`).
    """
    labels = segment_labels(tags)

    def transform(scored: DataFrame) -> DataFrame:
        columns = scored.columns
        churn = _optional(columns, CHURN_SCORE, "double")
        return (
            scored.transform(_with_scores(cuts, _optional(columns, SCORE, "double"), churn))
            .transform(_with_person(columns, pseudonym_key, labels, high_refund_rate, cuts.clv))
            .transform(_with_lineage(columns, day, lineage, churn))
            .transform(apply_tags(tags))  # live tags of the registry, over feature and portrait columns
            .select(*[F.col(f.name).cast(f.dataType) for f in USER_PORTRAIT.schema.fields])
        )

    return transform
