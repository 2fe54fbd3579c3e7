"""Quality gate: checks on a date's portrait rows before they are published, against the previous date.

Checks (thresholds in the ``publish`` section of the configuration):

- ``row_count``: relative change of the number of rows against the previous portrait date;
- ``null_rate``: share of nulls of every column (``max_null_rate``, per-column ``null_rate_overrides``);
- ``tag_coverage``: share of rows with at least one tag (a minimum);
- ``segment_share``: change of each segment's share of rows (``segment_columns``), in share points;
- ``score_psi``: population stability index of each score (``score_columns``) against the previous date,
  with the bins and PSI of :mod:`portrait.monitor`.

The previous portrait date is the latest one before the date checked; on the first date there is none, and
the checks that need it pass with a null value. The functions run a few small Spark aggregations and return
plain :class:`CheckResult` values; the stage that reads and writes is :func:`portrait.stages.publish.publish_portrait`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from portrait import monitor
from portrait.config import PublishConfig

ROW_COUNT = "row_count"
NULL_RATE = "null_rate"
TAG_COVERAGE = "tag_coverage"
SEGMENT_SHARE = "segment_share"
SCORE_PSI = "score_psi"
TAGS_COLUMN = "tags"
TABLE_SUBJECT = "user_portrait"
# A segment column is categorical; more distinct values than this means a misconfigured column.
MAX_SEGMENTS = 1000


@dataclass(frozen=True)
class CheckResult:
    """One check of one subject: its value, the configured threshold and whether it passed."""

    check: str
    subject: str
    value: float | None
    threshold: float
    passed: bool
    reference_dt: dt.date | None = None

    def describe(self) -> str:
        shown = "n/a" if self.value is None else f"{self.value:.4f}"
        limit = "min" if self.check == TAG_COVERAGE else "max"
        return f"{self.check} {self.subject} = {shown} ({limit} {self.threshold})"

    def as_row(self, day: dt.date, checked_at: dt.datetime) -> tuple:
        """The ``publish_checks`` row of this result for portrait date ``day``."""
        return (self.check, self.subject, self.value, float(self.threshold), self.passed, self.reference_dt,
                checked_at, day)


class QualityGateFailed(RuntimeError):
    """A date's portrait failed the quality gate: it was not published; the previous data stays."""

    def __init__(self, day: dt.date, failed: Sequence[CheckResult]) -> None:
        self.day, self.failed = day, list(failed)
        super().__init__(
            f"the portrait of {day} failed {len(self.failed)} quality check(s) and was not published "
            f"(previous data unchanged; details in the publish_checks table): "
            + "; ".join(c.describe() for c in self.failed)
            + ". Fix the data or the run, or adjust the publish section of the configuration, then re-run."
        )


def _check_columns(frame: DataFrame, settings: PublishConfig) -> None:
    configured = {
        "publish.null_rate_overrides": list(settings.null_rate_overrides),
        "publish.segment_columns": settings.segment_columns,
        "publish.score_columns": settings.score_columns,
    }
    for key, columns in configured.items():
        unknown = [c for c in columns if c not in frame.columns]
        if unknown:
            raise ValueError(f"{key} names {unknown}, which are not portrait columns; known: {frame.columns}")


def row_count_check(rows: int, previous_rows: int | None, max_change: float,
                    reference_dt: dt.date | None = None) -> CheckResult:
    """|rows / previous_rows - 1| against ``max_change``; passes with no previous date."""
    if previous_rows is None:
        return CheckResult(ROW_COUNT, TABLE_SUBJECT, None, max_change, True, None)
    change = rows / previous_rows - 1.0 if previous_rows > 0 else (0.0 if rows == 0 else float("inf"))
    return CheckResult(ROW_COUNT, TABLE_SUBJECT, change, max_change, abs(change) <= max_change, reference_dt)


def profile(frame: DataFrame) -> tuple[int, dict[str, int], int]:
    """(rows, nulls per column, rows with at least one tag) of ``frame``, in one aggregation."""
    aggregates = [F.count(F.lit(1)).alias("__rows")]
    aggregates += [F.count(F.when(F.col(c).isNull(), 1)).alias(f"__null_{i}") for i, c in enumerate(frame.columns)]
    if TAGS_COLUMN in frame.columns:
        aggregates.append(F.count(F.when(F.size(F.col(TAGS_COLUMN)) > 0, 1)).alias("__tagged"))
    row = frame.agg(*aggregates).first()
    nulls = {c: int(row[f"__null_{i}"]) for i, c in enumerate(frame.columns)}
    tagged = int(row["__tagged"]) if TAGS_COLUMN in frame.columns else 0
    return int(row["__rows"]), nulls, tagged


def null_rate_checks(rows: int, nulls: dict[str, int], max_rate: float,
                     overrides: dict[str, float]) -> list[CheckResult]:
    """One check per column: its share of nulls against its limit (an empty frame has none)."""
    results = []
    for column, count in nulls.items():
        limit = overrides.get(column, max_rate)
        rate = count / rows if rows else 0.0
        results.append(CheckResult(NULL_RATE, column, rate, limit, rate <= limit))
    return results


def tag_coverage_check(rows: int, tagged: int, min_coverage: float) -> CheckResult:
    """Share of rows with at least one tag, at least ``min_coverage`` (an empty frame covers nothing)."""
    coverage = tagged / rows if rows else 0.0
    return CheckResult(TAG_COVERAGE, TAGS_COLUMN, coverage, min_coverage, coverage >= min_coverage)


def segment_counts(frame: DataFrame, column: str) -> dict[str | None, int]:
    """Rows per value of ``column`` (at most :data:`MAX_SEGMENTS` values reach the driver)."""
    rows = frame.groupBy(column).count().limit(MAX_SEGMENTS + 1).collect()
    if len(rows) > MAX_SEGMENTS:
        raise ValueError(f"segment column {column!r} has more than {MAX_SEGMENTS} distinct values; "
                         "publish.segment_columns must name categorical columns")
    return {row[column]: int(row["count"]) for row in rows}


def segment_share_checks(column: str, current: dict[str | None, int], previous: dict[str | None, int] | None,
                         max_change: float, reference_dt: dt.date | None = None) -> list[CheckResult]:
    """One check per segment of either date: |share now - share before| against ``max_change``.

    Subjects are ``column=value`` (``null`` for a null value). Without a previous date every segment passes.
    """
    if previous is None:
        return [CheckResult(SEGMENT_SHARE, f"{column}={_label(v)}", None, max_change, True, None)
                for v in sorted(current, key=_label)]
    total_now, total_before = sum(current.values()), sum(previous.values())
    results = []
    for value in sorted(set(current) | set(previous), key=_label):
        share_now = current.get(value, 0) / total_now if total_now else 0.0
        share_before = previous.get(value, 0) / total_before if total_before else 0.0
        change = abs(share_now - share_before)
        results.append(CheckResult(SEGMENT_SHARE, f"{column}={_label(value)}", change, max_change,
                                   change <= max_change, reference_dt))
    return results


def _label(value) -> str:
    return "null" if value is None else str(value)


def score_psi_checks(current: DataFrame, previous: DataFrame | None, columns: Sequence[str], max_psi: float,
                     reference_dt: dt.date | None = None) -> list[CheckResult]:
    """PSI of each score column against the previous date (bins cut on the previous date's scores).

    Without a previous date, or when one side has no rows, the check passes with a null value (an empty
    portrait fails the row count and coverage checks instead).
    """
    if previous is None or not columns:
        return [CheckResult(SCORE_PSI, c, None, max_psi, True, None) for c in columns]
    edges = monitor.bin_edges(previous, columns)
    expected, actual = monitor.bin_counts(previous, edges), monitor.bin_counts(current, edges)
    results = []
    for column in columns:
        if sum(expected[column]) == 0 or sum(actual[column]) == 0:
            results.append(CheckResult(SCORE_PSI, column, None, max_psi, True, reference_dt))
            continue
        value = monitor.psi(expected[column], actual[column])
        results.append(CheckResult(SCORE_PSI, column, value, max_psi, value <= max_psi, reference_dt))
    return results


def gate_checks(current: DataFrame, previous: DataFrame | None, reference_dt: dt.date | None,
                settings: PublishConfig, unscored: Sequence[str] = ()) -> list[CheckResult]:
    """All checks of the rows about to be published (``current``) against the previous date's rows.

    ``previous`` is None on the first date. ``unscored`` are columns null on this date by design (the columns
    of a model that has learnt too little to be published): their null-rate limit is 1. Raises ValueError
    naming the configuration key when a configured column is not a portrait column.
    """
    _check_columns(current, settings)
    rows, nulls, tagged = profile(current)
    previous_rows = None if previous is None else previous.count()
    results = [row_count_check(rows, previous_rows, settings.max_row_count_change, reference_dt)]
    limits = {**settings.null_rate_overrides, **dict.fromkeys(unscored, 1.0)}
    results += null_rate_checks(rows, nulls, settings.max_null_rate, limits)
    results.append(tag_coverage_check(rows, tagged, settings.min_tag_coverage))
    for column in settings.segment_columns:
        before = None if previous is None else segment_counts(previous, column)
        results += segment_share_checks(column, segment_counts(current, column), before,
                                        settings.max_segment_share_change, reference_dt)
    results += score_psi_checks(current, previous, settings.score_columns, settings.max_score_psi, reference_dt)
    return results
