"""The jobs' work: read tables, run the pure transformations, write tables, log models.

Each ``run_*`` function is one stage that reads the tables above it and writes its own, so any stage can
be re-run for any date on its own. Job entry points (:mod:`portrait.cli`, ``jobs/*.py``) only parse
arguments, load the configuration and call these.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from portrait import io
from portrait.config import Config
from portrait.features.user_features import build_user_features
from portrait.model.evaluation import evaluate_model
from portrait.model.explain import Explanation, explain_model, reason_codes
from portrait.model.pipeline import WEIGHT, build_pipeline
from portrait.model.scoring import score
from portrait.model.training import (
    class_weights,
    label_churn,
    label_purchases,
    snapshot_dates,
    split_by_date,
    split_by_user_hash,
)
from portrait.publish.assemble import assemble_portrait, cut_points
from portrait.schemas import CLICKSTREAM, INPUT_TABLES, ITEMS, ORDERS, REVIEWS, USER_FEATURES, USER_PORTRAIT

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


def run_features(spark: SparkSession, cfg: Config, day: dt.date) -> int:
    """Compute and write the ``user_features`` partition of ``day``; returns its row count.

    With an identity graph, ``user_id`` is the stitched person id (anonymous events of a device that
    logged in count for its person).
    """
    features = build_user_features(
        day,
        cfg.features,
        clickstream=_stitched(spark, cfg, CLICKSTREAM),
        orders=_stitched(spark, cfg, ORDERS),
        items=_optional(spark, cfg, ITEMS),
        reviews=_optional(spark, cfg, REVIEWS),
    )
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


def ensure_features(spark: SparkSession, cfg: Config, days: list[dt.date]) -> None:
    """Compute the feature partitions of ``days`` that do not exist yet (earlier ones are reused)."""
    present = _feature_dates_present(spark, cfg, days)
    for day in days:
        if day not in present:
            with _Stage(f"features {day}"):
                run_features(spark, cfg, day)


PURCHASE_TARGET = "purchase"


def target_config(cfg: Config, target: str) -> Config:
    """The configuration of one training target: ``purchase`` is ``cfg`` itself; ``churn`` trains
    ``<model.name>_churn`` in experiment ``<mlflow.experiment>_churn`` with ``model.churn_horizon_days``."""
    if target == PURCHASE_TARGET:
        return cfg
    if target != "churn":
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
    ensure_features(spark, cfg, dates)
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
    if settings.class_weights:
        train = train.transform(class_weights(WEIGHT))
    train = train.cache()
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
    train.unpersist()
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


def run_portrait(spark: SparkSession, cfg: Config, day: dt.date, model: PipelineModel, model_run_id: str,
                 explanation: Explanation | None = None) -> int:
    """Score the users of ``day`` and write the ``user_portrait`` partition of ``day``; returns its rows.

    With the model's ``explanation`` every row gets its reason codes; without, an empty list.
    """
    ensure_features(spark, cfg, [day])
    features = io.read_table(spark, cfg, USER_FEATURES).where(F.col("dt") == F.lit(day).cast("date"))
    portrait_rows, scored = _portrait_frame(cfg, day, features, model, model_run_id, explanation)
    io.replace_partition(spark, cfg, USER_PORTRAIT, portrait_rows, day)
    scored.unpersist()
    return _partition_rows(spark, cfg, USER_PORTRAIT, day)


def _portrait_frame(cfg: Config, day: dt.date, features: DataFrame, model: PipelineModel, model_run_id: str,
                    explanation: Explanation | None) -> tuple[DataFrame, DataFrame]:
    """Portrait rows of ``day`` from its feature rows, and the cached scored rows (unpersist after use)."""
    scored = features.transform(score(model))
    if explanation is not None:
        scored = scored.transform(reason_codes(model, explanation))
    scored = scored.cache()  # read twice: cut points, then the assembly
    return scored.transform(assemble_portrait(day, cut_points(scored), cfg.model.name, model_run_id)), scored


def run_daily(spark: SparkSession, cfg: Config, day: dt.date, generate_if_missing: bool = True) -> RunSummary:
    """Features → training → scoring → portrait for ``day``; generates input data first when allowed and
    the input tables do not exist."""
    started = time.monotonic()
    summary = RunSummary(run_date=day)
    if not inputs_exist(spark, cfg):
        if not generate_if_missing:
            io.read_table(spark, cfg, CLICKSTREAM)  # raises TableNotFoundError naming the table
            io.read_table(spark, cfg, ORDERS)
        log.info("input tables missing: generating synthetic data up to %s", day)
        with _Stage("generate"):
            run_generate(spark, cfg, end_date=day)
        summary.generated = True
    with _Stage(f"features {day}"):
        run_features(spark, cfg, day)
    with _Stage("train"):
        training = run_train(spark, cfg, day)
    for target in cfg.model.targets[1:]:
        with _Stage(f"train {target}"):
            other = run_train(spark, cfg, day, target)
        summary.metrics.update({f"{target}_{k}": v for k, v in other.metrics.items() if k.startswith("auc_roc")})
    # The portrait is scored with the champion: the new model unless it failed the promotion gate.
    model, run_id, explanation = training.model, training.run_id, training.explanation
    scored_with = training.model_uri
    if training.promotion is not None:
        from portrait.model import tracking

        scored_with = champion_uri = tracking.champion_model_uri(cfg)
        if not training.promotion.promoted:  # the champion is an earlier version: score with it
            model, run_id = tracking.load_model(champion_uri), tracking.run_id_of(champion_uri)
            explanation = tracking.load_explanation(champion_uri)
    with _Stage(f"portrait {day}"):
        run_portrait(spark, cfg, day, model, run_id, explanation)
    for contract in (*INPUT_TABLES, USER_FEATURES, USER_PORTRAIT):
        ref = io.table_ref(cfg, contract)
        if io.table_exists(spark, ref):
            summary.table_rows[contract.name] = io.read_table(spark, cfg, contract).count()
            summary.table_locations[contract.name] = str(ref)
    summary.metrics = {**training.metrics, **summary.metrics}
    summary.mlflow_run_id = training.run_id
    summary.model_uri = training.model_uri
    summary.scored_with = scored_with
    if training.promotion is not None:
        summary.promotion = f"version {training.promotion.challenger_version} {training.promotion.outcome}"
    summary.seconds = time.monotonic() - started
    return summary


class BackfillError(RuntimeError):
    """A date of a backfill failed; earlier dates are done, later ones were not attempted."""


class ReplayError(LookupError):
    """A job run cannot be replayed (unknown run id, not a succeeded daily run)."""


def _current_input_versions(spark: SparkSession, cfg: Config) -> dict[str, int]:
    from portrait.schemas import IDENTITY_GRAPH

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
        summary = run_daily(spark, cfg, day, generate_if_missing=generate_if_missing)
        if summary.generated:
            run.input_versions = _current_input_versions(spark, cfg)
        run.rows_in = _partition_rows(spark, cfg, USER_FEATURES, day)
        run.rows_out = _partition_rows(spark, cfg, USER_PORTRAIT, day)
        run.output_versions = {c.name: io.table_version(spark, cfg, c) for c in (USER_FEATURES, USER_PORTRAIT)}
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


def replay_portrait(spark: SparkSession, cfg: Config, job_run_id: str) -> DataFrame:
    """Recompute the portrait of a past daily run from the table versions and model it recorded.

    Features are recomputed from the input tables at their recorded versions and must equal the
    ``user_features`` it published (checked); the portrait is then scored from those features with the
    recorded model run, exactly as the run did.
    """
    from portrait.ingest.identity import stitch_person_id
    from portrait.model import tracking
    from portrait.schemas import IDENTITY_GRAPH, JOB_RUNS

    runs = io.read_table(spark, cfg, JOB_RUNS).where(
        (F.col("run_id") == job_run_id) & (F.col("job") == "daily") & (F.col("status") == "succeeded"))
    run = runs.first()
    if run is None:
        raise ReplayError(f"no succeeded daily run with run_id {job_run_id!r} in job_runs")
    day, versions = run["run_date"], dict(run["input_versions"])
    clickstream, orders = (_input_frame(spark, cfg, c, versions) for c in (CLICKSTREAM, ORDERS))
    identity = _input_frame(spark, cfg, IDENTITY_GRAPH, versions)
    if identity is not None and cfg.identity.enabled:
        clickstream, orders = (f.transform(stitch_person_id(identity)) for f in (clickstream, orders))
    recomputed = build_user_features(day, cfg.features, clickstream=clickstream, orders=orders,
                                     items=_input_frame(spark, cfg, ITEMS, versions),
                                     reviews=_input_frame(spark, cfg, REVIEWS, versions))
    published = io.read_table(spark, cfg, USER_FEATURES, version=run["output_versions"][USER_FEATURES.name]).where(
        F.col("dt") == F.lit(day).cast("date"))
    if not (recomputed.exceptAll(published).isEmpty() and published.exceptAll(recomputed).isEmpty()):
        raise ReplayError(f"features of {day} recomputed from the recorded input versions differ from the "
                          "published ones: an input table was changed in place or the feature code changed")
    model_uri = f"runs:/{run['mlflow_run_id']}/{tracking.MODEL_ARTIFACT}"
    model, explanation = tracking.load_model(model_uri), tracking.load_explanation(model_uri)
    portrait, _ = _portrait_frame(cfg, day, published, model, run["mlflow_run_id"], explanation)
    return portrait


def replay_matches(spark: SparkSession, cfg: Config, job_run_id: str) -> tuple[int, int]:
    """Replay a run and compare with its published portrait: (rows that differ either way, rows)."""
    from portrait.schemas import JOB_RUNS

    run = io.read_table(spark, cfg, JOB_RUNS).where(F.col("run_id") == job_run_id).first()
    replayed = replay_portrait(spark, cfg, job_run_id)
    published = io.read_table(spark, cfg, USER_PORTRAIT, version=run["output_versions"][USER_PORTRAIT.name]).where(
        F.col("dt") == F.lit(run["run_date"]).cast("date"))
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
