"""The job graphs: the daily job (ingest → features → score → monitor) and the weekly training job.

The bundle's jobs (``resources/portrait_jobs.yml``) run these tasks as separate processes in this order;
``portrait daily`` runs exactly the same task functions in the same order in one process, and records the
run as a whole too (job ``daily``), so a local run and a scheduled one share one definition. A test holds the
bundle's task graph equal to :data:`DAILY` and :data:`WEEKLY`.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from portrait import audit
from portrait.lakehouse import Lakehouse
from portrait.privacy import pseudonym_key
from portrait.schemas import INPUT_TABLES, USER_FEATURES, USER_PORTRAIT
from portrait.stages import features, ingest, monitor, score, train
from portrait.stages.base import input_versions, timed
from portrait.stages.publish import check_tag_registry
from portrait.stages.score import OUTPUT_TABLES

log = logging.getLogger(__name__)

DAILY_JOB = "daily"


@dataclass(frozen=True)
class TaskParams:
    """The parameters every task of a run receives (the bundle passes the same ones to each task)."""

    day: dt.date
    git_commit: str | None = None
    source: ingest.Source | None = None
    generate_if_missing: bool = False
    model_uri: str | None = None


# Task name → the stage entry point it runs; the bundle's task keys are these names.
TASKS: dict[str, Callable[[Lakehouse, TaskParams], object]] = {
    "ingest": lambda lake, p: ingest.run(lake, p.day, p.source, p.generate_if_missing, p.git_commit),
    "features": lambda lake, p: features.run(lake, p.day, p.git_commit),
    "score": lambda lake, p: score.run(lake, p.day, p.model_uri, p.git_commit),
    "monitor": lambda lake, p: monitor.run(lake, p.day, p.git_commit),
    "train": lambda lake, p: train.run(lake, p.day, p.git_commit),
}
DAILY = ("ingest", "features", "score", "monitor")
NO_MODEL = "no model: none has learnt enough yet, so the scores are null (see 'not trained')"
WEEKLY = ("train",)


@dataclass
class RunSummary:
    """What a daily run did, printed at its end."""

    run_date: dt.date
    table_versions: dict[str, int] = field(default_factory=dict)  # input and output tables, after the run
    table_locations: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    mlflow_run_id: str | None = None
    model_uri: str | None = None
    promotion: str | None = None
    scored_with: str | None = None
    generated: bool = False
    seconds: float = 0.0
    breaches: int | None = None
    report_path: str | None = None
    input_versions: dict[str, int] = field(default_factory=dict)  # what the portrait was built from
    feature_rows: int = 0  # rows of the date's user_features partition, as written
    portrait_rows: int = 0  # rows of the date's user_portrait partition, as published
    not_trained: dict[str, str] = field(default_factory=dict)  # target → why nothing was trained

    def render(self) -> str:
        lines = [f"portrait daily run for {self.run_date} finished in {self.seconds:.1f} s"]
        if self.generated:
            lines.append("  input tables were missing: generated synthetic data")
        lines.append(f"  rows for {self.run_date}: user_features {self.feature_rows:,}, "
                     f"user_portrait {self.portrait_rows:,}")
        lines.append("  tables (Delta version, location):")
        lines += [f"    {name:<16} {version:>6}  {self.table_locations.get(name, '')}"
                  for name, version in self.table_versions.items()]
        if self.metrics:
            lines.append("  model on the held-out snapshot: " + ", ".join(
                f"{k}={v:.4f}" for k, v in self.metrics.items()
                if k.startswith(("auc", "log_loss", "base", "churn_auc"))))
        optional = (("MLflow run id", self.mlflow_run_id and f"{self.mlflow_run_id}  model: {self.model_uri}"),
                    ("promotion", self.promotion), ("portrait scored with", self.scored_with),
                    ("monitoring", None if self.breaches is None
                     else f"{self.breaches} breached check(s); see the monitoring table"),
                    ("daily report", self.report_path))
        lines += [f"  {label}: {value}" for label, value in optional if value]
        lines += [f"  not trained ({target}): {reason}" for target, reason in self.not_trained.items()]
        return "\n".join(lines)


def _summarise(summary: RunSummary, outcomes: dict[str, object]) -> None:
    scored: score.ScoreResult = outcomes["score"]
    summary.generated = bool(outcomes["ingest"].generated)
    summary.feature_rows, summary.portrait_rows = outcomes["features"], scored.portrait_rows
    summary.report_path = scored.report
    summary.scored_with = NO_MODEL if scored.scorer is None else scored.scorer.uri
    if outcomes["monitor"]:  # no checks when monitoring is off
        summary.breaches = sum(1 for row in outcomes["monitor"] if row.breached)
    training = scored.trained.get(train.PURCHASE_TARGET)
    for target, other in scored.trained.items():
        if target != train.PURCHASE_TARGET:
            summary.metrics.update({f"{target}_{k}": v for k, v in other.metrics.items() if k.startswith("auc_roc")})
    if training is not None:
        summary.metrics = {**training.metrics, **summary.metrics}
        summary.mlflow_run_id, summary.model_uri = training.run_id, training.model_uri
        if training.promotion is not None:
            summary.promotion = f"version {training.promotion.challenger_version} {training.promotion.outcome}"
        elif training.refusal is not None:
            summary.promotion = f"not registered: {training.refusal}"
    elif scored.scorer is not None:
        summary.mlflow_run_id, summary.model_uri = scored.scorer.run_id, scored.scorer.uri
    summary.not_trained.update(scored.trained.skipped)


def _table_versions(lake: Lakehouse, summary: RunSummary) -> None:
    """Versions from the transaction logs, no count: counting whole tables costs what the history costs."""
    summary.table_versions = lake.versions((*INPUT_TABLES, USER_FEATURES, USER_PORTRAIT))
    summary.table_locations = {c.name: str(lake.ref(c)) for c in (*INPUT_TABLES, USER_FEATURES, USER_PORTRAIT)
                               if c.name in summary.table_versions}


def run_tasks(lake: Lakehouse, tasks: tuple[str, ...], params: TaskParams) -> dict[str, object]:
    """Run ``tasks`` in order with ``params``; each records its own ``job_runs`` row. Returns their results."""
    outcomes = {}
    for task in tasks:
        with timed(f"task {task} {params.day}"):
            outcomes[task] = TASKS[task](lake, params)
    return outcomes


def run_daily(lake: Lakehouse, day: dt.date, generate_if_missing: bool = True, source: ingest.Source | None = None,
              git_commit: str | None = None) -> RunSummary:
    """The daily job for ``day``: the tasks of :data:`DAILY` in order, recorded as a whole as job ``daily``
    (with the input versions the portrait names, so the run replays)."""
    started = time.monotonic()
    summary = RunSummary(run_date=day)
    params = TaskParams(day, git_commit, source, generate_if_missing)
    with audit.recorded(lake, DAILY_JOB, day, git_commit) as run:
        check_tag_registry(lake)  # a bad tag definition fails now, not after training
        pseudonym_key()  # the BI tables need it: a missing key fails now, not after training
        run.input_versions = input_versions(lake)  # what a failed run had; replaced by what the portrait names
        outcomes = run_tasks(lake, DAILY, params)
        _summarise(summary, outcomes)
        run.input_versions = summary.input_versions = outcomes["score"].input_versions
        run.rows_in, run.rows_out = summary.feature_rows, summary.portrait_rows
        run.output_versions = lake.versions(OUTPUT_TABLES)
        scorer = outcomes["score"].scorer
        run.mlflow_run_id = None if scorer is None else scorer.run_id
    _table_versions(lake, summary)
    summary.seconds = time.monotonic() - started
    return summary


class BackfillError(RuntimeError):
    """A date of a backfill failed; earlier dates are done, later ones were not attempted."""


def backfill(lake: Lakehouse, start: dt.date, end: dt.date, git_commit: str | None = None) -> list[dt.date]:
    """Run the daily job for each date from ``start`` to ``end`` in order; returns the dates it ran.

    Dates with a successful daily run in ``job_runs`` are skipped, so re-running a failed backfill resumes
    at the first date not yet done. The first failure stops the backfill with :class:`BackfillError`.
    Backfills never generate data: input tables must exist.
    """
    if end < start:
        raise ValueError(f"the backfill range {start}..{end} ends before it starts")
    done = audit.succeeded_dates(lake, DAILY_JOB, start, end)
    ran = []
    for day in (start + dt.timedelta(days=k) for k in range((end - start).days + 1)):
        if day in done:
            log.info("backfill: %s already succeeded, skipped", day)
            continue
        try:
            run_daily(lake, day, generate_if_missing=False, git_commit=git_commit)
        except Exception as exc:
            raise BackfillError(f"backfill stopped at {day}: {type(exc).__name__}: {exc}. Dates before it "
                                "are done; re-run the same command to resume from this date.") from exc
        ran.append(day)
    return ran
