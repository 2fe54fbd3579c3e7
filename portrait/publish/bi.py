"""BI tables built from ``user_portrait``: pseudonymised newest rows, daily segment sizes, audience lists.

Everything BI tools or marketing receive carries ``person_key`` (HMAC of ``user_id``, :mod:`portrait.privacy`)
and never the raw id. Segment counts below ``privacy.min_group_size`` persons are left out before any optional
Laplace noise is added, so a small group is neither shown nor derivable from a noised number near zero.

All functions here are pure transformations; :mod:`portrait.stages.bi` reads and writes.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from portrait.features.dates import Transformation
from portrait.privacy import noised_count, person_key
from portrait.schemas import PERSON_KEY_COLUMN, PORTRAIT_LATEST, SEGMENT_DAILY

SCORE_COLUMN = "purchase_propensity"
DECILE_COLUMN = "propensity_decile"
# segment_daily averages these user_features columns, joined on (user_id, feature date).
FEATURE_VALUE_COLUMNS: tuple[str, ...] = ("spend_90d", "orders_90d")
AUDIENCE_COLUMNS: tuple[str, ...] = (PERSON_KEY_COLUMN, "score", "decile", "tags")


def pseudonymised(key: bytes) -> Transformation:
    """``user_portrait`` rows → ``portrait_latest`` columns: ``user_id`` replaced by ``person_key``.

    ``key`` is the HMAC key from :func:`portrait.privacy.pseudonym_key`; it stays inside the pseudonymising
    function (never a literal of the plan) and is never written anywhere.
    """

    def transform(portrait: DataFrame) -> DataFrame:
        keyed = portrait.withColumn(PERSON_KEY_COLUMN, person_key(F.col("user_id"), key))
        return keyed.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in PORTRAIT_LATEST.schema.fields])

    return transform


def newest_per_user(portrait: DataFrame) -> DataFrame:
    """The newest row (highest ``dt``) of each ``user_id`` among ``portrait`` rows of any number of dates.

    A hash aggregate with ``max_by`` instead of a window: no sort of the whole history.
    """
    others = [c for c in portrait.columns if c != "user_id"]
    newest = portrait.groupBy("user_id").agg(F.max_by(F.struct(*others), F.col("dt")).alias("newest"))
    return newest.select("user_id", *[F.col(f"newest.{c}").alias(c) for c in others])


def with_feature_values(features: DataFrame) -> Transformation:
    """Portrait rows + :data:`FEATURE_VALUE_COLUMNS` of the feature row they were built from (left join)."""

    def transform(portrait: DataFrame) -> DataFrame:
        values = features.select(
            "user_id", F.col("dt").alias("feature_dt"), *FEATURE_VALUE_COLUMNS)
        return portrait.join(values, on=["user_id", "feature_dt"], how="left")

    return transform


def _segment_memberships() -> Column:
    """One (segment_kind, segment) struct per segment a portrait row belongs to: 3 fixed kinds + its tags."""

    def member(kind: str, value: Column) -> Column:
        return F.struct(F.lit(kind).alias("segment_kind"), value.cast("string").alias("segment"))

    fixed = F.array(member("rfm_segment", F.col("rfm_segment")),
                    member("lifecycle_stage", F.col("lifecycle_stage")),
                    member("propensity_decile", F.col(DECILE_COLUMN)))
    tags = F.transform(F.array_distinct(F.filter(F.col("tags"), lambda tag: tag.isNotNull())),
                       lambda tag: member("tag", tag))
    return F.concat(fixed, tags)


def segment_daily(min_group_size: int, noise_epsilon: float | None = None, noise_seed: int = 0) -> Transformation:
    """Portrait rows with feature values (see :func:`with_feature_values`) → ``segment_daily`` rows.

    One row per date, segment kind (``rfm_segment``, ``lifecycle_stage``, ``propensity_decile``, ``tag``) and
    value: persons, average propensity, average 90-day spend and orders. Groups with fewer than
    ``min_group_size`` persons are dropped; then, with ``noise_epsilon``, the published ``users`` count gets
    Laplace noise (:func:`portrait.privacy.noised_count`, drawn from a hash of ``noise_seed`` and the group, so
    a re-run publishes the same numbers). Averages are not noised.
    """
    if not isinstance(min_group_size, int) or min_group_size < 1:
        raise ValueError(f"min_group_size must be a positive integer (privacy.min_group_size), got {min_group_size!r}")

    def transform(portrait: DataFrame) -> DataFrame:
        exploded = portrait.select("dt", SCORE_COLUMN, *FEATURE_VALUE_COLUMNS,
                                   F.explode(_segment_memberships()).alias("membership"))
        groups = (
            exploded.where(F.col("membership.segment").isNotNull())
            .groupBy("dt", F.col("membership.segment_kind").alias("segment_kind"),
                     F.col("membership.segment").alias("segment"))
            .agg(F.count(F.lit(1)).alias("users"),
                 F.avg(SCORE_COLUMN).alias("avg_propensity"),
                 F.avg("spend_90d").alias("avg_spend_90d"),
                 F.avg("orders_90d").alias("avg_orders_90d"))
        )
        publishable = groups.where(F.col("users") >= F.lit(min_group_size))
        if noise_epsilon is not None:
            publishable = publishable.withColumn(
                "users", noised_count("users", noise_epsilon, noise_seed, key=("dt", "segment_kind", "segment")))
        return publishable.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in SEGMENT_DAILY.schema.fields])

    return transform


def audience(tags: Sequence[str], min_score: float = 0.0) -> Transformation:
    """Pseudonymised portrait rows of one date → the audience: persons with every tag in ``tags`` and
    ``purchase_propensity >= min_score``, as (person_key, score, decile, tags), best score first.

    Example: ``portrait.transform(pseudonymised(key)).transform(audience(["cart_abandoner"], 0.3))``.
    """
    wanted = list(dict.fromkeys(tags))
    if not wanted:
        raise ValueError("an audience needs at least one tag (--tag TAG)")
    if not all(isinstance(tag, str) and tag for tag in wanted):
        raise ValueError(f"tags must be non-empty strings, got {wanted!r}")
    if not 0.0 <= float(min_score) <= 1.0:
        raise ValueError(f"min_score must be between 0 and 1 (a purchase probability), got {min_score!r}")
    has_every_tag = F.size(F.array_except(F.array(*[F.lit(t) for t in wanted]), F.col("tags"))) == 0
    # Without a minimum the score does not select: persons no model has scored yet (null) are in the audience.
    scored_enough = F.lit(True) if float(min_score) == 0.0 else F.col(SCORE_COLUMN) >= F.lit(float(min_score))

    def transform(rows: DataFrame) -> DataFrame:
        return (
            rows.where(has_every_tag & scored_enough)
            .select(PERSON_KEY_COLUMN, F.col(SCORE_COLUMN).alias("score"), F.col(DECILE_COLUMN).alias("decile"),
                    F.array_sort("tags").alias("tags"))
            .orderBy(F.col("score").desc_nulls_last(), F.col(PERSON_KEY_COLUMN))
        )

    return transform


def missing_tags(tags: Sequence[str], portrait: DataFrame) -> list[str]:
    """The tags of ``tags`` that no row of ``portrait`` carries (a typo, or a tag not live on that date).

    At most ``len(tags)`` values reach the driver.
    """
    wanted = list(dict.fromkeys(tags))
    present = {row[0] for row in portrait.select(F.explode("tags").alias("tag"))
               .where(F.col("tag").isin(wanted)).distinct().collect()}
    return [tag for tag in wanted if tag not in present]
