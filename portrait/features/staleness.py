"""Which days' rollups must be computed: pure arithmetic over per-day input counts.

A stored rollup of a day is stale when the input counts it was computed from (recorded in ``rollup_inputs``)
differ from the counts the inputs hold now; stale days are computed in passes of contiguous days bounded by
an event budget. :mod:`portrait.stages.rollups` counts, records and computes.
"""

from __future__ import annotations

import datetime as dt

# The counts a stored rollup of a day was computed from, in the column order of ROLLUP_INPUTS.
INPUT_COUNT_COLUMNS = ("clickstream_rows", "previous_day_clickstream_rows", "orders_rows", "reviews_rows")
NO_INPUT = (0, 0, 0, 0)
_ONE_DAY = dt.timedelta(days=1)


def contiguous_ranges(days: list[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """``days`` as sorted runs of consecutive dates, each ``(first, last)``."""
    ranges: list[tuple[dt.date, dt.date]] = []
    for day in sorted(days):
        if ranges and day == ranges[-1][1] + _ONE_DAY:
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def rollup_passes(days: list[dt.date], events_per_day: dict[dt.date, int],
                  max_events: int) -> list[tuple[dt.date, dt.date]]:
    """Contiguous runs of ``days``, each cut into passes of whole days holding at most ``max_events`` events.

    A single day above the limit is a pass of its own (a day is never split: its rollup needs all its events).
    """
    passes: list[tuple[dt.date, dt.date]] = []
    for first, last in contiguous_ranges(days):
        start, events, day = first, 0, first
        while day <= last:
            today = events_per_day.get(day, 0)
            if day > start and events + today > max_events:
                passes.append((start, day - _ONE_DAY))
                start, events = day, 0
            events += today
            day += _ONE_DAY
        passes.append((start, last))
    return passes


def rollup_input_counts(clickstream: dict[dt.date, int], orders: dict[dt.date, int], reviews: dict[dt.date, int],
                        start: dt.date, end: dt.date) -> dict[dt.date, tuple[int, int, int, int]]:
    """Per day of ``[start, end]`` with a clickstream, order or review row: the input counts its rollup reads
    (``INPUT_COUNT_COLUMNS``); the day before counts because a session running over midnight starts there.

    ``clickstream`` must include the day before ``start``. Days without a row of their own are absent (their
    counts are ``NO_INPUT``): they have no rollup rows, whatever happened the day before.
    """
    days = {d for d in (*clickstream, *orders, *reviews) if start <= d <= end}
    return {d: (clickstream.get(d, 0), clickstream.get(d - _ONE_DAY, 0), orders.get(d, 0),
                reviews.get(d, 0)) for d in days}


def stale_rollup_days(current: dict[dt.date, tuple], recorded: dict[dt.date, tuple]) -> set[dt.date]:
    """Days whose stored rollup was computed from other input counts than the inputs hold now: never rolled
    up, rolled up before late rows (or a re-ingest, or a deletion) changed the day or the day before, or
    rolled up while the day had rows it no longer has."""
    return {d for d in set(current) | set(recorded) if current.get(d, NO_INPUT) != recorded.get(d)}


def counts_after_erasure(recorded: dict[dt.date, tuple], clickstream: dict[dt.date, int],
                         orders: dict[dt.date, int], reviews: dict[dt.date, int]) -> dict[dt.date, tuple]:
    """The recorded counts of the days an erasure touched, less the rows it deleted per day; a day left
    without rows of its own is ``NO_INPUT``, as :func:`rollup_input_counts` gives it."""
    days = {*clickstream, *(d + _ONE_DAY for d in clickstream), *orders, *reviews}
    adjusted = {}
    for day, (events, previous_events, order_rows, review_rows) in recorded.items():
        if day not in days:
            continue
        counts = (events - clickstream.get(day, 0), previous_events - clickstream.get(day - _ONE_DAY, 0),
                  order_rows - orders.get(day, 0), review_rows - reviews.get(day, 0))
        adjusted[day] = NO_INPUT if counts[0] == counts[2] == counts[3] == 0 else counts
    return adjusted
