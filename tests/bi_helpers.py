"""Helpers for the BI tests: hand-made user_portrait and user_features rows that stay valid as contracts grow.

Only the columns a test is about are written out; every other contract column gets a fixed, valid filler
value, so a column added to a contract later does not break these tests.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from portrait.schemas import USER_FEATURES, USER_PORTRAIT, TableContract

DAY = dt.date(2026, 11, 20)


def _filler(data_type: T.DataType, day: dt.date):
    if isinstance(data_type, T.StringType):
        return "x"
    if isinstance(data_type, (T.IntegerType, T.LongType, T.ShortType)):
        return 1
    if isinstance(data_type, (T.DoubleType, T.FloatType)):
        return 0.0
    if isinstance(data_type, T.BooleanType):
        return False
    if isinstance(data_type, T.DateType):
        return day
    if isinstance(data_type, T.TimestampType):
        return dt.datetime(day.year, day.month, day.day)
    if isinstance(data_type, T.ArrayType):
        return []
    if isinstance(data_type, T.MapType):
        return {}
    if isinstance(data_type, T.StructType):
        return tuple(_filler(f.dataType, day) for f in data_type.fields)
    raise TypeError(f"no filler for {data_type.simpleString()}")


def contract_rows(spark: SparkSession, contract: TableContract, rows: list[dict]) -> DataFrame:
    """A DataFrame of ``contract``'s schema; each dict gives some columns (``dt`` required), the rest filled."""
    full = []
    for row in rows:
        unknown = set(row) - set(contract.columns)
        assert not unknown, f"{contract.name} has no column(s) {unknown}"
        full.append(tuple(row[f.name] if f.name in row else _filler(f.dataType, row["dt"])
                          for f in contract.schema.fields))
    return spark.createDataFrame(full, contract.schema)


def portrait(spark: SparkSession, rows: list[dict]) -> DataFrame:
    """user_portrait rows; ``feature_dt`` defaults to ``dt``, scores to valid values."""
    return contract_rows(spark, USER_PORTRAIT, [{"feature_dt": r["dt"], **r} for r in rows])


def features(spark: SparkSession, rows: list[dict]) -> DataFrame:
    return contract_rows(spark, USER_FEATURES, rows)
