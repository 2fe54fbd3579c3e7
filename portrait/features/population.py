"""Who a date's portrait and models cover: every person with activity in the lookback, and every customer.

``user_features`` holds the persons with an event or an order in the 90-day lookback. A customer whose last
activity is older still has a purchase history in ``customer_value`` (a paid order in ``value.retention_days``),
and the dormant are exactly whom a win-back campaign targets, so the portrait and the models' rows are the
union: a customer without a feature row gets a *dormant* row whose window measures are what the lookback
says of them (no events, no orders: zero, not unknown), whose "days since the first / last event" are the
lookback's length (the activity lies before it), and whose descriptive columns (top category, platform, ...)
are null. Both sides then carry the purchase-history columns (:data:`CUSTOMER_COLUMNS`), null for a person
without a paid order in the retention window.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from portrait.config import FeaturesConfig
from portrait.features.dates import LOOKBACK_DAYS, Transformation
from portrait.features.windows import lifecycle_stage
from portrait.schemas import PURCHASE_HISTORY, USER_FEATURES, VALUE_PREDICTIONS

DAYS_SINCE_LAST_PURCHASE, PURCHASE_DAYS = (name for name, _ in PURCHASE_HISTORY)
# The purchase-history columns every row of the population carries (null without a paid order in retention).
CUSTOMER_COLUMNS: tuple[str, ...] = (DAYS_SINCE_LAST_PURCHASE, PURCHASE_DAYS, *(name for name, _ in VALUE_PREDICTIONS))
# The rows the models take and the portrait is assembled from: user_features then the customer columns.
POPULATION_SCHEMA = T.StructType([
    *USER_FEATURES.schema.fields,
    *[T.StructField(name, T.IntegerType() if name in (DAYS_SINCE_LAST_PURCHASE, PURCHASE_DAYS) else T.DoubleType())
      for name in CUSTOMER_COLUMNS],
])
_IN_LOOKBACK = "_in_lookback"
# The window measures of a dormant row that are not zero: its activity lies at or before the lookback's start.
_BEFORE_LOOKBACK = ("days_since_first_event", "days_since_last_event")


def customer_columns(value_rows: DataFrame) -> DataFrame:
    """``customer_value`` rows → (user_id, dt, :data:`CUSTOMER_COLUMNS`)."""
    return value_rows.select(
        "user_id", "dt",
        (F.col("age_days") - F.col("recency_days")).cast("int").alias(DAYS_SINCE_LAST_PURCHASE),
        (F.col("frequency") + 1).cast("int").alias(PURCHASE_DAYS),
        *[F.col(name) for name, _ in VALUE_PREDICTIONS])


def _dormant_value(field: T.StructField) -> Column:
    """What a column of ``user_features`` is for a person without activity in the lookback."""
    if field.name in _BEFORE_LOOKBACK:
        return F.lit(LOOKBACK_DAYS)
    if field.nullable:
        return F.lit(None)
    if isinstance(field.dataType, T.ArrayType):
        return F.array()
    if isinstance(field.dataType, T.BooleanType):
        return F.lit(False)
    if isinstance(field.dataType, (T.LongType, T.IntegerType, T.DoubleType)):
        return F.lit(0)
    raise TypeError(f"no dormant value for user_features.{field.name} ({field.dataType.simpleString()})")


def with_customers(value_rows: DataFrame | None, settings: FeaturesConfig) -> Transformation:
    """``user_features`` rows (any dates) → the same rows plus a dormant row for every ``customer_value`` row
    (same ``user_id`` and ``dt``) without one, all with :data:`CUSTOMER_COLUMNS`. ``value_rows`` None (value
    models off): the feature rows with null customer columns."""

    def transform(features: DataFrame) -> DataFrame:
        if value_rows is None:
            return features.select("*", *[F.lit(None).cast(POPULATION_SCHEMA[c].dataType).alias(c)
                                          for c in CUSTOMER_COLUMNS])
        joined = features.withColumn(_IN_LOOKBACK, F.lit(True)).join(
            customer_columns(value_rows), ["user_id", "dt"], "full")
        in_lookback = F.coalesce(F.col(_IN_LOOKBACK), F.lit(False))
        keys = {"user_id", "dt", "lifecycle_stage"}
        filled = {f.name: F.when(in_lookback, F.col(f.name)).otherwise(_dormant_value(f)).cast(f.dataType)
                  for f in USER_FEATURES.schema.fields if f.name not in keys}
        lifecycle = F.when(in_lookback, F.col("lifecycle_stage")).otherwise(lifecycle_stage(settings.lifecycle))
        return (joined.withColumns(filled)
                .withColumn("lifecycle_stage", lifecycle)
                .select(*USER_FEATURES.columns, *CUSTOMER_COLUMNS))

    return transform

