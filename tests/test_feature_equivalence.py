"""Rollup path vs raw events, and leakage, on generated data (slow).

The daily path writes ``user_daily_activity`` once per day (some days in one multi-day pass, the last days
one by one, as a daily schedule does) and computes window features from it. The pandas oracle in
tests/reference_features.py computes the same features event by event from the raw tables. Every column of
every person must agree.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math

import pandas as pd
import pytest
from pyspark.sql import functions as F

from portrait import io
from portrait.lakehouse import Lakehouse
from portrait.schemas import CLICKSTREAM, ITEMS, ORDERS, REVIEWS, USER_DAILY_ACTIVITY, USER_FEATURES
from portrait.stages import features as feature_stage
from portrait.stages import forget, ingest
from portrait.stages import rollups as rollup_stage
from tests.conftest import make_config
from tests.reference_features import reference_features

pytestmark = pytest.mark.slow

D = dt.date(2026, 11, 20)
BOT = "bot-planted"


def _planted_events(spark, cfg):
    """A bot day (150 events a second apart) and a session over local midnight for an existing user."""
    local = cfg.time_zone
    rows = []
    start = pd.Timestamp(dt.datetime.combine(D - dt.timedelta(days=3), dt.time(10)), tz=local)
    for k in range(150):
        rows.append((f"bot-{k}", BOT, None, None, (start + pd.Timedelta(seconds=k)).to_pydatetime(), "view",
                     "i-bot", "c-bot", None, 1.0, None, "direct", "web", D - dt.timedelta(days=3)))
    before_midnight = pd.Timestamp(dt.datetime.combine(D - dt.timedelta(days=1), dt.time(23, 50)), tz=local)
    for k, minutes in enumerate((0, 15, 25)):   # 23:50, 00:05, 00:15: one session over midnight
        time = before_midnight + pd.Timedelta(minutes=minutes)
        rows.append((f"night-{k}", "night-owl", None, None, time.to_pydatetime(), "view", None, "c-night", None,
                     None, None, "email", "app", time.tz_convert(local).date()))
    return spark.createDataFrame(rows, CLICKSTREAM.schema)


@pytest.fixture(scope="module")
def shop(spark, tmp_path_factory):
    # Passes of at most 3,000 events: the cold rollup of the ~11k events runs in several passes of whole days.
    cfg = make_config(tmp_path_factory.mktemp("equivalence"), FEATURES__BOT_MAX_EVENTS_PER_DAY="100",
                      FEATURES__BOT_MIN_GAPS="5", SPARK__ROLLUP_EVENTS_PER_PASS="3000")
    ingest.generate(Lakehouse(spark, cfg), end_date=D, users=150, days=40)
    io.append_rows(spark, cfg, CLICKSTREAM, _planted_events(spark, cfg))
    return cfg


def _pandas(frame) -> pd.DataFrame:
    return frame.toPandas()


def _assert_same(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    actual = actual.sort_values("user_id").reset_index(drop=True)
    expected = expected.sort_values("user_id").reset_index(drop=True)
    assert list(actual["user_id"]) == list(expected["user_id"])
    differences = []
    for column in USER_FEATURES.columns:
        for person, got, want in zip(actual["user_id"], actual[column], expected[column], strict=True):
            if column in ("top_categories", "top_brands"):
                got = [(entry["key"], entry["score"]) for entry in got]
                same = len(got) == len(want) and all(
                    g[0] == w[0] and math.isclose(g[1], w[1], abs_tol=2e-6) for g, w in zip(got, want, strict=True))
            elif _missing(got) or _missing(want):
                same = _missing(got) and _missing(want)
            elif isinstance(want, float) or isinstance(got, float):
                same = math.isclose(float(got), float(want), rel_tol=1e-9, abs_tol=1e-9)
            else:
                same = got == want
            if not same:
                differences.append(f"{person} {column}: rollups {got!r}, raw events {want!r}")
    by_column: dict[str, int] = {}
    for line in differences:
        column = line.split(" ")[1].rstrip(":")
        by_column[column] = by_column.get(column, 0) + 1
    assert not differences, (f"{len(differences)} differences by column {by_column}; first ones:\n"
                             + "\n".join(differences[:20]))


def _assert_same_as_the_oracle(spark, cfg, features) -> None:
    """``features`` (user_features rows of D) equal the pandas oracle's on the input tables as they are now."""
    raw = {c.name: _pandas(io.read_table(spark, cfg, c)) for c in (CLICKSTREAM, ORDERS, ITEMS, REVIEWS)}
    expected = reference_features(D, cfg.features, raw["clickstream"], raw["orders"], raw["items"], raw["reviews"])
    _assert_same(_pandas(features), expected)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def test_window_features_from_rollups_equal_features_from_raw_events(spark, shop):
    cfg = shop
    # Schedule-like: a first run computes the earlier rollups (in passes of whole days), then two single days.
    first_ranges = rollup_stage.ensure(Lakehouse(spark, cfg), [D - dt.timedelta(days=2)])
    assert len(first_ranges) >= 3 and first_ranges[-1][1] == D - dt.timedelta(days=2)
    assert all(b[0] == a[1] + dt.timedelta(days=1) for a, b in itertools.pairwise(first_ranges))
    for day in (D - dt.timedelta(days=2), D - dt.timedelta(days=1), D):
        feature_stage.compute(Lakehouse(spark, cfg), day)
    rollups = io.read_table(spark, cfg, USER_DAILY_ACTIVITY)
    assert rollups.where(F.col("bot_day")).count() >= 1, "the planted bot day must be a bot day"

    features = io.read_table(spark, cfg, USER_FEATURES).where(F.col("dt") == F.lit(D))
    _assert_same_as_the_oracle(spark, cfg, features)
    # The planted cases reach the features they test.
    night_owl = features.where(F.col("user_id") == "night-owl").first()
    assert night_owl["sessions_30d"] == 1 and night_owl["avg_session_minutes_30d"] == 25.0
    assert features.where(F.col("user_id") == BOT).first()["bot_suspect"] is True


def test_no_feature_of_d_sees_an_event_or_order_after_d(spark, shop):
    cfg = shop
    feature_stage.compute(Lakehouse(spark, cfg), D)  # idempotent: the same rows when the first test already ran
    before = io.read_table(spark, cfg, USER_FEATURES).where(F.col("dt") == F.lit(D)).localCheckpoint()
    someone = before.orderBy("user_id").first()["user_id"]
    after_d = D + dt.timedelta(days=1)
    # Just after midnight in the configured zone, and a paid order the same day.
    moment = pd.Timestamp(dt.datetime.combine(after_d, dt.time(0, 0, 1)), tz=cfg.time_zone).to_pydatetime()
    io.append_rows(spark, cfg, CLICKSTREAM, spark.createDataFrame(
        [(f"future-{k}", someone, None, None, moment, kind, "i-future", "c-future", "future-brand", 9.0,
          "未来 查询", "ads", "app", after_d) for k, kind in enumerate(("view", "search", "cart", "buy"))],
        CLICKSTREAM.schema))
    io.append_rows(spark, cfg, ORDERS, spark.createDataFrame(
        [("o-future", 1, someone, moment, "paid", "i-future", "c-future", 1, 999.0, 0.0, after_d)], ORDERS.schema))

    # The next day first: its rollup (holding the planted rows) is then stored beside D's, so a window that
    # looked past D would see it. The planted rows are real: the next day's features see them.
    feature_stage.compute(Lakehouse(spark, cfg), after_d)
    next_day = io.read_table(spark, cfg, USER_FEATURES).where(
        (F.col("dt") == F.lit(after_d)) & (F.col("user_id") == someone)).first()
    assert next_day["events_1d"] == 4 and next_day["orders_30d"] >= 1 and "未来" in next_day["text_document"]
    feature_stage.compute(Lakehouse(spark, cfg), D)
    again = io.read_table(spark, cfg, USER_FEATURES).where(F.col("dt") == F.lit(D))
    assert again.exceptAll(before).isEmpty() and before.exceptAll(again).isEmpty()


def test_late_rows_reach_the_next_run_and_an_erasure_recomputes_nothing(spark, shop, monkeypatch):
    """Rows arriving after their day was rolled up make that rollup stale (and the next day's: sessions over
    midnight); the next run recomputes exactly those days, and the features equal the raw-event oracle's.
    An erasure lowers the recorded counts with the rows it deletes, so nothing is recomputed after it."""
    from portrait import privacy

    cfg = shop
    feature_stage.ensure(Lakehouse(spark, cfg), [D], refresh=False)  # when run alone; the tests above wrote them
    assert rollup_stage.ensure(Lakehouse(spark, cfg), [D], refresh=False) == [], "nothing changed, nothing is stale"
    current = io.read_table(spark, cfg, USER_FEATURES).where(F.col("dt") == F.lit(D))
    someone = current.where(~F.col("user_id").isin(BOT, "night-owl")).orderBy("user_id").first()
    late_day, order_day = D - dt.timedelta(days=3), D - dt.timedelta(days=5)
    noon = pd.Timestamp(dt.datetime.combine(late_day, dt.time(12)), tz=cfg.time_zone).to_pydatetime()
    io.append_rows(spark, cfg, CLICKSTREAM, spark.createDataFrame(
        [("late-1", someone["user_id"], None, None, noon, "view", "i-late", "c-late", "late-brand", 5.0, None,
          "ads", "app", late_day)], CLICKSTREAM.schema))
    ordered = pd.Timestamp(dt.datetime.combine(order_day, dt.time(9)), tz=cfg.time_zone).to_pydatetime()
    io.append_rows(spark, cfg, ORDERS, spark.createDataFrame(
        [("o-late", 1, someone["user_id"], ordered, "paid", "i-late", "c-late", 1, 50.0, 0.0, order_day)],
        ORDERS.schema))

    assert rollup_stage.ensure(Lakehouse(spark, cfg), [D], refresh=False) == [
        (order_day, order_day), (late_day, late_day + dt.timedelta(days=1))]
    feature_stage.compute(Lakehouse(spark, cfg), D, rollups_ready=True)
    features = io.read_table(spark, cfg, USER_FEATURES).where(F.col("dt") == F.lit(D))
    after = features.where(F.col("user_id") == someone["user_id"]).first()
    assert after["events_7d"] == someone["events_7d"] + 1
    assert after["orders_30d"] == someone["orders_30d"] + 1
    _assert_same_as_the_oracle(spark, cfg, features)

    monkeypatch.setenv(privacy.PSEUDONYM_KEY_ENV, "equivalence-test-key-0123456789abcdef")
    report = forget.run(Lakehouse(spark, cfg), [someone["user_id"]], vacuum=False)
    assert report.rows_deleted[CLICKSTREAM.name] > 1 and report.rows_deleted[ORDERS.name] >= 1
    assert rollup_stage.ensure(Lakehouse(spark, cfg), [D], refresh=False) == [], "the erasure made a rollup look stale"
    feature_stage.compute(Lakehouse(spark, cfg), D, rollups_ready=True)
    features = io.read_table(spark, cfg, USER_FEATURES).where(F.col("dt") == F.lit(D))
    assert features.where(F.col("user_id") == someone["user_id"]).isEmpty()
    _assert_same_as_the_oracle(spark, cfg, features)
