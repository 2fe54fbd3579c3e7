"""Run audit: every job writes one ``job_runs`` row telling what it did, on what data, and how it ended.

The row is written once, when the job ends (success or failure), in a single Delta commit. A job killed
outright leaves no row, which is what a resumed backfill needs: "no successful row" means "do it again".
A job run inside another (the tasks of ``portrait daily``) has its row written with the enclosing job's, in
the same commit: one commit per run instead of one per task, and the task rows of a run appear together with
the run's own row or not at all.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from pyspark.sql import functions as F

from portrait.lakehouse import Lakehouse
from portrait.schemas import JOB_RUNS
from portrait.schemas.partitions import between_days

SUCCEEDED = "succeeded"
FAILED = "failed"
GIT_COMMIT_ENV = "PORTRAIT_GIT_COMMIT"
_MAX_ERROR_CHARS = 4000

log = logging.getLogger(__name__)
# The rows of the jobs running inside the outermost recorded job of this thread, written when it ends.
_pending: ContextVar[list[tuple] | None] = ContextVar("portrait_pending_job_runs", default=None)


@dataclass
class JobRun:
    """What one job run did; filled in by the job while it runs."""

    job: str
    run_date: dt.date
    environment: str
    config_fingerprint: str
    git_commit: str | None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    ended_at: dt.datetime | None = None
    status: str | None = None
    rows_in: int | None = None
    rows_out: int | None = None
    input_versions: dict[str, int] = field(default_factory=dict)
    output_versions: dict[str, int] = field(default_factory=dict)
    mlflow_run_id: str | None = None
    error_message: str | None = None

    def as_row(self) -> tuple:
        return (self.run_id, self.job, self.run_date, self.status, self.started_at, self.ended_at,
                self.rows_in, self.rows_out, self.input_versions, self.output_versions, self.mlflow_run_id,
                self.error_message, self.environment, self.git_commit, self.config_fingerprint)


def current_git_commit() -> str | None:
    """The commit being run: ``PORTRAIT_GIT_COMMIT`` (set by schedulers), else the checkout's HEAD."""
    if os.environ.get(GIT_COMMIT_ENV):
        return os.environ[GIT_COMMIT_ENV]
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=os.path.dirname(__file__))
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


@contextmanager
def recorded(lake: Lakehouse, job: str, run_date: dt.date, git_commit: str | None = None) -> Iterator[JobRun]:
    """Run a job inside this context to record it in ``job_runs``, whether it succeeds or fails.

    The job's exception is re-raised after recording; a failure to record is logged, never hiding it.
    """
    run = JobRun(job=job, run_date=run_date, environment=lake.cfg.environment,
                 config_fingerprint=lake.cfg.fingerprint(), git_commit=git_commit or current_git_commit())
    enclosing = _pending.get()
    inner = [] if enclosing is None else None
    token = _pending.set(inner) if inner is not None else None
    try:
        yield run
        run.status = SUCCEEDED
    except BaseException as exc:
        run.status = FAILED
        run.error_message = f"{type(exc).__name__}: {exc}"[:_MAX_ERROR_CHARS]
        raise
    finally:
        run.ended_at = dt.datetime.now(dt.timezone.utc)
        if enclosing is not None:
            enclosing.append(run.as_row())  # written with the enclosing job's row
        else:
            _pending.reset(token)
            _write(lake, [*inner, run.as_row()], run)


def _write(lake: Lakehouse, rows: list[tuple], run: JobRun) -> None:
    try:
        lake.append(JOB_RUNS, lake.rows(JOB_RUNS, rows))
    except Exception:
        log.exception("could not record job run %s of %s for %s (and %d run(s) inside it)", run.run_id, run.job,
                      run.run_date, len(rows) - 1)


def succeeded_dates(lake: Lakehouse, job: str, start: dt.date, end: dt.date) -> set[dt.date]:
    """Dates in [start, end] for which ``job`` has a successful run (at most end - start + 1 dates)."""
    if not lake.exists(JOB_RUNS):
        return set()
    rows = (
        lake.read(JOB_RUNS)
        .where((F.col("job") == job) & (F.col("status") == SUCCEEDED)
               & between_days(start, end, column="run_date"))
        .select("run_date").distinct().collect()
    )
    return {row["run_date"] for row in rows}
