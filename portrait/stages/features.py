"""The features stage: the ``user_features`` partition of a date, from the rollups of its lookback."""

from __future__ import annotations

import datetime as dt

from portrait import audit
from portrait.features.windows import features_from_rollups
from portrait.lakehouse import Lakehouse
from portrait.schemas import USER_DAILY_ACTIVITY, USER_FEATURES
from portrait.stages import rollups
from portrait.stages.base import input_versions, timed

JOB = "features"


def compute(lake: Lakehouse, day: dt.date, rollups_ready: bool = False) -> int:
    """Compute and write the ``user_features`` partition of ``day`` from the rollups; returns its row count.

    Stale or missing rollups are computed first unless ``rollups_ready``.
    """
    if not rollups_ready:
        rollups.ensure(lake, [day])
    features = lake.read(USER_DAILY_ACTIVITY).transform(features_from_rollups(day, lake.cfg.features))
    return lake.replace_day(USER_FEATURES, features, day)


def ensure(lake: Lakehouse, days: list[dt.date], refresh: bool = True) -> None:
    """Compute the feature partitions of ``days`` that do not exist yet (earlier ones are reused).

    Without ``refresh`` a missing date's features come from its rollup as stored when there is one (training
    snapshots: days the daily runs rolled up already); with it, the date's rollup is recomputed first.
    """
    present = lake.dates_present(USER_FEATURES, days)
    missing = [day for day in days if day not in present]
    if missing:
        rollups.ensure(lake, missing, refresh=refresh)
    for day in missing:
        with timed(f"features {day}"):
            compute(lake, day, rollups_ready=True)


def run(lake: Lakehouse, day: dt.date, git_commit: str | None = None) -> int:
    """The features task: :func:`compute`, recorded in ``job_runs`` as job ``features``; returns the rows."""
    with audit.recorded(lake, JOB, day, git_commit) as run, timed(f"features {day}"):
        run.input_versions = input_versions(lake)
        run.rows_out = compute(lake, day)
        run.output_versions = lake.versions((USER_DAILY_ACTIVITY, USER_FEATURES))
    return run.rows_out
