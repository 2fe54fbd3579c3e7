"""The train stage: point-in-time training sets, fit, evaluation against baselines, MLflow, promotion.

Each target (``model.targets``: purchase, churn, purchase_<N>d) has its own label, experiment and registered model
(:func:`target_config`); the champion alias moves only past the promotion gate.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame

from portrait import audit
from portrait.config import Config
from portrait.config.model import ModelConfig, horizon_of
from portrait.features.population import with_customers
from portrait.lakehouse import Lakehouse
from portrait.model import tracking
from portrait.model.evaluation import evaluate_model
from portrait.model.explain import Explanation, explain_model
from portrait.model.gate import NothingToLearnError, check_learnable, lift_refusal, set_size
from portrait.model.pipeline import WEIGHT, build_pipeline
from portrait.model.promotion import PromotionDecision, promote
from portrait.model.scoring import score
from portrait.model.training import (
    activity_days,
    class_weights,
    label_churn,
    label_purchases,
    snapshot_dates,
    split_by_date,
    split_by_user_hash,
)
from portrait.model.tuning import tune
from portrait.schemas import CLICKSTREAM, ORDERS, USER_FEATURES
from portrait.stages import features
from portrait.stages import value as customer_value
from portrait.stages.base import input_versions, timed
from portrait.stages.rollups import stitched

log = logging.getLogger(__name__)

JOB = "train"
PURCHASE_TARGET = "purchase"
CHURN_TARGET = "churn"


class NotEnoughHistoryError(NothingToLearnError):
    """The snapshot dates of a training run have no feature rows: the data does not reach back far enough."""


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
    refusal: str | None = None  # why the model was logged but not registered (no lift over its baselines)


def target_config(cfg: Config, target: str) -> Config:
    """The configuration of one training target: ``purchase`` is ``cfg`` itself; ``churn`` trains
    ``<model.name>_churn`` in experiment ``<mlflow.experiment>_churn`` with ``model.churn_horizon_days``;
    ``purchase_<N>d`` trains ``<model.name>_purchase_<N>d`` likewise, with an N-day purchase label."""
    if target == PURCHASE_TARGET:
        return cfg
    horizon = cfg.model.churn_horizon_days if target == CHURN_TARGET else horizon_of(target)
    if horizon is None:
        raise ValueError(f"unknown training target {target!r}; known: purchase, churn, purchase_<N>d")
    model = cfg.model.model_copy(update={"name": f"{cfg.model.name}_{target}", "label_horizon_days": horizon,
                                         "targets": [PURCHASE_TARGET]})
    mlflow_settings = cfg.mlflow.model_copy(update={"experiment": f"{cfg.mlflow.experiment}_{target}"})
    return cfg.model_copy(update={"model": model, "mlflow": mlflow_settings})


def training_sets(lake: Lakehouse, run_date: dt.date,
                  target: str = PURCHASE_TARGET) -> tuple[list[dt.date], DataFrame, DataFrame]:
    """Snapshot dates and the labelled train and test rows of a training run as of ``run_date``.

    Computes missing feature and customer value partitions. The rows are the population of
    :func:`portrait.features.population.with_customers` on each snapshot date. The label is ``target``'s
    (``purchase`` and ``purchase_<N>d``: a paid order in the horizon; ``churn``: no activity in it; ``lake`` carries the
    :func:`target_config` of the target). The split is time-based (newest snapshot tests) or, with
    ``model.split: user_hash`` or a single snapshot, by a hash of ``user_id``.
    """
    settings = lake.cfg.model
    dates = snapshot_dates(run_date, settings.label_horizon_days, settings.training_snapshots,
                           settings.snapshot_step_days)
    features.ensure(lake, dates, refresh=False)
    # The population the portrait scores: persons active in the lookback and every customer, each with the
    # purchase-history columns as of the snapshot (customer_value sees only orders to its date).
    rows = lake.read_days(USER_FEATURES, dates).transform(
        with_customers(customer_value.ensure(lake, dates), lake.cfg.features))
    if target != CHURN_TARGET:
        label = label_purchases(stitched(lake, ORDERS), settings.label_horizon_days)
    else:
        label = label_churn(activity_days(stitched(lake, CLICKSTREAM), stitched(lake, ORDERS)),
                            settings.label_horizon_days)
    labelled = rows.transform(label)
    if settings.split == "user_hash" or len(dates) == 1:
        train, test = split_by_user_hash(labelled, settings.test_fraction, settings.seed)
    else:
        train, test = split_by_date(labelled, dates[-1])
    return dates, train, test


def _check_learnable(train: DataFrame, test: DataFrame, target: str, dates: list[dt.date], run_date: dt.date,
                     settings: ModelConfig) -> int:
    """The training rows, once both sets are known to hold enough to learn from (portrait/model/gate.py)."""
    sizes = {"training": set_size(train), "test": set_size(test)}
    try:
        for side, size in sizes.items():
            if size.rows == 0:
                raise NotEnoughHistoryError(
                    f"target {target!r} has too little history to learn from: no {side} rows on the snapshot "
                    f"dates {', '.join(map(str, dates))} "
                    f"(label horizon {settings.label_horizon_days} days before {run_date}); the input tables need "
                    f"events before {dates[0]}, or lower model.training_snapshots / model.snapshot_step_days")
        check_learnable(target, sizes["training"], sizes["test"], settings)
    except NothingToLearnError:
        train.unpersist()
        test.unpersist()
        raise
    return sizes["training"].rows


def _fit(cfg: Config, train: DataFrame) -> tuple[PipelineModel, dict[str, float], dict[str, float]]:
    """The fitted pipeline, the tuned parameters and the tuning metrics (both empty without tuning)."""
    settings = cfg.model
    with timed("fit"):
        if not settings.tuning.enabled:
            return build_pipeline(settings).fit(train), {}, {}
        tuned = tune(settings, train)
        log.info("tuning: best %s of %d candidates (validation AUC %.4f)", tuned.best,
                 len(tuned.candidates), tuned.validation_auc_roc)
        return tuned.model, tuned.params(), {"tuning_validation_auc_roc": tuned.validation_auc_roc}


def train(lake: Lakehouse, run_date: dt.date, target: str = PURCHASE_TARGET) -> TrainingResult:
    """Fit ``target``'s model on point-in-time snapshots before ``run_date`` and log it to MLflow.

    Snapshots are feature dates whose label window has passed by ``run_date``; the newest is held out
    for evaluation (a time-based split), the others train. The run logs the evaluation against the random
    and RFM baselines (metrics, tables, plots), the explanation (top features, what reason codes need) and,
    when the model is registered, the promotion decision against the current champion on the same test rows.
    Sets with too little to learn from raise :class:`NothingToLearnError` before the fit; a model without lift
    over its baselines is logged with ``refusal`` set and never registered (portrait/model/gate.py).
    """
    cfg = target_config(lake.cfg, target)
    lake = lake.with_config(cfg)
    settings = cfg.model
    dates, train_rows, test = training_sets(lake, run_date, target)
    test, train_rows = test.cache(), train_rows.cache()  # test: evaluated, logged and scored by the champion
    train_count = _check_learnable(train_rows, test, target, dates, run_date, settings)
    labelled_train = train_rows  # the cached rows; weights below are a column over them
    if settings.class_weights:
        train_rows = train_rows.transform(class_weights(WEIGHT))
    model, tuning_params, tuning_metrics = _fit(cfg, train_rows)
    with timed("evaluate"):
        report = evaluate_model(test.transform(score(model)), seed=settings.seed,
                                horizon_days=settings.label_horizon_days, positive_buys=target != CHURN_TARGET)
        metrics = {**report.metrics, **tuning_metrics}
    with timed("explain"):
        explanation = explain_model(model, train_rows, settings.vocabulary_tokens)
    labelled_train.unpersist()
    refusal = lift_refusal(metrics, settings.baseline_margin)
    versions = {f"input_version_{t.name}": lake.version(t) for t in (CLICKSTREAM, ORDERS)}
    params = {"run_date": run_date.isoformat(), "snapshot_dates": ",".join(d.isoformat() for d in dates),
              "train_rows": train_count, "test_rows": int(metrics["rows"]), **versions,
              **settings.model_dump(), **tuning_params, "target": target}
    with timed("log model to MLflow"):
        logged = tracking.log_training_run(cfg, model, test, params, metrics, run_name=f"train-{target}-{run_date}",
                                           evaluation=report, explanation=explanation, refusal=refusal)
    decision = None
    if refusal is not None:
        log.warning("target %r: the model is not registered: %s (MLflow run %s)", target, refusal, logged.run_id)
    elif logged.registered_version is not None:
        with timed("promotion"):
            decision = promote(cfg, logged, test, metrics["auc_roc"])
        log.info("model version %s: %s (challenger AUC %.4f, champion AUC %s, margin %.4f)",
                 decision.challenger_version, decision.outcome, decision.challenger_auc,
                 "none" if decision.champion_auc is None else f"{decision.champion_auc:.4f}", decision.margin)
    test.unpersist()
    return TrainingResult(model, logged.run_id, logged.model_uri, logged.registered_version, metrics,
                          train_count, int(metrics["rows"]), explanation, decision, refusal)


class Trained(dict):
    """The training results of a run by target (a dict), and ``skipped``: why a target was not trained."""

    def __init__(self) -> None:
        super().__init__()
        self.skipped: dict[str, str] = {}


def train_targets(lake: Lakehouse, day: dt.date, targets: list[str], required: tuple[str, ...] = ()) -> Trained:
    """Train each of ``targets`` (purchase first); a target with too little to learn from is skipped with a
    warning that gives the numbers (churn looks 30 days ahead; a young shop has few buyers): nothing is
    registered for it, and its portrait columns stay empty unless an earlier champion scores them. For a
    target of ``required`` the :class:`NothingToLearnError` is raised instead."""
    trained = Trained()
    for target in targets:
        with timed("train" if target == PURCHASE_TARGET else f"train {target}"):
            try:
                trained[target] = train(lake, day, target)
            except NothingToLearnError as exc:
                if target in required:
                    raise
                trained.skipped[target] = str(exc)
                log.warning("%s", exc)
    return trained


def targets_to_train(cfg: Config) -> list[str]:
    """The targets a scoring run trains first (``model.daily_training``): ``always`` every target (also when
    models are not registered: there is no champion to score with); ``if_no_champion`` those without a
    champion or whose champion an erasure marked for retraining; ``never`` none."""
    if cfg.model.daily_training == "always" or not cfg.mlflow.register_model:
        return list(cfg.model.targets)
    if cfg.model.daily_training == "never":
        return []
    needed = []
    for target in cfg.model.targets:
        target_cfg = target_config(cfg, target)
        champion = tracking.champion_version(target_cfg)
        if champion is None or str(champion.version) in tracking.versions_to_retrain(target_cfg):
            needed.append(target)
    return needed


def run(lake: Lakehouse, day: dt.date, git_commit: str | None = None) -> Trained:
    """The train task (the weekly job): every target of ``model.targets``, recorded in ``job_runs`` as job
    ``train`` with the purchase model's MLflow run. The job fails when the purchase target has too little to
    learn from: a training job that cannot train says so where the scheduler shows it."""
    with audit.recorded(lake, JOB, day, git_commit) as run:
        run.input_versions = input_versions(lake)
        trained = train_targets(lake, day, list(lake.cfg.model.targets), required=(PURCHASE_TARGET,))
        purchase = trained[PURCHASE_TARGET]
        run.mlflow_run_id = purchase.run_id
        run.rows_in = purchase.train_rows + purchase.test_rows
    return trained
