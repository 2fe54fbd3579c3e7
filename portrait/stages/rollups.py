"""The rollups stage: ``user_daily_activity`` for the days a run needs, and the bookkeeping that finds them.

Every window feature is a sum or merge of per-(person, day) rollups, so a daily run rolls up its own date and
every day of its lookback whose stored rollup is stale (:mod:`portrait.features.staleness`): late events reach
the features of every later date without a manual re-run.
"""

from __future__ import annotations

import datetime as dt
import logging

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from portrait.features.rollups import daily_activity, rollup_events
from portrait.features.staleness import (
    INPUT_COUNT_COLUMNS,
    NO_INPUT,
    counts_after_erasure,
    rollup_input_counts,
    rollup_passes,
    stale_rollup_days,
)
from portrait.features.user_features import lookback_start
from portrait.ingest.identity import stitch_person_id
from portrait.lakehouse import Lakehouse
from portrait.schemas import (
    CLICKSTREAM,
    IDENTITY_GRAPH,
    ITEMS,
    ORDERS,
    REVIEWS,
    ROLLUP_INPUTS,
    USER_DAILY_ACTIVITY,
    TableContract,
)
from portrait.schemas.partitions import between_days
from portrait.stages.base import timed

log = logging.getLogger(__name__)


def stitched(lake: Lakehouse, contract: TableContract) -> DataFrame:
    """Read a table whose ``user_id`` becomes the stitched person id when an identity graph exists."""
    frame = lake.read(contract)
    if lake.cfg.identity.enabled and lake.exists(IDENTITY_GRAPH):
        frame = frame.transform(stitch_person_id(lake.read(IDENTITY_GRAPH)))
    return frame


def feature_inputs(lake: Lakehouse) -> dict[str, DataFrame | None]:
    """The tables features are computed from; ``user_id`` is the stitched person id when an identity graph
    exists (anonymous events of a device that logged in count for its person)."""
    return {
        "clickstream": stitched(lake, CLICKSTREAM),
        "orders": stitched(lake, ORDERS),
        "items": lake.read_optional(ITEMS),
        "reviews": stitched(lake, REVIEWS) if lake.exists(REVIEWS) else None,
    }


def compute(lake: Lakehouse, start: dt.date, end: dt.date) -> None:
    """Compute and write the ``user_daily_activity`` partitions of ``[start, end]`` in one pass and one commit."""
    tables = feature_inputs(lake)
    # Every part of the rollup reads these events: kept after their one read and shuffle, released after the write.
    # Materialised before the rollup is planned, so the planner sees their partitioning and adds no shuffle.
    events = tables["clickstream"].transform(rollup_events(start, end)).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        log.info("rollups %s..%s: %d logged-in events", start, end, events.count())
        rollups = events.transform(
            daily_activity(start, end, lake.cfg.features, tables["orders"], tables["items"], tables["reviews"]))
        lake.replace_range(USER_DAILY_ACTIVITY, rollups, start, end)
    finally:
        events.unpersist()


def recorded_inputs(lake: Lakehouse, start: dt.date, end: dt.date) -> dict[dt.date, tuple]:
    """The newest ``rollup_inputs`` counts per day of ``[start, end]`` (no table: empty)."""
    if not lake.exists(ROLLUP_INPUTS):
        return {}
    rows = (lake.read_range(ROLLUP_INPUTS, start, end)
            .groupBy("dt").agg(F.max_by(F.struct(*INPUT_COUNT_COLUMNS), "recorded_at").alias("counts"))
            .collect())  # at most one row per day of the range
    return {row["dt"]: tuple(row["counts"]) for row in rows}


def record_inputs(lake: Lakehouse, counts: dict[dt.date, tuple], recorded_at: dt.datetime) -> None:
    """Append one ``rollup_inputs`` row per day of ``counts``; the newest row of a day is the one read."""
    rows = [(day, *map(int, values), recorded_at) for day, values in sorted(counts.items())]
    lake.append(ROLLUP_INPUTS, lake.rows(ROLLUP_INPUTS, rows))


def ensure(lake: Lakehouse, days: list[dt.date], refresh: bool = True) -> list[tuple[dt.date, dt.date]]:
    """Write the rollups the features of ``days`` need; returns the date ranges computed.

    A day of the lookback is rolled up when its stored rollup is stale (its input counts differ from those
    ``rollup_inputs`` recorded when it was computed; never computed counts as stale). With ``refresh`` each
    feature date's own rollup is recomputed too (the items dimension it joins may have changed). Contiguous
    stale days are computed in one pass, or in several when they hold more than
    ``spark.rollup_events_per_pass`` events, and each pass's counts are recorded after its write.
    """
    start, end = lookback_start(min(days)), max(days)
    # Counted before the rollup reads the inputs: a row landing in between makes the record too low, so the
    # day is merely computed again next time; it is never taken for fresh.
    counted_at = dt.datetime.now(dt.timezone.utc)
    events_per_day = lake.rows_per_day(CLICKSTREAM, between_days(start - dt.timedelta(days=1), end))
    current = rollup_input_counts(events_per_day, lake.rows_per_day(ORDERS, between_days(start, end)),
                                  lake.rows_per_day(REVIEWS, between_days(start, end)), start, end)
    stale = stale_rollup_days(current, recorded_inputs(lake, start, end))
    ranges = rollup_passes(list(stale | (set(days) if refresh else set())), events_per_day,
                           lake.cfg.spark.rollup_events_per_pass)
    for first, last in ranges:
        with timed(f"rollups {first}..{last}"):
            compute(lake, first, last)
            computed = [first + dt.timedelta(days=k) for k in range((last - first).days + 1)]
            record_inputs(lake, {d: current.get(d, NO_INPUT) for d in computed}, counted_at)
    if not ranges:
        # Nothing to roll up: usually every day is current (the table exists; this is a cheap check), but on a
        # lookback with no input day at all (history too short for a snapshot) the features must read an empty
        # table rather than fail on a missing one.
        lake.ensure(USER_DAILY_ACTIVITY)
    return ranges


def record_erased_inputs(lake: Lakehouse, removed: dict[str, dict[dt.date, int]]) -> None:
    """After an erasure deleted input rows and the same persons' rollup rows: record each affected day's input
    counts less the deleted rows, so the rollups (already without those persons, and otherwise unchanged)
    are not taken for stale and recomputed. Days without a record stay without one."""
    clickstream, orders, reviews = (removed.get(c.name, {}) for c in (CLICKSTREAM, ORDERS, REVIEWS))
    days = {*clickstream, *(d + dt.timedelta(days=1) for d in clickstream), *orders, *reviews}
    if not days:
        return
    adjusted = counts_after_erasure(recorded_inputs(lake, min(days), max(days)), clickstream, orders, reviews)
    if adjusted:
        record_inputs(lake, adjusted, dt.datetime.now(dt.timezone.utc))
