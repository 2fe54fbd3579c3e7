"""The jobs' work: read tables, run the pure transformations, write tables, log models.

Each ``run_*`` function is one stage that reads the tables above it and writes its own, so any stage can
be re-run for any date on its own. Job entry points (:mod:`portrait.cli`, ``jobs/*.py``) only parse
arguments, load the configuration and call these.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pyspark import StorageLevel
from pyspark.ml import PipelineModel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from portrait import io
from portrait.config import Config
from portrait.features.rollups import daily_activity, rollup_events
from portrait.features.user_features import build_user_features, lookback_start
from portrait.features.windows import features_from_rollups
from portrait.model.evaluation import evaluate_model
from portrait.model.explain import Explanation, explain_model, reason_codes
from portrait.model.pipeline import WEIGHT, build_pipeline
from portrait.model.scoring import SCORE, score
from portrait.model.training import (
    class_weights,
    label_churn,
    label_purchases,
    snapshot_dates,
    split_by_date,
    split_by_user_hash,
)
from portrait.publish.assemble import (
    CHURN_REASON_CODES,
    CHURN_SCORE,
    PortraitLineage,
    assemble_portrait,
    cut_points,
    with_user_attributes,
)
from portrait.schemas import (
    CLICKSTREAM,
    IDENTITY_GRAPH,
    INPUT_TABLES,
    ITEMS,
    ORDERS,
    REVIEWS,
    ROLLUP_INPUTS,
    USER_DAILY_ACTIVITY,
    USER_FEATURES,
    USER_PORTRAIT,
    USERS,
)

if TYPE_CHECKING:
    from portrait.model.promotion import PromotionDecision

log = logging.getLogger(__name__)


class _Stage:
    """Logs a stage's start and elapsed time, so a long run shows where it is."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> _Stage:
        self.started = time.monotonic()
        log.info("stage %s: started", self.name)
        return self

    def __exit__(self, *exc_info) -> None:
        status = "failed" if exc_info[0] else "done"
        log.info("stage %s: %s in %.1f s", self.name, status, time.monotonic() - self.started)


@dataclass
class TrainingResult:
    model: PipelineModel
    run_id: str
    model_uri: str
    registered_version: str | None
    metrics: dict[str, float]
    train_rows: int
    test_rows: int
    explanation: Explanation | None = None
    promotion: PromotionDecision | None = None


@dataclass
class RunSummary:
    """What a daily run did, printed at its end."""

    run_date: dt.date
    table_rows: dict[str, int] = field(default_factory=dict)
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

    def render(self) -> str:
        lines = [f"portrait daily run for {self.run_date} finished in {self.seconds:.1f} s"]
        if self.generated:
            lines.append("  input tables were missing: generated synthetic data")
        lines.append("  tables (rows, location):")
        for name, rows in self.table_rows.items():
            lines.append(f"    {name:<16} {rows:>10,}  {self.table_locations.get(name, '')}")
        if self.metrics:
            lines.append("  model on the held-out snapshot: " + ", ".join(
                f"{k}={v:.4f}" for k, v in self.metrics.items()
                if k.startswith(("auc", "log_loss", "base", "churn_auc"))
            ))
        if self.mlflow_run_id:
            lines.append(f"  MLflow run id: {self.mlflow_run_id}  model: {self.model_uri}")
        if self.promotion:
            lines.append(f"  promotion: {self.promotion}")
        if self.scored_with:
            lines.append(f"  portrait scored with: {self.scored_with}")
        if self.breaches is not None:
            lines.append(f"  monitoring: {self.breaches} breached check(s); see the monitoring table")
        if self.report_path:
            lines.append(f"  daily report: {self.report_path}")
        return "\n".join(lines)


def inputs_exist(spark: SparkSession, cfg: Config) -> bool:
    return all(io.table_exists(spark, io.table_ref(cfg, t)) for t in (CLICKSTREAM, ORDERS))


def run_generate(spark: SparkSession, cfg: Config, end_date: dt.date, users: int | None = None,
                 days: int | None = None, seed: int | None = None) -> dict[str, int]:
    """Write synthetic input tables covering the days up to ``end_date``; returns rows per table."""
    from portrait.generate import generate_tables

    tables = generate_tables(
        users=users or cfg.generate.users,
        days=days or cfg.generate.days,
        end_date=end_date,
        seed=cfg.generate.seed if seed is None else seed,
        time_zone=cfg.time_zone,
    )
    rows = {}
    for contract in INPUT_TABLES:
        arrow_table = tables[contract.name]
        io.overwrite_table(spark, cfg, contract, spark.createDataFrame(arrow_table))
        rows[contract.name] = arrow_table.num_rows
    return rows


def _optional(spark: SparkSession, cfg: Config, contract) -> DataFrame | None:
    ref = io.table_ref(cfg, contract)
    return io.read_table(spark, cfg, contract) if io.table_exists(spark, ref) else None


def _stitched(spark: SparkSession, cfg: Config, contract) -> DataFrame:
    """Read a table whose ``user_id`` becomes the stitched person id when an identity graph exists."""
    from portrait.ingest.identity import stitch_person_id
    from portrait.schemas import IDENTITY_GRAPH

    frame = io.read_table(spark, cfg, contract)
    if cfg.identity.enabled and io.table_exists(spark, io.table_ref(cfg, IDENTITY_GRAPH)):
        frame = frame.transform(stitch_person_id(io.read_table(spark, cfg, IDENTITY_GRAPH)))
    return frame


def run_ingest(spark: SparkSession, cfg: Config, fmt: str, path: str, now: dt.datetime | None = None):
    """Load file(s) in format ``fmt`` into clickstream/orders, quarantine bad rows, rebuild identity.

    Returns the run's :class:`portrait.ingest.load.IngestReport`; see :func:`portrait.ingest.load.ingest_files`.
    """
    from portrait.ingest.load import ingest_files

    with _Stage(f"ingest {fmt}"):
        return ingest_files(spark, cfg, fmt, path, now=now)


def run_identity(spark: SparkSession, cfg: Config):
    """Rebuild the identity graph from the whole clickstream; returns the build's counts."""
    from portrait.ingest.load import run_identity_build

    with _Stage("identity"):
        return run_identity_build(spark, cfg)


def _inputs(spark: SparkSession, cfg: Config) -> dict[str, DataFrame | None]:
    """The tables features are computed from; ``user_id`` is the stitched person id when an identity
    graph exists (anonymous events of a device that logged in count for its person)."""
    return {
        "clickstream": _stitched(spark, cfg, CLICKSTREAM),
        "orders": _stitched(spark, cfg, ORDERS),
        "items": _optional(spark, cfg, ITEMS),
        "reviews": _stitched(spark, cfg, REVIEWS) if io.table_exists(spark, io.table_ref(cfg, REVIEWS)) else None,
    }


def run_rollups(spark: SparkSession, cfg: Config, start: dt.date, end: dt.date) -> None:
    """Compute and write the ``user_daily_activity`` partitions of ``[start, end]`` in one pass and one commit."""
    tables = _inputs(spark, cfg)
    # Every part of the rollup reads these events: kept after their one read and shuffle, released after the write.
    # Materialised before the rollup is planned, so the planner sees their partitioning and adds no shuffle.
    events = tables["clickstream"].transform(rollup_events(start, end)).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        log.info("rollups %s..%s: %d logged-in events", start, end, events.count())
        rollups = events.transform(
            daily_activity(start, end, cfg.features, tables["orders"], tables["items"], tables["reviews"]))
        io.replace_date_range(spark, cfg, USER_DAILY_ACTIVITY, rollups, start, end)
    finally:
        events.unpersist()


def _rows_per_day(spark: SparkSession, cfg: Config, contract, start: dt.date, end: dt.date) -> dict[dt.date, int]:
    """Rows per ``dt`` of ``[start, end]`` (days without rows are absent; no table: empty)."""
    return _rows_per_day_where(spark, cfg, contract,
                               F.col("dt").between(F.lit(start).cast("date"), F.lit(end).cast("date")))


def _rows_per_day_where(spark: SparkSession, cfg: Config, contract, condition: Column) -> dict[dt.date, int]:
    """Rows per ``dt`` matching ``condition`` (days without rows are absent; no table: empty)."""
    if not io.table_exists(spark, io.table_ref(cfg, contract)):
        return {}
    rows = io.read_table(spark, cfg, contract).where(condition).groupBy("dt").count().collect()  # one per day
    return {row["dt"]: row["count"] for row in rows}


def _contiguous_ranges(days: list[dt.date]) -> list[tuple[dt.date, dt.date]]:
    ranges: list[tuple[dt.date, dt.date]] = []
    for day in sorted(days):
        if ranges and day == ranges[-1][1] + dt.timedelta(days=1):
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
    for first, last in _contiguous_ranges(days):
        start, events, day = first, 0, first
        while day <= last:
            today = events_per_day.get(day, 0)
            if day > start and events + today > max_events:
                passes.append((start, day - dt.timedelta(days=1)))
                start, events = day, 0
            events += today
            day += dt.timedelta(days=1)
        passes.append((start, last))
    return passes


# The counts a stored rollup of a day was computed from, in the column order of ROLLUP_INPUTS.
INPUT_COUNT_COLUMNS = ("clickstream_rows", "previous_day_clickstream_rows", "orders_rows", "reviews_rows")
NO_INPUT = (0, 0, 0, 0)


def rollup_input_counts(clickstream: dict[dt.date, int], orders: dict[dt.date, int], reviews: dict[dt.date, int],
                        start: dt.date, end: dt.date) -> dict[dt.date, tuple[int, int, int, int]]:
    """Per day of ``[start, end]`` with a clickstream, order or review row: the input counts its rollup reads
    (``INPUT_COUNT_COLUMNS``); the day before counts because a session running over midnight starts there.

    ``clickstream`` must include the day before ``start``. Days without a row of their own are absent (their
    counts are ``NO_INPUT``): they have no rollup rows, whatever happened the day before.
    """
    days = {d for d in (*clickstream, *orders, *reviews) if start <= d <= end}
    return {d: (clickstream.get(d, 0), clickstream.get(d - dt.timedelta(days=1), 0), orders.get(d, 0),
                reviews.get(d, 0)) for d in days}


def stale_rollup_days(current: dict[dt.date, tuple], recorded: dict[dt.date, tuple]) -> set[dt.date]:
    """Days whose stored rollup was computed from other input counts than the inputs hold now: never rolled
    up, rolled up before late rows (or a re-ingest, or a deletion) changed the day or the day before, or
    rolled up while the day had rows it no longer has."""
    return {d for d in set(current) | set(recorded) if current.get(d, NO_INPUT) != recorded.get(d)}


def _recorded_rollup_inputs(spark: SparkSession, cfg: Config, start: dt.date,
                            end: dt.date) -> dict[dt.date, tuple]:
    """The newest ``rollup_inputs`` counts per day of ``[start, end]`` (no table: empty)."""
    if not io.table_exists(spark, io.table_ref(cfg, ROLLUP_INPUTS)):
        return {}
    rows = (io.read_table(spark, cfg, ROLLUP_INPUTS)
            .where(F.col("dt").between(F.lit(start).cast("date"), F.lit(end).cast("date")))
            .groupBy("dt").agg(F.max_by(F.struct(*INPUT_COUNT_COLUMNS), "recorded_at").alias("counts"))
            .collect())  # at most one row per day of the range
    return {row["dt"]: tuple(row["counts"]) for row in rows}


def _record_rollup_inputs(spark: SparkSession, cfg: Config, counts: dict[dt.date, tuple],
                          recorded_at: dt.datetime) -> None:
    """Append one ``rollup_inputs`` row per day of ``counts``; the newest row of a day is the one read."""
    rows = [(day, *map(int, values), recorded_at) for day, values in sorted(counts.items())]
    io.append_rows(spark, cfg, ROLLUP_INPUTS, spark.createDataFrame(rows, ROLLUP_INPUTS.schema))


def ensure_rollups(spark: SparkSession, cfg: Config, days: list[dt.date],
                   refresh: bool = True) -> list[tuple[dt.date, dt.date]]:
    """Write the rollups the features of ``days`` need; returns the date ranges computed.

    A day of the lookback is rolled up when its stored rollup is stale (:func:`stale_rollup_days`: its input
    counts differ from those ``rollup_inputs`` recorded when it was computed; never computed counts as
    stale), so late events reach the features of every later date without a manual re-run. With
    ``refresh`` each feature date's own rollup is recomputed too (the items dimension it joins may have
    changed). Contiguous stale days are computed in one pass, or in several when they hold more than
    ``spark.rollup_events_per_pass`` events, and each pass's counts are recorded after its write.
    """
    start, end = lookback_start(min(days)), max(days)
    # Counted before the rollup reads the inputs: a row landing in between makes the record too low, so the
    # day is merely computed again next time; it is never taken for fresh.
    counted_at = dt.datetime.now(dt.timezone.utc)
    events_per_day = _rows_per_day(spark, cfg, CLICKSTREAM, start - dt.timedelta(days=1), end)
    current = rollup_input_counts(events_per_day, _rows_per_day(spark, cfg, ORDERS, start, end),
                                  _rows_per_day(spark, cfg, REVIEWS, start, end), start, end)
    stale = stale_rollup_days(current, _recorded_rollup_inputs(spark, cfg, start, end))
    ranges = rollup_passes(list(stale | (set(days) if refresh else set())), events_per_day,
                           cfg.spark.rollup_events_per_pass)
    for first, last in ranges:
        with _Stage(f"rollups {first}..{last}"):
            run_rollups(spark, cfg, first, last)
            computed = [first + dt.timedelta(days=k) for k in range((last - first).days + 1)]
            _record_rollup_inputs(spark, cfg, {d: current.get(d, NO_INPUT) for d in computed}, counted_at)
    return ranges


def _record_erased_inputs(spark: SparkSession, cfg: Config, removed: dict[str, dict[dt.date, int]]) -> None:
    """After an erasure deleted input rows and the same persons' rollup rows: record each affected day's input
    counts less the deleted rows, so the rollups (already without those persons, and otherwise unchanged)
    are not taken for stale and recomputed. Days without a record stay without one."""
    clickstream, orders, reviews = (removed.get(c.name, {}) for c in (CLICKSTREAM, ORDERS, REVIEWS))
    one_day = dt.timedelta(days=1)
    days = {*clickstream, *(d + one_day for d in clickstream), *orders, *reviews}
    if not days:
        return
    adjusted = {}
    for day, (events, previous_events, order_rows, review_rows) in _recorded_rollup_inputs(
            spark, cfg, min(days), max(days)).items():
        if day not in days:
            continue
        counts = (events - clickstream.get(day, 0), previous_events - clickstream.get(day - one_day, 0),
                  order_rows - orders.get(day, 0), review_rows - reviews.get(day, 0))
        # A day left without rows of its own has no rollup rows: NO_INPUT, as rollup_input_counts gives it.
        adjusted[day] = NO_INPUT if counts[0] == counts[2] == counts[3] == 0 else counts
    if adjusted:
        _record_rollup_inputs(spark, cfg, adjusted, dt.datetime.now(dt.timezone.utc))


def run_features(spark: SparkSession, cfg: Config, day: dt.date, rollups_ready: bool = False) -> int:
    """Compute and write the ``user_features`` partition of ``day`` from the rollups; returns its row count.

    Missing rollups are computed first unless ``rollups_ready``.
    """
    if not rollups_ready:
        ensure_rollups(spark, cfg, [day])
    features = io.read_table(spark, cfg, USER_DAILY_ACTIVITY).transform(features_from_rollups(day, cfg.features))
    io.replace_partition(spark, cfg, USER_FEATURES, features, day)
    return _partition_rows(spark, cfg, USER_FEATURES, day)


def _partition_rows(spark: SparkSession, cfg: Config, contract, day: dt.date) -> int:
    return io.read_table(spark, cfg, contract).where(F.col("dt") == F.lit(day).cast("date")).count()


def _feature_dates_present(spark: SparkSession, cfg: Config, days: list[dt.date]) -> set[dt.date]:
    if not io.table_exists(spark, io.table_ref(cfg, USER_FEATURES)):
        return set()
    wanted = [F.lit(d).cast("date") for d in days]
    present = io.read_table(spark, cfg, USER_FEATURES).where(F.col("dt").isin(*wanted)).select("dt").distinct()
    return {row["dt"] for row in present.collect()}  # at most len(days) rows


def ensure_features(spark: SparkSession, cfg: Config, days: list[dt.date], refresh: bool = True) -> None:
    """Compute the feature partitions of ``days`` that do not exist yet (earlier ones are reused).

    Without ``refresh`` a missing date's features come from its rollup as stored when there is one (training
    snapshots: days the daily runs rolled up already); with it, the date's rollup is recomputed first.
    """
    present = _feature_dates_present(spark, cfg, days)
    missing = [day for day in days if day not in present]
    if missing:
        ensure_rollups(spark, cfg, missing, refresh=refresh)
    for day in missing:
        with _Stage(f"features {day}"):
            run_features(spark, cfg, day, rollups_ready=True)


PURCHASE_TARGET = "purchase"
CHURN_TARGET = "churn"


def target_config(cfg: Config, target: str) -> Config:
    """The configuration of one training target: ``purchase`` is ``cfg`` itself; ``churn`` trains
    ``<model.name>_churn`` in experiment ``<mlflow.experiment>_churn`` with ``model.churn_horizon_days``."""
    if target == PURCHASE_TARGET:
        return cfg
    if target != CHURN_TARGET:
        raise ValueError(f"unknown training target {target!r}; known: purchase, churn")
    model = cfg.model.model_copy(update={"name": f"{cfg.model.name}_{target}",
                                         "label_horizon_days": cfg.model.churn_horizon_days,
                                         "targets": [PURCHASE_TARGET]})
    mlflow_settings = cfg.mlflow.model_copy(update={"experiment": f"{cfg.mlflow.experiment}_{target}"})
    return cfg.model_copy(update={"model": model, "mlflow": mlflow_settings})


def training_sets(spark: SparkSession, cfg: Config, run_date: dt.date,
                  target: str = PURCHASE_TARGET) -> tuple[list[dt.date], DataFrame, DataFrame]:
    """Snapshot dates and the labelled train and test rows of a training run as of ``run_date``.

    Computes missing feature partitions. The label is ``target``'s (``purchase``: a paid order in the
    horizon; ``churn``: no activity in it; pass the :func:`target_config` of the target). The split is
    time-based (newest snapshot tests) or, with ``model.split: user_hash`` or a single snapshot, by a hash
    of ``user_id``.
    """
    settings = cfg.model
    dates = snapshot_dates(run_date, settings.label_horizon_days, settings.training_snapshots,
                           settings.snapshot_step_days)
    ensure_features(spark, cfg, dates, refresh=False)
    features = io.read_table(spark, cfg, USER_FEATURES).where(
        F.col("dt").isin(*[F.lit(d).cast("date") for d in dates])
    )
    if target == PURCHASE_TARGET:
        label = label_purchases(_stitched(spark, cfg, ORDERS), settings.label_horizon_days)
    else:
        label = label_churn(_stitched(spark, cfg, CLICKSTREAM), settings.label_horizon_days)
    labelled = features.transform(label)
    if settings.split == "user_hash" or len(dates) == 1:
        train, test = split_by_user_hash(labelled, settings.test_fraction, settings.seed)
    else:
        train, test = split_by_date(labelled, dates[-1])
    return dates, train, test


class NotEnoughHistoryError(ValueError):
    """The snapshot dates of a training run have no feature rows: the data does not reach back far enough."""


def run_train(spark: SparkSession, cfg: Config, run_date: dt.date,
              target: str = PURCHASE_TARGET) -> TrainingResult:
    """Fit the propensity model on point-in-time snapshots before ``run_date`` and log it to MLflow.

    Snapshots are feature dates whose label window has passed by ``run_date``; the newest is held out
    for evaluation (a time-based split), the others train. The run logs the evaluation against the random
    and RFM baselines (metrics, tables, plots), the explanation (top features, what reason codes need) and,
    when the model is registered, the promotion decision against the current champion on the same test rows.
    ``target`` picks the label (see :func:`target_config`): each target has its own experiment and model.
    """
    from portrait.model import tracking
    from portrait.model.promotion import promote

    cfg = target_config(cfg, target)
    settings = cfg.model
    dates, train, test = training_sets(spark, cfg, run_date, target)
    test = test.cache()  # evaluated, logged as the input example and scored by the champion
    train = train.cache()
    for rows, side in ((train, "training"), (test, "test")):
        if rows.isEmpty():
            train.unpersist()
            test.unpersist()
            raise NotEnoughHistoryError(
                f"target {target!r}: no {side} rows on the snapshot dates {', '.join(map(str, dates))} (label "
                f"horizon {settings.label_horizon_days} days before {run_date}); the input tables need events "
                f"before {dates[0]}, or lower model.training_snapshots / model.snapshot_step_days")
    labelled_train = train  # the cached rows; weights below are a column over them
    if settings.class_weights:
        train = train.transform(class_weights(WEIGHT))
    tuning_params: dict[str, float] = {}
    tuning_metrics: dict[str, float] = {}
    with _Stage("fit"):
        if settings.tuning.enabled:
            from portrait.model.tuning import tune

            tuned = tune(settings, train)
            model, tuning_params = tuned.model, tuned.params()
            tuning_metrics = {"tuning_validation_auc_roc": tuned.validation_auc_roc}
            log.info("tuning: best %s of %d candidates (validation AUC %.4f)", tuned.best,
                     len(tuned.candidates), tuned.validation_auc_roc)
        else:
            model = build_pipeline(settings).fit(train)
    with _Stage("evaluate"):
        report = evaluate_model(test.transform(score(model)), seed=settings.seed)
        metrics = {**report.metrics, **tuning_metrics}
    with _Stage("explain"):
        explanation = explain_model(model, train, settings.vocabulary_tokens)
    train_rows = train.count()
    labelled_train.unpersist()
    versions = {f"input_version_{t.name}": io.table_version(spark, cfg, t) for t in (CLICKSTREAM, ORDERS)}
    params = {
        "run_date": run_date.isoformat(),
        "snapshot_dates": ",".join(d.isoformat() for d in dates),
        "train_rows": train_rows,
        "test_rows": int(metrics["rows"]),
        **versions,
        **settings.model_dump(),
        **tuning_params,
    }
    with _Stage("log model to MLflow"):
        logged = tracking.log_training_run(cfg, model, test, {**params, "target": target}, metrics,
                                           run_name=f"train-{target}-{run_date}",
                                           evaluation=report, explanation=explanation)
    decision = None
    if logged.registered_version is not None:
        with _Stage("promotion"):
            decision = promote(cfg, logged, test, metrics["auc_roc"])
        log.info("model version %s: %s (challenger AUC %.4f, champion AUC %s, margin %.4f)",
                 decision.challenger_version, decision.outcome, decision.challenger_auc,
                 "none" if decision.champion_auc is None else f"{decision.champion_auc:.4f}", decision.margin)
    test.unpersist()
    return TrainingResult(model, logged.run_id, logged.model_uri, logged.registered_version, metrics,
                          train_rows, int(metrics["rows"]), explanation, decision)


@dataclass(frozen=True)
class Scorer:
    """A model the portrait is scored with, and what the rows record about it."""

    model: PipelineModel
    run_id: str
    version: str | None = None
    explanation: Explanation | None = None
    uri: str | None = None


def load_scorer(model_uri: str) -> Scorer:
    """A logged model (``runs:/…`` or ``models:/…``) with its run, registry version and explanation."""
    from portrait.model import tracking

    version = tracking.registered_version_of(model_uri)
    # An alias is resolved once: a promotion running meanwhile cannot mix two versions in one portrait.
    name = model_uri.removeprefix("models:/").split("@")[0].split("/")[0]
    pinned = model_uri if version is None else f"models:/{name}/{version}"
    return Scorer(tracking.load_model(pinned), tracking.run_id_of(pinned), version,
                  tracking.load_explanation(pinned), model_uri)


def _scorer_after_training(cfg: Config, trained: TrainingResult | None) -> Scorer:
    """The model to score with for ``cfg``'s target: the one just trained unless the promotion gate kept an
    earlier champion; without training, the champion (:class:`NoModelError` when there is none)."""
    from portrait.model import tracking

    if trained is not None and trained.promotion is None:  # not registered: the run's own model
        return Scorer(trained.model, trained.run_id, None, trained.explanation, trained.model_uri)
    if trained is not None and trained.promotion.promoted:
        return Scorer(trained.model, trained.run_id, str(trained.promotion.challenger_version),
                      trained.explanation, tracking.champion_model_uri(cfg))
    return load_scorer(tracking.champion_model_uri(cfg))


def churn_scorer(cfg: Config, trained: TrainingResult | None = None) -> Scorer | None:
    """The churn model the portrait's ``churn_score`` comes from, or None (churn not among ``model.targets``,
    or no champion yet: the column stays null and a warning says why)."""
    from portrait.model.tracking import NoModelError

    if CHURN_TARGET not in cfg.model.targets:
        return None
    try:
        return _scorer_after_training(target_config(cfg, CHURN_TARGET), trained)
    except NoModelError as exc:
        log.warning("portrait rows get no churn_score: %s", exc)
        return None


def run_portrait(spark: SparkSession, cfg: Config, day: dt.date, scorer: Scorer,
                 churn: Scorer | None = None, input_versions: dict[str, int] | None = None,
                 features_ready: bool = False) -> int:
    """Score the users of ``day`` and write the ``user_portrait`` partition of ``day``; returns its rows.

    With the model's explanation every row gets its reason codes; without, an empty list. ``churn`` fills
    ``churn_score`` (else null). ``input_versions`` are the input table versions the run records (read at its
    start; default: now); the rows name them and the ``users`` attributes are read at that version. The rows are
    published only when they pass the quality gate
    (:func:`publish_portrait`); otherwise :class:`portrait.publish.quality.QualityGateFailed` is raised and
    the table is unchanged. ``features_ready``: the caller has just written the date's features (the daily
    run), so they are not looked for again.
    """
    check_tag_registry(spark, cfg)
    if not features_ready:
        ensure_features(spark, cfg, [day])
    features = io.read_table(spark, cfg, USER_FEATURES).where(F.col("dt") == F.lit(day).cast("date"))
    versions = _current_input_versions(spark, cfg) if input_versions is None else input_versions
    users = _input_frame(spark, cfg, USERS, versions)
    portrait_rows, scored = _portrait_frame(cfg, day, features, scorer, churn, users, versions)
    try:
        publish_portrait(spark, cfg, day, portrait_rows)  # quality gate, atomic write, tag changes
    finally:
        scored.unpersist()
    return _partition_rows(spark, cfg, USER_PORTRAIT, day)


def _portrait_frame(cfg: Config, day: dt.date, features: DataFrame, scorer: Scorer, churn: Scorer | None,
                    users: DataFrame | None, input_versions: dict[str, int]) -> tuple[DataFrame, DataFrame]:
    """Portrait rows of ``day`` from its feature rows, and the cached scored rows (unpersist after use)."""
    from portrait.privacy import pseudonym_key

    if scorer.explanation is not None:
        scored = features.transform(reason_codes(scorer.model, scorer.explanation, score_output=SCORE))
    else:
        scored = features.transform(score(scorer.model))
    if churn is not None and churn.explanation is not None:
        scored = scored.transform(reason_codes(churn.model, churn.explanation, output=CHURN_REASON_CODES,
                                               score_output=CHURN_SCORE))
    elif churn is not None:
        scored = scored.transform(score(churn.model, CHURN_SCORE))
    scored = scored.transform(with_user_attributes(users)).cache()  # read twice: cut points, then the assembly
    lineage = PortraitLineage(cfg.model.name, scorer.run_id, scorer.version,
                              None if churn is None else churn.run_id, tuple(sorted(input_versions.items())))
    assemble = assemble_portrait(day, cut_points(scored), lineage, pseudonym_key(), tags=cfg.tags,
                                 high_refund_rate=cfg.features.high_refund_rate)
    return scored.transform(assemble), scored


def _targets_to_train(cfg: Config) -> list[str]:
    """The targets the daily run trains: all (``model.daily_training: always``, or no registry), else those
    without a champion to score with or whose champion was marked for retraining after an erasure."""
    if cfg.model.daily_training == "always" or not cfg.mlflow.register_model:
        return list(cfg.model.targets)
    from portrait.model import tracking

    needed = []
    for target in cfg.model.targets:
        target_cfg = target_config(cfg, target)
        champion = tracking.champion_version(target_cfg)
        if champion is None or str(champion.version) in tracking.versions_to_retrain(target_cfg,
                                                                                     target_cfg.model.name):
            needed.append(target)
    return needed


def run_score(spark: SparkSession, cfg: Config, day: dt.date, model_uri: str | None = None,
              git_commit: str | None = None) -> dict[str, object]:
    """The scheduled "score" task: score ``day`` with ``model_uri`` (default the champion; churn with its
    champion), write the portrait, the BI tables and the report; recorded in ``job_runs`` as job ``score``.
    Returns what it wrote."""
    from portrait import audit
    from portrait.model import tracking

    uri = model_uri or tracking.champion_model_uri(cfg)
    with audit.recorded(spark, cfg, "score", day, git_commit) as run:
        run.input_versions = _current_input_versions(spark, cfg)
        scorer = load_scorer(uri)
        run.mlflow_run_id = scorer.run_id
        with _Stage(f"portrait {day}"):
            rows = run_portrait(spark, cfg, day, scorer, churn_scorer(cfg), run.input_versions)
        with _Stage(f"bi tables and report {day}"):
            bi_rows = run_bi_tables(spark, cfg, day)
            report = run_daily_report(spark, cfg, day)
        run.rows_in = _partition_rows(spark, cfg, USER_FEATURES, day)
        run.rows_out = rows
        run.output_versions = {c.name: io.table_version(spark, cfg, c)
                               for c in (USER_DAILY_ACTIVITY, USER_FEATURES, USER_PORTRAIT)}
    return {"model_uri": uri, "portrait_rows": rows, "bi_rows": bi_rows, "report": str(report)}


def run_features_recorded(spark: SparkSession, cfg: Config, day: dt.date, git_commit: str | None = None) -> int:
    """:func:`run_features`, recorded in ``job_runs`` as job ``features`` (the scheduled features task)."""
    from portrait import audit

    with audit.recorded(spark, cfg, "features", day, git_commit) as run:
        run.input_versions = _current_input_versions(spark, cfg)
        run.rows_out = run_features(spark, cfg, day)
        run.output_versions = {USER_FEATURES.name: io.table_version(spark, cfg, USER_FEATURES)}
    return run.rows_out


def run_monitor_recorded(spark: SparkSession, cfg: Config, day: dt.date, git_commit: str | None = None) -> list[tuple]:
    """:func:`run_monitor`, recorded in ``job_runs`` as job ``monitor`` (the scheduled monitor task)."""
    from portrait import audit

    with audit.recorded(spark, cfg, "monitor", day, git_commit) as run:
        rows = run_monitor(spark, cfg, day)
        run.rows_out = len(rows)
    return rows


def run_daily(spark: SparkSession, cfg: Config, day: dt.date, generate_if_missing: bool = True,
              input_versions: dict[str, int] | None = None) -> RunSummary:
    """Features → training (see ``model.daily_training``) → scoring → portrait for ``day``; generates input
    data first when allowed and the input tables do not exist.

    ``input_versions``: the current versions of the input tables, when the caller has just read them (the
    recorded run does, before this starts); the input tables exist then and are not looked for again.
    """
    started = time.monotonic()
    summary = RunSummary(run_date=day)
    check_tag_registry(spark, cfg)  # a bad tag definition fails now, not after training
    from portrait.privacy import pseudonym_key

    pseudonym_key()  # the BI tables need it: a missing key fails now, not after training
    if not input_versions and not inputs_exist(spark, cfg):
        if not generate_if_missing:
            io.read_table(spark, cfg, CLICKSTREAM)  # raises TableNotFoundError naming the table
            io.read_table(spark, cfg, ORDERS)
        log.info("input tables missing: generating synthetic data up to %s", day)
        with _Stage("generate"):
            run_generate(spark, cfg, end_date=day)
        summary.generated = True
    summary.input_versions = input_versions or _current_input_versions(spark, cfg)
    with _Stage(f"features {day}"):
        summary.feature_rows = run_features(spark, cfg, day)
    trained: dict[str, TrainingResult] = {}
    for target in _targets_to_train(cfg):
        with _Stage("train" if target == PURCHASE_TARGET else f"train {target}"):
            try:
                trained[target] = run_train(spark, cfg, day, target)
            except NotEnoughHistoryError as exc:
                if target == PURCHASE_TARGET:
                    raise
                # A secondary score waits for history (churn looks 30 days ahead); the portrait goes on without it.
                log.warning("%s; its portrait column stays empty until then", exc)
    training = trained.get(PURCHASE_TARGET)
    for target, other in trained.items():
        if target != PURCHASE_TARGET:
            summary.metrics.update({f"{target}_{k}": v for k, v in other.metrics.items() if k.startswith("auc_roc")})
    # The portrait is scored with the champion: the new model unless it failed the promotion gate.
    scorer = _scorer_after_training(cfg, training)
    if training is None:
        log.info("scoring with the champion %s (model.daily_training: %s)", scorer.uri, cfg.model.daily_training)
    scored_with = scorer.uri
    with _Stage(f"portrait {day}"):
        summary.portrait_rows = run_portrait(spark, cfg, day, scorer, churn_scorer(cfg, trained.get(CHURN_TARGET)),
                                             summary.input_versions, features_ready=True)
    with _Stage(f"bi tables and report {day}"):
        run_bi_tables(spark, cfg, day)
        summary.report_path = str(run_daily_report(spark, cfg, day))
    for contract in (*INPUT_TABLES, USER_FEATURES, USER_PORTRAIT):
        ref = io.table_ref(cfg, contract)
        if io.table_exists(spark, ref):
            summary.table_rows[contract.name] = io.read_table(spark, cfg, contract).count()
            summary.table_locations[contract.name] = str(ref)
    summary.scored_with = scored_with
    if training is not None:
        summary.metrics = {**training.metrics, **summary.metrics}
        summary.mlflow_run_id = training.run_id
        summary.model_uri = training.model_uri
        if training.promotion is not None:
            summary.promotion = f"version {training.promotion.challenger_version} {training.promotion.outcome}"
    else:
        summary.mlflow_run_id, summary.model_uri = scorer.run_id, scored_with
    summary.seconds = time.monotonic() - started
    return summary


class BackfillError(RuntimeError):
    """A date of a backfill failed; earlier dates are done, later ones were not attempted."""


class ReplayError(LookupError):
    """A job run cannot be replayed (unknown run id, not a succeeded daily run)."""


def _current_input_versions(spark: SparkSession, cfg: Config) -> dict[str, int]:
    versions = {}
    for contract in (*INPUT_TABLES, IDENTITY_GRAPH):
        version = io.table_version(spark, cfg, contract)
        if version is not None:
            versions[contract.name] = version
    return versions


def run_daily_recorded(spark: SparkSession, cfg: Config, day: dt.date, generate_if_missing: bool = True,
                       git_commit: str | None = None) -> RunSummary:
    """:func:`run_daily`, recorded in ``job_runs`` with its input and output versions and its model run."""
    from portrait import audit
    from portrait.model import tracking

    with audit.recorded(spark, cfg, "daily", day, git_commit) as run:
        if inputs_exist(spark, cfg):
            run.input_versions = _current_input_versions(spark, cfg)
        summary = run_daily(spark, cfg, day, generate_if_missing=generate_if_missing,
                            input_versions=run.input_versions or None)
        run.input_versions = summary.input_versions  # the versions the portrait rows name
        run.rows_in, run.rows_out = summary.feature_rows, summary.portrait_rows
        run.output_versions = {c.name: io.table_version(spark, cfg, c)
                               for c in (USER_DAILY_ACTIVITY, USER_FEATURES, USER_PORTRAIT)}
        run.mlflow_run_id = tracking.run_id_of(summary.scored_with or summary.model_uri)
        if cfg.monitoring.enabled:
            with _Stage(f"monitor {day}"):
                summary.breaches = sum(1 for row in run_monitor(spark, cfg, day) if row[5])
    return summary


def run_backfill(spark: SparkSession, cfg: Config, start: dt.date, end: dt.date,
                 git_commit: str | None = None) -> list[dt.date]:
    """Run the daily job for each date from ``start`` to ``end`` in order; returns the dates it ran.

    Dates with a successful daily run in ``job_runs`` are skipped, so re-running a failed backfill resumes
    at the first date not yet done. The first failure stops the backfill with :class:`BackfillError`.
    Backfills never generate data: input tables must exist.
    """
    from portrait import audit

    if end < start:
        raise ValueError(f"the backfill range {start}..{end} ends before it starts")
    done = audit.succeeded_dates(spark, cfg, "daily", start, end)
    ran = []
    day = start
    while day <= end:
        if day in done:
            log.info("backfill: %s already succeeded, skipped", day)
        else:
            try:
                run_daily_recorded(spark, cfg, day, generate_if_missing=False, git_commit=git_commit)
            except Exception as exc:
                raise BackfillError(f"backfill stopped at {day}: {type(exc).__name__}: {exc}. Dates before it "
                                    "are done; re-run the same command to resume from this date.") from exc
            ran.append(day)
        day += dt.timedelta(days=1)
    return ran


def _input_frame(spark: SparkSession, cfg: Config, contract, versions: dict[str, int]) -> DataFrame | None:
    """A table as of its recorded version; None when the run did not read it (an absent optional table)."""
    if contract.name not in versions:
        return None
    return io.read_table(spark, cfg, contract, version=versions[contract.name])


@contextmanager
def replay_portrait(spark: SparkSession, cfg: Config, job_run_id: str) -> Iterator[DataFrame]:
    """Recompute the portrait of a past daily run from the table versions and model it recorded; a context
    manager whose frame is valid inside the ``with`` block (the scored rows it reads are cached until then).

    Features are recomputed from the ``user_daily_activity`` rollups at the version the run recorded (runs
    recorded before rollups existed: from the input tables at their recorded versions) and must equal the
    ``user_features`` it published (checked); the portrait is then scored from those features with the
    recorded model run, exactly as the run did. ``person_key`` is recomputed with the current pseudonymisation
    key: after a key rotation a replay of an earlier date differs in that column only.
    """
    from portrait.ingest.identity import stitch_person_id
    from portrait.model import tracking
    from portrait.schemas import JOB_RUNS

    runs = io.read_table(spark, cfg, JOB_RUNS).where(
        (F.col("run_id") == job_run_id) & (F.col("job") == "daily") & (F.col("status") == "succeeded"))
    run = runs.first()
    if run is None:
        raise ReplayError(f"no succeeded daily run with run_id {job_run_id!r} in job_runs")
    day, versions = run["run_date"], dict(run["input_versions"])
    clickstream, orders = (_input_frame(spark, cfg, c, versions) for c in (CLICKSTREAM, ORDERS))
    identity = _input_frame(spark, cfg, IDENTITY_GRAPH, versions)
    reviews = _input_frame(spark, cfg, REVIEWS, versions)
    if identity is not None and cfg.identity.enabled:
        clickstream, orders = (f.transform(stitch_person_id(identity)) for f in (clickstream, orders))
        reviews = None if reviews is None else reviews.transform(stitch_person_id(identity))
    outputs = dict(run["output_versions"])
    if outputs.get(USER_DAILY_ACTIVITY.name) is not None:
        # The run computed its features from the rollups at this version: the same rows through the same
        # code give the same sums bit for bit (a recompute from raw events differs in the last bits).
        recomputed = io.read_table(spark, cfg, USER_DAILY_ACTIVITY, version=outputs[USER_DAILY_ACTIVITY.name]
                                   ).transform(features_from_rollups(day, cfg.features))
    else:
        recomputed = build_user_features(day, cfg.features, clickstream=clickstream, orders=orders,
                                         items=_input_frame(spark, cfg, ITEMS, versions), reviews=reviews)
    published = io.read_table(spark, cfg, USER_FEATURES, version=outputs[USER_FEATURES.name]).where(
        F.col("dt") == F.lit(day).cast("date"))
    if not (recomputed.exceptAll(published).isEmpty() and published.exceptAll(recomputed).isEmpty()):
        raise ReplayError(f"features of {day} recomputed from the recorded input versions differ from the "
                          "published ones: an input table was changed in place or the feature code changed")
    # The models are the recorded run's; the registry versions and the churn model's run are read from the
    # published rows (aliases move, so the registry today cannot say which version scored that day).
    lineage = io.read_table(spark, cfg, USER_PORTRAIT, version=outputs[USER_PORTRAIT.name]).where(
        F.col("dt") == F.lit(day).cast("date")).select("model_version", "churn_model_run_id").first()
    model_uri = f"runs:/{run['mlflow_run_id']}/{tracking.MODEL_ARTIFACT}"
    scorer = Scorer(tracking.load_model(model_uri), run["mlflow_run_id"],
                    None if lineage is None else lineage["model_version"], tracking.load_explanation(model_uri))
    churn = None
    if lineage is not None and lineage["churn_model_run_id"] is not None:
        churn = load_scorer(f"runs:/{lineage['churn_model_run_id']}/{tracking.MODEL_ARTIFACT}")
    recorded_inputs = {name: version for name, version in versions.items()
                       if name in {c.name for c in (*INPUT_TABLES, IDENTITY_GRAPH)}}
    portrait, scored = _portrait_frame(cfg, day, published, scorer, churn,
                                       _input_frame(spark, cfg, USERS, versions), recorded_inputs)
    try:
        yield portrait
    finally:
        scored.unpersist()


def replay_matches(spark: SparkSession, cfg: Config, job_run_id: str) -> tuple[int, int]:
    """Replay a run and compare with its published portrait: (rows that differ either way, rows)."""
    from portrait.schemas import JOB_RUNS

    run = io.read_table(spark, cfg, JOB_RUNS).where(F.col("run_id") == job_run_id).first()
    published = io.read_table(spark, cfg, USER_PORTRAIT, version=run["output_versions"][USER_PORTRAIT.name]).where(
        F.col("dt") == F.lit(run["run_date"]).cast("date"))
    with replay_portrait(spark, cfg, job_run_id) as replayed:
        differing = replayed.exceptAll(published).count() + published.exceptAll(replayed).count()
    return differing, published.count()


class MonitoringBreach(RuntimeError):
    """A drift or volume check breached its threshold and monitoring.fail_on_breach is on."""


def run_monitor(spark: SparkSession, cfg: Config, day: dt.date) -> list[tuple]:
    """Drift and volume checks for ``day``, written to the ``monitoring`` table and logged to MLflow.

    Feature PSI against the previous day and against the newest training snapshot, score PSI against the
    previous day, and clickstream volume against the trailing mean. Raises :class:`MonitoringBreach` after
    writing when a check breaches and ``monitoring.fail_on_breach`` is on.
    """
    from portrait import monitor
    from portrait.model import tracking
    from portrait.model.pipeline import COUNT_FEATURES
    from portrait.model.training import snapshot_dates as training_snapshots
    from portrait.schemas import MONITORING

    settings, threshold = cfg.monitoring, cfg.monitoring.psi_threshold

    def on(frame: DataFrame, d: dt.date) -> DataFrame:
        return frame.where(F.col("dt") == F.lit(d).cast("date"))

    features, portraits = io.read_table(spark, cfg, USER_FEATURES), io.read_table(spark, cfg, USER_PORTRAIT)
    today, yesterday = on(features, day), on(features, day - dt.timedelta(days=1))
    columns = [*COUNT_FEATURES, "days_since_last_order"]
    rows = []
    if not yesterday.isEmpty():
        rows += monitor.drift_rows(day, "previous day", yesterday, today, columns, threshold)
        rows += monitor.drift_rows(day, "previous day", on(portraits, day - dt.timedelta(days=1)),
                                   on(portraits, day), ["purchase_propensity"], threshold, check="score_psi")
    newest_snapshot = training_snapshots(day, cfg.model.label_horizon_days, 1, cfg.model.snapshot_step_days)[0]
    reference = on(features, newest_snapshot)
    if not reference.isEmpty():
        rows += monitor.drift_rows(day, f"training snapshot {newest_snapshot}", reference, today, columns, threshold)
    first_day = day - dt.timedelta(days=settings.volume_trailing_days)
    daily_events = {
        r["dt"]: r["events"]
        for r in io.read_table(spark, cfg, CLICKSTREAM)
        .where(F.col("dt").between(F.lit(first_day).cast("date"), F.lit(day).cast("date")))
        .groupBy("dt").agg(F.count(F.lit(1)).alias("events")).collect()  # at most trailing_days + 1 rows
    }
    trailing = [daily_events.get(first_day + dt.timedelta(days=k), 0) for k in range(settings.volume_trailing_days)]
    rows.append(monitor.volume_row(day, daily_events.get(day, 0), trailing, settings.volume_max_relative_change))
    io.replace_partition(spark, cfg, MONITORING, spark.createDataFrame(rows, MONITORING.schema), day)
    tracking.log_monitoring(cfg, day, rows)
    breaches = [f"{r[0]} {r[1]} vs {r[2]}: {r[3]:.3f} > {r[4]}" for r in rows if r[5]]
    if breaches:
        log.warning("monitoring %s: %d breach(es): %s", day, len(breaches), "; ".join(breaches))
        if settings.fail_on_breach:
            raise MonitoringBreach(f"monitoring of {day} breached: " + "; ".join(breaches))
    return rows


# --------------------------------------------------------------------------- publishing and maintenance


def check_tag_registry(spark: SparkSession, cfg: Config) -> None:
    """Check every tag definition of the registry against the portrait and feature columns, without data.

    Raises :class:`portrait.publish.tags.TagDefinitionError` naming the first invalid tag.
    """
    from portrait.publish.tags import check_definitions, tag_input_schema

    check_definitions(cfg.tags, spark.createDataFrame([], tag_input_schema()))


def previous_portrait_date(spark: SparkSession, cfg: Config, day: dt.date) -> dt.date | None:
    """The latest ``user_portrait`` date before ``day``, or None (first date, or no table yet)."""
    if not io.table_exists(spark, io.table_ref(cfg, USER_PORTRAIT)):
        return None
    earlier = io.read_table(spark, cfg, USER_PORTRAIT).where(F.col("dt") < F.lit(day).cast("date"))
    return earlier.agg(F.max("dt")).first()[0]


def _portrait_of(spark: SparkSession, cfg: Config, day: dt.date) -> DataFrame:
    return io.read_table(spark, cfg, USER_PORTRAIT).where(F.col("dt") == F.lit(day).cast("date"))


def publish_portrait(spark: SparkSession, cfg: Config, day: dt.date, portrait_rows: DataFrame) -> list:
    """Publish a date's portrait: quality gate, then the atomic partition write, then the tag changes.

    The checks of :func:`portrait.publish.quality.gate_checks` (against the latest earlier portrait date)
    are written to ``publish_checks`` first. If one fails and ``publish.enforce`` is on,
    :class:`~portrait.publish.quality.QualityGateFailed` is raised and ``user_portrait`` is not touched: the
    previous dates and an earlier version of this date stay as they were. Returns the check results.
    """
    from portrait.publish import quality
    from portrait.schemas import PUBLISH_CHECKS

    previous_day = previous_portrait_date(spark, cfg, day)
    previous = None if previous_day is None else _portrait_of(spark, cfg, previous_day)
    with _Stage(f"quality gate {day}"):
        checks = quality.gate_checks(portrait_rows, previous, previous_day, cfg.publish)
    checked_at = dt.datetime.now(dt.timezone.utc)
    rows = [check.as_row(day, checked_at) for check in checks]
    io.replace_partition(spark, cfg, PUBLISH_CHECKS, spark.createDataFrame(rows, PUBLISH_CHECKS.schema), day)
    failed = [check for check in checks if not check.passed]
    if failed:
        log.warning("quality gate %s: %d check(s) failed: %s", day, len(failed),
                    "; ".join(check.describe() for check in failed))
        if cfg.publish.enforce:
            raise quality.QualityGateFailed(day, failed)
    io.replace_partition(spark, cfg, USER_PORTRAIT, portrait_rows, day)
    run_changes(spark, cfg, day)
    return checks


def run_changes(spark: SparkSession, cfg: Config, day: dt.date) -> int:
    """Write the ``portrait_changes`` partition of ``day`` (against the latest earlier portrait date).

    The first portrait date has no earlier one, so its partition is empty. Returns the rows written.
    """
    from portrait.publish.changes import tag_changes
    from portrait.schemas import PORTRAIT_CHANGES

    previous_day = previous_portrait_date(spark, cfg, day)
    if previous_day is None:
        changes = spark.createDataFrame([], PORTRAIT_CHANGES.schema)
    else:
        changes = _portrait_of(spark, cfg, day).transform(
            tag_changes(_portrait_of(spark, cfg, previous_day), previous_day, day))
    io.replace_partition(spark, cfg, PORTRAIT_CHANGES, changes, day)
    return _partition_rows(spark, cfg, PORTRAIT_CHANGES, day)


@dataclass
class MaintenanceResult:
    """What ``portrait maintain`` did to one table."""

    table: str
    files_before: int
    files_after: int
    zorder_by: list[str]
    properties_set: dict[str, str]

    def render(self) -> str:
        order = f"Z-ordered by {', '.join(self.zorder_by)}" if self.zorder_by else "compacted"
        props = f"; set {', '.join(self.properties_set)}" if self.properties_set else ""
        return f"{self.table:<20} {order}: {self.files_before:,} → {self.files_after:,} files{props}"


def run_maintain(spark: SparkSession, cfg: Config, tables: list[str] | None = None) -> list[MaintenanceResult]:
    """OPTIMIZE (Z-ordered per ``maintenance.zorder_by``) and VACUUM (``privacy.vacuum_retention_hours``).

    ``tables`` are contract names; by default every contract table that exists. Missing table properties
    (owner, Change Data Feed) are added first. Data is unchanged; only files are rewritten and old ones removed.
    """
    from portrait.schemas import ALL_TABLES

    unknown = sorted((set(tables or []) | set(cfg.maintenance.zorder_by)) - set(ALL_TABLES))
    if unknown:
        raise ValueError(f"unknown table(s) {unknown} (in --table or maintenance.zorder_by); known: "
                         f"{', '.join(ALL_TABLES)}")
    if tables is None:
        tables = [name for name, c in ALL_TABLES.items() if io.table_exists(spark, io.table_ref(cfg, c))]
    results = []
    for name in tables:
        contract, zorder_by = ALL_TABLES[name], list(cfg.maintenance.zorder_by.get(name, []))
        with _Stage(f"maintain {name}"):
            before = io.table_file_count(spark, cfg, contract)
            properties_set = io.apply_table_properties(spark, cfg, contract)
            io.optimize_table(spark, cfg, contract, zorder_by)
            io.vacuum_table(spark, cfg, contract, cfg.privacy.vacuum_retention_hours)
            results.append(MaintenanceResult(name, before, io.table_file_count(spark, cfg, contract),
                                             zorder_by, properties_set))
    return results


def run_forget(spark: SparkSession, cfg: Config, ids: list[str], vacuum: bool = True,
               now: dt.datetime | None = None):
    """Erase persons from every table the project writes; returns the :class:`portrait.erasure.ErasureReport`.

    ``ids`` (user or device ids) are expanded with the identity graph to every id of the same persons. In
    order: (1) the pseudonymisation key is read (BI tables hold HMAC person keys; the audit row stores them);
    (2) registered model versions trained on feature dates where the persons had rows are tagged for
    retraining in MLflow — an unreachable server stops here, before anything is deleted; (3) every table
    whose contract has a personal column (``portrait.erasure``) gets one Delta DELETE of the persons' rows;
    (4) VACUUM with ``privacy.vacuum_retention_hours`` when ``vacuum``; (5) one ``erasure_requests`` row.
    Each step is idempotent: after a crash, re-running the same request finishes it.
    """
    import uuid

    from portrait import erasure, privacy
    from portrait.model import tracking
    from portrait.schemas import ALL_TABLES, ERASURE_REQUESTS, IDENTITY_GRAPH, IDENTITY_MERGE_LOG

    started = now or dt.datetime.now(dt.timezone.utc)
    ids = erasure.normalise_ids(ids)
    keys = privacy.pseudonym_keys()
    request_id = f"forget-{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    with _Stage("forget: stitched ids"):
        graph_ref = io.table_ref(cfg, IDENTITY_GRAPH)
        erased = set(ids)
        if io.table_exists(spark, graph_ref):
            stitched = erasure.stitched_ids(io.read_stored(spark, graph_ref), ids)
            # Bounded: the requested ids and the ids of their persons (identity.max_ids_per_person users each).
            erased |= {row["id"] for row in stitched.collect()}
        erased_ids = sorted(erased)
        person_keys = sorted({privacy.person_key_of(i, key) for i in erased_ids for key in keys})
    tables = [c for c in erasure.personal_tables(ALL_TABLES.values())
              if c.name != ERASURE_REQUESTS.name and hasattr(cfg.tables, c.name)]
    # The identity tables go last: a re-run after a crash must still find the stitched ids to expand.
    tables.sort(key=lambda c: c.name in (IDENTITY_GRAPH.name, IDENTITY_MERGE_LOG.name))
    with _Stage("forget: models to retrain"):
        features_ref = io.table_ref(cfg, USER_FEATURES)
        feature_dates: set[str] = set()
        if io.table_exists(spark, features_ref):
            dates = (io.read_stored(spark, features_ref).where(F.col("user_id").isin(*erased_ids))
                     .select("dt").distinct().collect())  # at most one row per feature date
            feature_dates = {row["dt"].isoformat() for row in dates}
        model_names = [target_config(cfg, t).model.name for t in cfg.model.targets]
        marked = tracking.mark_for_retraining(cfg, model_names, feature_dates, request_id) if feature_dates else []
    report = erasure.ErasureReport(
        request_id=request_id, ids_requested=len(ids), ids_erased=len(erased_ids),
        person_keys=sorted({privacy.person_key_of(i, keys[0]) for i in ids}),
        key_fingerprint=privacy.key_fingerprint(keys[0]), models_marked=marked,
        vacuum_retention_hours=cfg.privacy.vacuum_retention_hours,
    )
    with _Stage("forget: input rows per day"):
        removed = {c.name: _rows_per_day_where(spark, cfg, c, erasure.erasure_condition(c, erased_ids, person_keys))
                   for c in (CLICKSTREAM, ORDERS, REVIEWS)}
    for contract in tables:
        if not io.table_exists(spark, io.table_ref(cfg, contract)):
            report.missing_tables.append(contract.name)
            continue
        with _Stage(f"forget: {contract.name}"):
            condition = erasure.erasure_condition(contract, erased_ids, person_keys)
            report.rows_deleted[contract.name] = io.delete_rows(spark, cfg, contract, condition)
    with _Stage("forget: rollup input counts"):
        _record_erased_inputs(spark, cfg, removed)
    if vacuum:
        for contract in tables:
            with _Stage(f"forget: vacuum {contract.name}"):
                if io.vacuum_with_retention(spark, cfg, contract, cfg.privacy.vacuum_retention_hours):
                    report.vacuumed.append(contract.name)
    finished = dt.datetime.now(dt.timezone.utc)
    audit_row = (request_id, report.person_keys, report.key_fingerprint, report.ids_requested, report.ids_erased,
                 dict(report.rows_deleted), report.models_marked, bool(report.vacuumed),
                 report.vacuum_retention_hours, started, finished)
    io.append_rows(spark, cfg, ERASURE_REQUESTS, spark.createDataFrame([audit_row], ERASURE_REQUESTS.schema))
    log.info("forget %s: %d row(s) deleted in %d table(s)", request_id, report.total_rows, len(report.rows_deleted))
    return report


# --------------------------------------------------------------------------- BI tables, audiences, daily report

class AudienceError(ValueError):
    """An audience cannot be exported: no portrait of the date, an unknown tag, or too few persons."""


def _segment_noise_seed(cfg: Config, day: dt.date) -> int:
    # A different seed per date: the same noise on every date would cancel out in day-over-day differences.
    return cfg.bi.noise_seed + day.toordinal()


def run_bi_tables(spark: SparkSession, cfg: Config, day: dt.date) -> dict[str, int]:
    """Write the BI tables for portrait date ``day``: ``portrait_latest`` and the ``segment_daily`` partition.

    ``portrait_latest`` is MERGEd with the persons of ``day`` when ``day`` is newer than every row in it (the
    daily run moving forward): only one portrait partition is read and only those persons can change. When
    the table does not exist yet, or ``day`` is not newer (a re-run or a backfill of an earlier date), it is
    rebuilt from the whole ``user_portrait``, which is right whatever was published before. Needs
    ``PORTRAIT_PSEUDONYM_KEY``. Returns the rows written per table.
    """
    from portrait.privacy import pseudonym_key
    from portrait.publish.bi import newest_per_user, pseudonymised, segment_daily, with_feature_values
    from portrait.schemas import PORTRAIT_LATEST, SEGMENT_DAILY

    key = pseudonym_key()
    today = _portrait_of(spark, cfg, day)
    if today.isEmpty():
        raise io.TableNotFoundError(f"user_portrait has no rows for {day}: run `portrait daily --date {day}` "
                                    "(or `portrait score`) before the BI tables")
    newest = None
    if io.table_exists(spark, io.table_ref(cfg, PORTRAIT_LATEST)):
        newest = io.read_table(spark, cfg, PORTRAIT_LATEST).agg(F.max("dt")).first()[0]
    if newest is not None and day > newest:
        io.upsert_rows(spark, cfg, PORTRAIT_LATEST, today.transform(pseudonymised(key)))
    else:
        log.info("portrait_latest: rebuilt from all of user_portrait (newest date in it: %s, run date %s)",
                 newest, day)
        history = io.read_table(spark, cfg, USER_PORTRAIT).transform(newest_per_user)
        io.overwrite_table(spark, cfg, PORTRAIT_LATEST, history.transform(pseudonymised(key)))

    feature_days = [row[0] for row in today.select("feature_dt").distinct().collect()]  # one date in practice
    features = io.read_table(spark, cfg, USER_FEATURES).where(
        F.col("dt").isin(*[F.lit(d).cast("date") for d in feature_days]))
    segments = today.transform(with_feature_values(features)).transform(
        segment_daily(cfg.privacy.min_group_size, cfg.privacy.noise_epsilon, _segment_noise_seed(cfg, day)))
    io.replace_partition(spark, cfg, SEGMENT_DAILY, segments, day)
    return {PORTRAIT_LATEST.name: io.read_table(spark, cfg, PORTRAIT_LATEST).count(),
            SEGMENT_DAILY.name: _partition_rows(spark, cfg, SEGMENT_DAILY, day)}


def run_audience(spark: SparkSession, cfg: Config, day: dt.date, tags: list[str], min_score: float,
                 output: str, file_format: str = "csv") -> int:
    """Export the persons of ``day`` that carry every tag of ``tags`` and score at least ``min_score``.

    One file at ``output`` (csv or parquet) with ``person_key, score, decile, tags``, best score first; never a
    raw id. Raises :class:`AudienceError`, writing nothing, when the date has no portrait, a tag is on nobody
    that day (a typo or a tag not live), or the audience has fewer than ``privacy.min_group_size`` persons.
    Returns the number of persons exported.
    """
    from portrait.privacy import pseudonym_key
    from portrait.publish.bi import audience, missing_tags, pseudonymised

    selection = audience(tags, min_score)  # checks the arguments before Spark does any work
    key = pseudonym_key()
    portrait = _portrait_of(spark, cfg, day)
    if portrait.isEmpty():
        raise AudienceError(f"user_portrait has no rows for {day}; choose a published date (--date)")
    unknown = missing_tags(tags, portrait)
    if unknown:
        live = sorted(t.code for t in cfg.tags if t.status == "live")
        raise AudienceError(f"tag(s) {', '.join(unknown)} are on no person on {day}. Live tags of the registry: "
                            f"{', '.join(live) or 'none'}")
    persons_frame = portrait.transform(pseudonymised(key)).transform(selection).cache()
    try:
        persons = persons_frame.count()
        if persons < cfg.privacy.min_group_size:
            raise AudienceError(f"the audience has {persons} person(s), fewer than privacy.min_group_size="
                                f"{cfg.privacy.min_group_size}: not exported. Loosen --min-score or the tags.")
        io.write_single_file(persons_frame, output, file_format)
    finally:
        persons_frame.unpersist()
    return persons


def reports_dir(cfg: Config):
    """Where the daily HTML reports go: ``bi.reports_path``, else ``<lakehouse.path>/reports``."""
    from pathlib import Path

    if cfg.bi.reports_path is not None:
        return Path(cfg.bi.reports_path)
    if cfg.lakehouse.path is None:
        raise ValueError("set bi.reports_path: the lakehouse is a metastore schema, so there is no folder "
                         "beside the tables to write the daily report to")
    return Path(cfg.lakehouse.path) / "reports"


def run_daily_report(spark: SparkSession, cfg: Config, day: dt.date):
    """Write ``<reports>/portrait_<day>.html`` (segment sizes, score distribution, top interests, tag changes)
    and log it to MLflow. Reads ``segment_daily`` of ``day``, so :func:`run_bi_tables` runs first. Returns
    the report's path."""
    from portrait.model import tracking
    from portrait.publish.report import (
        REPORT_SEGMENT_KINDS,
        ReportData,
        render_report,
        score_histogram,
        tag_change_counts,
        top_categories,
    )
    from portrait.schemas import PORTRAIT_CHANGES, SEGMENT_DAILY

    minimum = cfg.privacy.min_group_size
    portrait = _portrait_of(spark, cfg, day).cache()  # read by four small aggregations
    try:
        headline = portrait.agg(F.count(F.lit(1)).alias("persons"), F.avg("purchase_propensity").alias("avg"),
                                F.max("model_name").alias("model"), F.max("model_run_id").alias("run")).first()
        segments: dict[str, list[tuple[str, int, float]]] = {kind: [] for kind in REPORT_SEGMENT_KINDS}
        segment_rows = (io.read_table(spark, cfg, SEGMENT_DAILY)
                        .where((F.col("dt") == F.lit(day).cast("date"))
                               & F.col("segment_kind").isin(*REPORT_SEGMENT_KINDS))
                        .orderBy(F.col("users").desc(), "segment").collect())  # a few rows per segment kind
        for row in segment_rows:
            segments[row["segment_kind"]].append((row["segment"], int(row["users"]), float(row["avg_propensity"])))
        changes = None
        if io.table_exists(spark, io.table_ref(cfg, PORTRAIT_CHANGES)):
            changes = tag_change_counts(io.read_table(spark, cfg, PORTRAIT_CHANGES)
                                        .where(F.col("dt") == F.lit(day).cast("date")), minimum)
        data = ReportData(
            day=day, persons=int(headline["persons"]), avg_propensity=float(headline["avg"] or 0.0),
            model=f"{headline['model']} (MLflow run {headline['run']})", segments=segments,
            score_histogram=score_histogram(portrait), top_categories=top_categories(portrait, minimum),
            tag_changes=changes, min_group_size=minimum,
        )
    finally:
        portrait.unpersist()
    path = io.write_text_file(reports_dir(cfg) / f"portrait_{day.isoformat()}.html", render_report(data))
    tracking.log_report(cfg, day, path, {"persons": float(data.persons), "avg_propensity": data.avg_propensity})
    log.info("daily report written to %s", path)
    return path
