"""Date windows shared by the feature families.

Point in time: ``dt`` is the event's date in the configured time zone, so "everything before the end of
day D" is exactly ``dt <= D``. Features filter on ``dt`` first, which is also the partition column, so Delta
reads only the days a window needs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from portrait.schemas.partitions import date_literal

LOOKBACK_DAYS = 90

Transformation = Callable[[DataFrame], DataFrame]


def within_days(day: dt.date, days: int) -> Column:
    """True for rows whose ``dt`` lies in the ``days`` days ending on ``day`` (both ends included)."""
    return (F.col("dt") <= date_literal(day)) & (F.col("dt") > F.date_sub(date_literal(day), days))


def events_until(day: dt.date, days: int) -> Transformation:
    """Keep rows of the ``days`` days ending on ``day``; nothing after ``day`` can pass."""

    def transform(frame: DataFrame) -> DataFrame:
        return frame.where(within_days(day, days))

    return transform
