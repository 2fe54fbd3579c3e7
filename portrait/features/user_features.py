"""The ``user_features`` row of every user as of a date, composed from the feature families."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from portrait.config import FeaturesConfig
from portrait.features.behaviour import activity_features, combine_activity_and_orders, order_features
from portrait.features.text import text_documents
from portrait.schemas import USER_FEATURES


def build_user_features(day: dt.date, settings: FeaturesConfig, clickstream: DataFrame, orders: DataFrame,
                        items: DataFrame | None = None, reviews: DataFrame | None = None) -> DataFrame:
    """Features of every user active (an event or a paid order) in the 90 days to ``day``.

    Uses only rows with ``dt <= day``; returns exactly the ``user_features`` contract's columns, with
    ``dt = day``. Users without text get an empty document.
    """
    documents = clickstream.transform(
        text_documents(day, settings.text_window_days, settings.max_tokens_per_user,
                       settings.min_token_length, items, reviews)
    )
    return (
        clickstream.transform(activity_features(day))
        .transform(combine_activity_and_orders(orders.transform(order_features(day))))
        .join(documents, on="user_id", how="left")
        .withColumn("text_document", F.coalesce("text_document", F.lit("")))
        .withColumn("dt", F.lit(day).cast("date"))
        .select(*[F.col(f.name).cast(f.dataType) for f in USER_FEATURES.schema.fields])
    )
