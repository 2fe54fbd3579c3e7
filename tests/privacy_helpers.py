"""Rows for any table contract, so privacy and fault tests cover tables whatever their columns become."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from portrait.schemas import USER_PORTRAIT, TableContract
from tests.contract_values import column_default

DAY = dt.date(2026, 11, 20)


def contract_rows(spark: SparkSession, contract: TableContract, ids: list[str], day: dt.date = DAY,
                  **overrides: Any) -> DataFrame:
    """One row per id: the contract's person id columns hold the id, free-text columns mention it, every other
    column a default value (``overrides`` by column name win)."""
    rows = []
    for person in ids:
        row = []
        for field in contract.schema.fields:
            if field.name in overrides:
                row.append(overrides[field.name])
            elif field.name in contract.id_columns:
                row.append(person)
            elif field.name in contract.person_text_columns:
                row.append(f"{person},1,2,zz,1511544070")
            else:
                row.append(column_default(field, day))
        rows.append(tuple(row))
    return spark.createDataFrame(rows, contract.schema)


def portrait_rows(spark: SparkSession, users: list[str], model_run_id: str = "run-1", day: dt.date = DAY) -> DataFrame:
    """Valid user_portrait rows of ``day``, one per user id."""
    return contract_rows(spark, USER_PORTRAIT, users, day, model_run_id=model_run_id, dt=day, feature_dt=day)
