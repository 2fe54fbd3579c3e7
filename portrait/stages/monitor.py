"""The monitor task: drift and volume checks of a date, written to ``monitoring`` and logged to MLflow."""

from __future__ import annotations

import datetime as dt
import logging

from pyspark.sql import DataFrame

from portrait import audit
from portrait.lakehouse import Lakehouse
from portrait.model import tracking
from portrait.model.pipeline import COUNT_FEATURES
from portrait.model.training import snapshot_dates
from portrait.monitor import Check, drift_rows, volume_row
from portrait.schemas import CLICKSTREAM, MONITORING, USER_FEATURES, USER_PORTRAIT
from portrait.schemas.partitions import between_days
from portrait.stages.base import timed

log = logging.getLogger(__name__)

JOB = "monitor"


# Features that grow with the calendar for a shop's whole first 90 days (tenure within the window): compared
# with the previous day only, where one day of growth is no drift.
GROWS_WITH_TIME = ("days_since_first_event",)


class MonitoringBreach(RuntimeError):
    """A drift or volume check breached its threshold and monitoring.fail_on_breach is on."""


def _drift(lake: Lakehouse, day: dt.date) -> list[Check]:
    """Feature PSI against the previous day and the newest training snapshot; score PSI against the previous
    day (dates without features are skipped)."""
    threshold, previous = lake.cfg.monitoring.psi_threshold, day - dt.timedelta(days=1)
    columns = [*COUNT_FEATURES, "days_since_last_order"]
    today: DataFrame = lake.read_day(USER_FEATURES, day)
    yesterday = lake.read_day(USER_FEATURES, previous)
    rows: list[Check] = []
    if not yesterday.isEmpty():
        rows += drift_rows(day, "previous day", yesterday, today, columns, threshold)
        rows += drift_rows(day, "previous day", lake.read_day(USER_PORTRAIT, previous),
                           lake.read_day(USER_PORTRAIT, day), ["purchase_propensity"], threshold, check="score_psi")
    newest_snapshot = snapshot_dates(day, lake.cfg.model.label_horizon_days, 1, lake.cfg.model.snapshot_step_days)[0]
    reference = lake.read_day(USER_FEATURES, newest_snapshot)
    if not reference.isEmpty():
        # Weeks apart, a feature that counts days since a fixed point differs by construction, not by drift.
        stable = [c for c in columns if c not in GROWS_WITH_TIME]
        rows += drift_rows(day, f"training snapshot {newest_snapshot}", reference, today, stable, threshold)
    return rows


def _volume(lake: Lakehouse, day: dt.date) -> Check:
    """Clickstream events of ``day`` against the mean of the trailing ``monitoring.volume_trailing_days``."""
    settings = lake.cfg.monitoring
    first_day = day - dt.timedelta(days=settings.volume_trailing_days)
    daily_events = lake.rows_per_day(CLICKSTREAM, between_days(first_day, day))
    trailing = [daily_events.get(first_day + dt.timedelta(days=k), 0) for k in range(settings.volume_trailing_days)]
    return volume_row(day, daily_events.get(day, 0), trailing, settings.volume_max_relative_change)


def check(lake: Lakehouse, day: dt.date) -> list[Check]:
    """Drift and volume checks for ``day``, written to the ``monitoring`` table and logged to MLflow.

    Raises :class:`MonitoringBreach` after writing when a check breaches and ``monitoring.fail_on_breach`` is on.
    """
    rows = [*_drift(lake, day), _volume(lake, day)]
    lake.replace_day(MONITORING, lake.rows(MONITORING, rows), day)
    tracking.log_monitoring(lake.cfg, day, rows)
    breaches = [row.describe() for row in rows if row.breached]
    if breaches:
        log.warning("monitoring %s: %d breach(es): %s", day, len(breaches), "; ".join(breaches))
        if lake.cfg.monitoring.fail_on_breach:
            raise MonitoringBreach(f"monitoring of {day} breached: " + "; ".join(breaches))
    return rows


def run(lake: Lakehouse, day: dt.date, git_commit: str | None = None) -> list[Check]:
    """The monitor task: :func:`check`, recorded in ``job_runs`` as job ``monitor`` (no checks when
    ``monitoring.enabled`` is off)."""
    with audit.recorded(lake, JOB, day, git_commit) as run, timed(f"monitor {day}"):
        rows = check(lake, day) if lake.cfg.monitoring.enabled else []
        run.rows_out = len(rows)
        run.output_versions = lake.versions((MONITORING,))
    return rows
