"""One place for the filler values of hand-made contract rows (BI, privacy, fault and quality-gate tests).

Tests write out only the columns they are about; every other column gets a value that satisfies the
contract's NOT NULL and CHECK constraints, so a column added to a contract later does not break them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pyspark.sql import types as T

# Columns whose CHECK constraint or meaning rules out the plain type default.
COLUMN_DEFAULTS: dict[str, Any] = {"value_tier": "none"}


def default_value(data_type: T.DataType, day: dt.date, double: float = 0.5, aware: bool = True) -> Any:
    """A plain valid value of ``data_type``: 1 for integers (1-5 scores and 1-10 deciles pass their checks),
    ``double`` for fractions, ``day`` for dates, midnight of ``day`` (UTC when ``aware``) for timestamps."""
    if isinstance(data_type, T.StringType):
        return "x"
    if isinstance(data_type, (T.IntegerType, T.LongType, T.ShortType, T.ByteType)):
        return 1
    if isinstance(data_type, (T.DoubleType, T.FloatType)):
        return double
    if isinstance(data_type, T.BooleanType):
        return False
    if isinstance(data_type, T.DateType):
        return day
    if isinstance(data_type, T.TimestampType):
        return dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc if aware else None)
    if isinstance(data_type, T.ArrayType):
        return []
    if isinstance(data_type, T.MapType):
        return {}
    if isinstance(data_type, T.StructType):
        return tuple(default_value(f.dataType, day, double, aware) for f in data_type.fields)
    raise TypeError(f"no default value for {data_type.simpleString()}")


def column_default(field: T.StructField, day: dt.date, double: float = 0.5, aware: bool = True) -> Any:
    """:data:`COLUMN_DEFAULTS` for the column when it has one, else :func:`default_value` of its type."""
    if field.name in COLUMN_DEFAULTS:
        return COLUMN_DEFAULTS[field.name]
    return default_value(field.dataType, day, double, aware)
