"""job_runs rows: one commit per job run, the rows of the jobs run inside it included."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F

from portrait import audit
from portrait.lakehouse import Lakehouse
from portrait.schemas import JOB_RUNS

DAY = dt.date(2026, 11, 20)


def _rows(lake: Lakehouse) -> dict[str, tuple[str, str | None]]:
    return {r["job"]: (r["status"], r["error_message"])
            for r in lake.read(JOB_RUNS).select("job", "status", "error_message").collect()}


def test_runs_inside_a_run_are_written_with_it_in_one_commit(spark, cfg):
    lake = Lakehouse(spark, cfg)
    with audit.recorded(lake, "ingest", DAY):
        pass
    assert _rows(lake) == {"ingest": ("succeeded", None)}
    version = lake.version(JOB_RUNS)

    with audit.recorded(lake, "daily", DAY) as daily:
        with audit.recorded(lake, "features", DAY) as features:
            features.rows_out = 7
        assert lake.version(JOB_RUNS) == version  # the task's row waits for its run's
        with audit.recorded(lake, "score", DAY):
            pass
        daily.rows_out = 7

    assert lake.version(JOB_RUNS) == version + 1
    assert _rows(lake) == {job: ("succeeded", None) for job in ("ingest", "daily", "features", "score")}
    assert lake.read(JOB_RUNS).where(F.col("job").isin("daily", "features")).agg(F.sum("rows_out")).first()[0] == 14


def test_a_failing_task_is_recorded_failed_with_the_run_it_failed(spark, cfg):
    lake = Lakehouse(spark, cfg)
    with pytest.raises(RuntimeError, match="injected"), audit.recorded(lake, "daily", DAY):
        with audit.recorded(lake, "features", DAY):
            pass
        with audit.recorded(lake, "score", DAY):
            raise RuntimeError("injected")
    assert _rows(lake) == {"daily": ("failed", "RuntimeError: injected"), "features": ("succeeded", None),
                           "score": ("failed", "RuntimeError: injected")}
    with audit.recorded(lake, "monitor", DAY):  # after the run, a job is the outermost again
        pass
    assert audit.succeeded_dates(lake, "monitor", DAY, DAY) == {DAY}
