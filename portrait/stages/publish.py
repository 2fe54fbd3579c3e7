"""Publishing a date's portrait: the quality gate, then the atomic partition write, then the tag changes."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import NamedTuple

from pyspark.sql import DataFrame

from portrait.lakehouse import Lakehouse
from portrait.publish import quality
from portrait.publish.changes import tag_changes
from portrait.publish.tags import check_definitions, tag_input_schema
from portrait.schemas import PORTRAIT_CHANGES, PUBLISH_CHECKS, USER_PORTRAIT
from portrait.stages.base import timed

log = logging.getLogger(__name__)


def check_tag_registry(lake: Lakehouse) -> None:
    """Check every tag definition of the registry against the portrait and feature columns, without data.

    Raises :class:`portrait.publish.tags.TagDefinitionError` naming the first invalid tag.
    """
    check_definitions(lake.cfg.tags, lake.spark.createDataFrame([], tag_input_schema()))


def previous_portrait_date(lake: Lakehouse, day: dt.date) -> dt.date | None:
    """The latest ``user_portrait`` date before ``day``, or None (first date, or no table yet)."""
    return lake.latest_date_before(USER_PORTRAIT, day)


class Published(NamedTuple):
    rows: int        # the portrait rows of the date
    checks: list     # the quality gate's results (portrait.publish.quality.CheckResult)


def publish_portrait(lake: Lakehouse, day: dt.date, portrait_rows: DataFrame,
                     unscored: Sequence[str] = ()) -> Published:
    """Publish a date's portrait: quality gate, then the atomic partition write, then the tag changes.

    The checks of :func:`portrait.publish.quality.gate_checks` (against the latest earlier portrait date)
    are written to ``publish_checks`` first. If one fails and ``publish.enforce`` is on,
    :class:`~portrait.publish.quality.QualityGateFailed` is raised and ``user_portrait`` is not touched: the
    previous dates and an earlier version of this date stay as they were. ``unscored``: the columns of a model
    that scored nobody on this date (none has learnt enough yet), null by design. Returns the rows and checks.
    """
    previous_day = previous_portrait_date(lake, day)
    previous = None if previous_day is None else lake.read_day(USER_PORTRAIT, previous_day)
    with timed(f"quality gate {day}"):
        checks = quality.gate_checks(portrait_rows, previous, previous_day, lake.cfg.publish, unscored)
    checked_at = dt.datetime.now(dt.timezone.utc)
    lake.replace_day(PUBLISH_CHECKS, lake.rows(PUBLISH_CHECKS, [c.as_row(day, checked_at) for c in checks]), day)
    failed = [check for check in checks if not check.passed]
    if failed:
        log.warning("quality gate %s: %d check(s) failed: %s", day, len(failed),
                    "; ".join(check.describe() for check in failed))
        if lake.cfg.publish.enforce:
            raise quality.QualityGateFailed(day, failed)
    lake.conform(USER_PORTRAIT)  # a table written by an older portrait: new columns, relaxed ones
    rows = lake.replace_day(USER_PORTRAIT, portrait_rows, day)
    write_changes(lake, day)
    return Published(rows, checks)


def write_changes(lake: Lakehouse, day: dt.date) -> int:
    """Write the ``portrait_changes`` partition of ``day`` (against the latest earlier portrait date).

    The first portrait date has no earlier one, so its partition is empty. Returns the rows written.
    """
    previous_day = previous_portrait_date(lake, day)
    if previous_day is None:
        changes = lake.rows(PORTRAIT_CHANGES, [])
    else:
        changes = lake.read_day(USER_PORTRAIT, day).transform(
            tag_changes(lake.read_day(USER_PORTRAIT, previous_day), previous_day, day))
    return lake.replace_day(PORTRAIT_CHANGES, changes, day)
