"""What changed: the tags each user gained or lost since the previous portrait date (``portrait_changes``).

Marketing triggers on changes ("became high_propensity", "lost rfm_champions") instead of re-reading whole
portraits. Only users with a change get a row: ``new_user`` (not in the previous portrait; gained = all
their tags), ``left`` (in the previous portrait, not in this one; lost = all their tags) and
``tags_changed``. The previous date is the latest portrait date before this one; the first date has none,
and then there are no changes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from portrait.schemas import PORTRAIT_CHANGES
from portrait.schemas.partitions import date_literal

Transformation = Callable[[DataFrame], DataFrame]
NEW_USER, LEFT, TAGS_CHANGED = "new_user", "left", "tags_changed"


def tag_changes(previous: DataFrame, previous_day: dt.date, day: dt.date) -> Transformation:
    """Portrait rows of ``day`` → ``portrait_changes`` rows against ``previous`` (portrait rows of ``previous_day``).

    Both inputs need ``user_id`` and ``tags`` (one row per user). ``gained`` and ``lost`` are sorted and
    without duplicates.
    """
    if not previous_day < day:
        raise ValueError(f"the previous portrait date {previous_day} must be before {day}")

    def transform(current: DataFrame) -> DataFrame:
        empty = F.array().cast("array<string>")
        now = current.select("user_id", F.col("tags").alias("tags_now"), F.lit(True).alias("in_now"))
        before = previous.select("user_id", F.col("tags").alias("tags_before"), F.lit(True).alias("in_before"))
        tags_now, tags_before = F.coalesce("tags_now", empty), F.coalesce("tags_before", empty)
        gained, lost = F.array_except(tags_now, tags_before), F.array_except(tags_before, tags_now)
        kind = (F.when(F.col("in_before").isNull(), NEW_USER).when(F.col("in_now").isNull(), LEFT)
                .otherwise(TAGS_CHANGED))
        changed = (F.col("change_kind") != TAGS_CHANGED) | (F.size("gained") > 0) | (F.size("lost") > 0)
        return (
            now.join(before, on="user_id", how="full")
            .select(
                "user_id",
                kind.alias("change_kind"),
                F.array_sort(gained).alias("gained"),
                F.array_sort(lost).alias("lost"),
                date_literal(previous_day).alias("previous_dt"),
                date_literal(day).alias("dt"),
            )
            .where(changed)
            .select(*[F.col(f.name).cast(f.dataType) for f in PORTRAIT_CHANGES.schema.fields])
        )

    return transform
