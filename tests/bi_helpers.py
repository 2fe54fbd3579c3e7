"""Helpers for the BI tests: hand-made user_portrait and user_features rows that stay valid as contracts grow.

Only the columns a test is about are written out; every other contract column gets a fixed, valid filler
value, so a column added to a contract later does not break these tests.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, SparkSession

from portrait.schemas import USER_FEATURES, USER_PORTRAIT, TableContract
from tests.contract_values import column_default

DAY = dt.date(2026, 11, 20)


def contract_rows(spark: SparkSession, contract: TableContract, rows: list[dict]) -> DataFrame:
    """A DataFrame of ``contract``'s schema; each dict gives some columns (``dt`` required), the rest filled."""
    full = []
    for row in rows:
        unknown = set(row) - set(contract.columns)
        assert not unknown, f"{contract.name} has no column(s) {unknown}"
        full.append(tuple(row[f.name] if f.name in row else column_default(f, row["dt"], double=0.0, aware=False)
                          for f in contract.schema.fields))
    return spark.createDataFrame(full, contract.schema)


def portrait(spark: SparkSession, rows: list[dict]) -> DataFrame:
    """user_portrait rows; ``feature_dt`` defaults to ``dt``, scores to valid values."""
    return contract_rows(spark, USER_PORTRAIT, [{"feature_dt": r["dt"], **r} for r in rows])


def features(spark: SparkSession, rows: list[dict]) -> DataFrame:
    return contract_rows(spark, USER_FEATURES, rows)
