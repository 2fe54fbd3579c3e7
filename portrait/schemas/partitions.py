"""Conditions on the date partition column ``dt`` that date-partitioned contracts share.

``dt`` is the event's date in the configured time zone, so "before the end of day D" is ``dt <= D``; a
condition on it is also what lets Delta read only the partitions it names. Dates enter as typed literals,
never as SQL text.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column
from pyspark.sql import functions as F

PARTITION_COLUMN = "dt"


def date_literal(day: dt.date) -> Column:
    return F.lit(day).cast("date")


def on_day(day: dt.date, column: str = PARTITION_COLUMN) -> Column:
    """``column`` equals ``day``: the rows of one date partition."""
    return F.col(column) == date_literal(day)


def between_days(start: dt.date, end: dt.date, column: str = PARTITION_COLUMN) -> Column:
    """``start <= column <= end``."""
    return F.col(column).between(date_literal(start), date_literal(end))
