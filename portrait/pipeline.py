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

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from portrait import io
from portrait.config import Config
from portrait.features.user_features import build_user_features
from portrait.model.pipeline import build_pipeline
from portrait.model.scoring import evaluate, score
from portrait.model.training import label_purchases, snapshot_dates, split_by_date
from portrait.publish.assemble import assemble_portrait, cut_points
from portrait.schemas import CLICKSTREAM, INPUT_TABLES, ITEMS, ORDERS, REVIEWS, USER_FEATURES, USER_PORTRAIT

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


@dataclass
class RunSummary:
    """What a daily run did, printed at its end."""

    run_date: dt.date
    table_rows: dict[str, int] = field(default_factory=dict)
    table_locations: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    mlflow_run_id: str | None = None
    model_uri: str | None = None
    generated: bool = False
    seconds: float = 0.0

    def render(self) -> str:
        lines = [f"portrait daily run for {self.run_date} finished in {self.seconds:.1f} s"]
        if self.generated:
            lines.append("  input tables were missing: generated synthetic data")
        lines.append("  tables (rows, location):")
        for name, rows in self.table_rows.items():
            lines.append(f"    {name:<16} {rows:>10,}  {self.table_locations.get(name, '')}")
        if self.metrics:
            lines.append("  model on the held-out snapshot: " + ", ".join(
                f"{k}={v:.4f}" for k, v in self.metrics.items() if k.startswith(("auc", "log_loss", "base"))
            ))
        if self.mlflow_run_id:
            lines.append(f"  MLflow run id: {self.mlflow_run_id}  model: {self.model_uri}")
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


def run_features(spark: SparkSession, cfg: Config, day: dt.date) -> int:
    """Compute and write the ``user_features`` partition of ``day``; returns its row count."""
    features = build_user_features(
        day,
        cfg.features,
        clickstream=io.read_table(spark, cfg, CLICKSTREAM),
        orders=io.read_table(spark, cfg, ORDERS),
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


def run_train(spark: SparkSession, cfg: Config, run_date: dt.date) -> TrainingResult:
    """Fit the propensity model on point-in-time snapshots before ``run_date`` and log it to MLflow.

    Snapshots are feature dates whose label window has passed by ``run_date``; the newest is held out
    for evaluation (a time-based split), the others train.
    """
    from portrait.model import tracking

    settings = cfg.model
    dates = snapshot_dates(run_date, settings.label_horizon_days, settings.training_snapshots,
                           settings.snapshot_step_days)
    ensure_features(spark, cfg, dates)
    features = io.read_table(spark, cfg, USER_FEATURES).where(
        F.col("dt").isin(*[F.lit(d).cast("date") for d in dates])
    )
    labelled = features.transform(label_purchases(io.read_table(spark, cfg, ORDERS),
                                                  settings.label_horizon_days))
    train, test = split_by_date(labelled, dates[-1]) if len(dates) > 1 else labelled.randomSplit(
        [0.8, 0.2], seed=settings.seed)
    train = train.cache()
    with _Stage("fit"):
        model = build_pipeline(settings).fit(train)
    with _Stage("evaluate"):
        metrics = evaluate(test.transform(score(model)))
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
    }
    with _Stage("log model to MLflow"):
        logged = tracking.log_training_run(cfg, model, test, params, metrics, run_name=f"train-{run_date}")
    return TrainingResult(model, logged.run_id, logged.model_uri, logged.registered_version, metrics,
                          train_rows, int(metrics["rows"]))


def run_portrait(spark: SparkSession, cfg: Config, day: dt.date, model: PipelineModel, model_run_id: str) -> int:
    """Score the users of ``day`` and write the ``user_portrait`` partition of ``day``; returns its rows."""
    ensure_features(spark, cfg, [day])
    features = io.read_table(spark, cfg, USER_FEATURES).where(F.col("dt") == F.lit(day).cast("date"))
    scored = features.transform(score(model)).cache()
    portrait_rows = scored.transform(assemble_portrait(day, cut_points(scored), cfg.model.name, model_run_id))
    io.replace_partition(spark, cfg, USER_PORTRAIT, portrait_rows, day)
    scored.unpersist()
    return _partition_rows(spark, cfg, USER_PORTRAIT, day)


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
    with _Stage(f"portrait {day}"):
        run_portrait(spark, cfg, day, training.model, training.run_id)
    for contract in (*INPUT_TABLES, USER_FEATURES, USER_PORTRAIT):
        ref = io.table_ref(cfg, contract)
        if io.table_exists(spark, ref):
            summary.table_rows[contract.name] = io.read_table(spark, cfg, contract).count()
            summary.table_locations[contract.name] = str(ref)
    summary.metrics = training.metrics
    summary.mlflow_run_id = training.run_id
    summary.model_uri = training.model_uri
    summary.seconds = time.monotonic() - started
    return summary
