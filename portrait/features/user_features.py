"""The ``user_features`` row of every person as of a date, composed from the feature families."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame

from portrait.config import FeaturesConfig
from portrait.features.dates import LOOKBACK_DAYS
from portrait.features.rollups import daily_activity
from portrait.features.windows import features_from_rollups


def lookback_start(day: dt.date) -> dt.date:
    """First date whose rollup the features of ``day`` read."""
    return day - dt.timedelta(days=LOOKBACK_DAYS - 1)


def build_user_features(day: dt.date, settings: FeaturesConfig, clickstream: DataFrame, orders: DataFrame,
                        items: DataFrame | None = None, reviews: DataFrame | None = None) -> DataFrame:
    """Features of ``day`` straight from the input tables: the 90 days' rollups, computed in memory.

    The same definitions as the daily path (rollups written once per day, then
    :func:`portrait.features.windows.features_from_rollups`); used when nothing is stored, e.g. to replay a
    past run from its recorded input versions.
    """
    rollups = clickstream.transform(daily_activity(lookback_start(day), day, settings, orders, items, reviews))
    return rollups.transform(features_from_rollups(day, settings))
