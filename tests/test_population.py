"""Who a date's portrait covers (portrait/features/population.py): the active persons and every customer."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

from portrait.config import FeaturesConfig
from portrait.features.population import CUSTOMER_COLUMNS, POPULATION_SCHEMA, with_customers
from portrait.schemas import CUSTOMER_VALUE, USER_FEATURES
from tests.contract_values import column_default

D = dt.date(2026, 11, 20)
PREDICTIONS = {"p_alive": 0.8, "expected_purchases_30d": 0.1, "expected_purchases_90d": 0.3,
               "expected_purchases_365d": 1.2, "expected_order_value": 55.0, "clv": 300.0}


def _features(user_id: str, **values) -> dict:
    row = {f.name: column_default(f, D) for f in USER_FEATURES.schema.fields}
    return {**row, "user_id": user_id, "lifecycle_stage": "active", **values}


def _value(user_id: str, frequency: int, recency: int, age: int) -> tuple:
    return (user_id, frequency, recency, age, 40.0 if frequency else None, *PREDICTIONS.values(), "run-1", D)


def _dormant(user_id: str) -> dict:
    """What the lookback says of a customer without activity in it: nothing happened, descriptions unknown."""
    row = {}
    for f in USER_FEATURES.schema.fields:
        if f.nullable:
            row[f.name] = None
        elif isinstance(f.dataType, T.ArrayType):
            row[f.name] = []
        elif isinstance(f.dataType, T.BooleanType):
            row[f.name] = False
        else:
            row[f.name] = 0.0 if isinstance(f.dataType, T.DoubleType) else 0
    return {**row, "user_id": user_id, "dt": D, "days_since_first_event": 90, "days_since_last_event": 90,
            "lifecycle_stage": "churned"}


def _population(spark, rows: list[dict]):
    return spark.createDataFrame([tuple(r.get(c) for c in POPULATION_SCHEMA.fieldNames()) for r in rows],
                                 POPULATION_SCHEMA)


def test_every_customer_gets_a_row_and_active_persons_keep_theirs(spark):
    features = spark.createDataFrame(
        [tuple(r.values()) for r in (_features("a", orders_90d=2), _features("b", views_7d=4))], USER_FEATURES.schema)
    values = spark.createDataFrame([_value("a", 3, 200, 300), _value("c", 0, 0, 400)], CUSTOMER_VALUE.schema)
    expected = _population(spark, [
        {**_features("a", orders_90d=2), "days_since_last_purchase": 100, "purchase_days": 4, **PREDICTIONS},
        _features("b", views_7d=4),  # active, never bought in the retention window: no purchase history
        {**_dormant("c"), "days_since_last_purchase": 400, "purchase_days": 1, **PREDICTIONS},
    ])
    assertDataFrameEqual(features.transform(with_customers(values, FeaturesConfig())), expected)


def test_a_dormant_customers_lifecycle_follows_the_configured_rules(spark):
    features = spark.createDataFrame([], USER_FEATURES.schema)
    values = spark.createDataFrame([_value("c", 1, 10, 200)], CUSTOMER_VALUE.schema)
    lenient = FeaturesConfig(lifecycle={"sleeping_max_idle_days": 120})  # 90 idle days are still "sleeping"
    [row] = features.transform(with_customers(values, lenient)).collect()
    assert row["lifecycle_stage"] == "sleeping"


def test_without_value_rows_the_customer_columns_are_null(spark):
    features = spark.createDataFrame([tuple(_features("a").values())], USER_FEATURES.schema)
    [row] = features.transform(with_customers(None, FeaturesConfig())).collect()
    assert row.asDict() == {**_features("a"), **dict.fromkeys(CUSTOMER_COLUMNS)}
    assert features.transform(with_customers(None, FeaturesConfig())).schema == POPULATION_SCHEMA
