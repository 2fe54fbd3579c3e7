"""Exact tests of the date windows every feature family filters with (portrait/features/dates.py)."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

from portrait.features.dates import events_until, within_days

D = dt.date(2024, 6, 30)


def day(offset: int) -> dt.date:
    """``D + offset`` days (negative = before D)."""
    return D + dt.timedelta(days=offset)


def assert_exact(actual, expected, **kwargs) -> None:
    """Rows and schema equal (nullability ignored), floats to 1e-9: the inputs are chosen to be exact."""
    assertDataFrameEqual(actual, expected, rtol=0.0, atol=1e-9, **kwargs)


# ---------------------------------------------------------------------------------------------
# within_days / events_until
# ---------------------------------------------------------------------------------------------

DATED = T.StructType([T.StructField("label", T.StringType()), T.StructField("dt", T.DateType())])


def test_within_days_includes_the_day_and_excludes_day_minus_n_and_later_days(spark):
    frame = spark.createDataFrame(
        [("D+1", day(1)), ("D", day(0)), ("D-1", day(-1)), ("D-6", day(-6)), ("D-7", day(-7)),
         ("D-29", day(-29)), ("D-30", day(-30)), ("null", None)],
        DATED,
    )
    expected = spark.createDataFrame(
        [("D+1", False, False), ("D", True, True), ("D-1", True, True), ("D-6", True, True),
         ("D-7", False, True), ("D-29", False, True), ("D-30", False, False), ("null", None, None)],
        "label string, in_7 boolean, in_30 boolean",
    )
    actual = frame.select(F.col("label"), within_days(D, 7).alias("in_7"), within_days(D, 30).alias("in_30"))
    assert_exact(actual, expected)


def test_within_one_day_is_exactly_the_day(spark):
    frame = spark.createDataFrame([("D+1", day(1)), ("D", day(0)), ("D-1", day(-1))], DATED)
    assert_exact(frame.transform(events_until(D, 1)), spark.createDataFrame([("D", day(0))], DATED))


def test_events_until_keeps_the_window_and_never_a_later_day(spark):
    """Leakage: rows dated after D must not pass, however close to D they are."""
    frame = spark.createDataFrame(
        [("D+1", day(1)), ("D+30", day(30)), ("D", day(0)), ("D-6", day(-6)), ("D-7", day(-7))], DATED
    )
    expected = spark.createDataFrame([("D", day(0)), ("D-6", day(-6))], DATED)
    assert_exact(frame.transform(events_until(D, 7)), expected)
