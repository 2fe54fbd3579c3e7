"""The score task: the champion scores the date's features, the portrait is published, then the BI tables.

Models come from the MLflow registry (``models:/<name>@champion``); a target without a champion is trained
first when ``model.daily_training`` allows (a fresh workspace's first run), so the task never depends on the
weekly training having run once.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from portrait import audit
from portrait.config import Config
from portrait.config.model import horizon_of
from portrait.features.dates import Transformation
from portrait.features.population import with_customers
from portrait.lakehouse import Lakehouse
from portrait.model import tracking
from portrait.model.explain import Explanation, reason_codes
from portrait.model.scoring import SCORE, score
from portrait.privacy import pseudonym_key
from portrait.publish.assemble import (
    CHURN_REASON_CODES,
    CHURN_SCORE,
    HORIZON_PROPENSITIES,
    UNSCORED_COLUMNS,
    PortraitLineage,
    assemble_portrait,
    cut_points,
    with_user_attributes,
)
from portrait.schemas import CUSTOMER_VALUE, USER_DAILY_ACTIVITY, USER_FEATURES, USER_PORTRAIT, USERS
from portrait.stages import bi, features
from portrait.stages import value as customer_value
from portrait.stages.base import input_versions, timed
from portrait.stages.publish import check_tag_registry, publish_portrait
from portrait.stages.train import (
    CHURN_TARGET,
    PURCHASE_TARGET,
    Trained,
    TrainingResult,
    target_config,
    targets_to_train,
    train_targets,
)

log = logging.getLogger(__name__)

JOB = "score"
# The tables a scoring run writes and records: replay reads its features and rollups at these versions.
OUTPUT_TABLES = (USER_DAILY_ACTIVITY, USER_FEATURES, CUSTOMER_VALUE, USER_PORTRAIT)


@dataclass(frozen=True)
class Scorer:
    """A model the portrait is scored with, and what the rows record about it."""

    model: PipelineModel
    run_id: str
    version: str | None = None
    explanation: Explanation | None = None
    uri: str | None = None


@dataclass
class ScoreResult:
    """What a score task did."""

    scorer: Scorer | None  # None: no purchase model has learnt enough yet, the scores are null
    portrait_rows: int
    feature_rows: int
    bi_rows: dict[str, int]
    report: str
    input_versions: dict[str, int]  # what the portrait rows name
    trained: Trained = field(default_factory=Trained)


def load_scorer(model_uri: str) -> Scorer:
    """A logged model (``runs:/…`` or ``models:/…``) with its run, registry version and explanation."""
    version = tracking.registered_version_of(model_uri)
    # An alias is resolved once: a promotion running meanwhile cannot mix two versions in one portrait.
    pinned = model_uri if version is None else f"models:/{tracking.model_name_of(model_uri)}/{version}"
    return Scorer(tracking.load_model(pinned), tracking.run_id_of(pinned), version,
                  tracking.load_explanation(pinned), model_uri)


def scorer_after_training(cfg: Config, trained: TrainingResult | None) -> Scorer:
    """The model to score with for ``cfg``'s target: the one just trained unless the promotion gate kept an
    earlier champion or it learnt nothing (then never published); without training, the champion
    (:class:`NoModelError` when there is none)."""
    if trained is not None and trained.refusal is None and trained.promotion is None:
        return Scorer(trained.model, trained.run_id, None, trained.explanation, trained.model_uri)  # registry off
    if trained is not None and trained.promotion is not None and trained.promotion.promoted:
        return Scorer(trained.model, trained.run_id, str(trained.promotion.challenger_version),
                      trained.explanation, tracking.champion_model_uri(cfg))
    return load_scorer(tracking.champion_model_uri(cfg))


def target_scorer(cfg: Config, target: str, trained: Trained | None = None) -> Scorer | None:
    """The model ``target``'s portrait columns come from, or None (the target is not among ``model.targets``,
    or no model has learnt enough to be a champion yet: the columns stay null and a warning says why).
    ``trained``: the run's training results, when it trained."""
    if target not in cfg.model.targets:
        return None
    try:
        return scorer_after_training(target_config(cfg, target), None if trained is None else trained.get(target))
    except tracking.NoModelError as exc:
        attempted = trained is not None and (target in trained or target in trained.skipped)
        log.warning("portrait rows get no %s score: %s", target,
                    "no model of it has learnt enough to be published yet" if attempted else exc)
        return None


def churn_scorer(cfg: Config, trained: Trained | None = None) -> Scorer | None:
    """The churn model the portrait's ``churn_score`` comes from, or None (:func:`target_scorer`)."""
    return target_scorer(cfg, CHURN_TARGET, trained)


def horizon_targets(cfg: Config) -> list[str]:
    """The further purchase horizons of ``model.targets`` (``purchase_<N>d``), in configured order."""
    return [t for t in cfg.model.targets if horizon_of(t) is not None]


def horizon_scorers(cfg: Config, trained: Trained | None = None) -> dict[str, Scorer]:
    """The models of the further purchase horizons that have learnt enough to score, by target."""
    scorers = {target: target_scorer(cfg, target, trained) for target in horizon_targets(cfg)}
    return {target: scorer for target, scorer in scorers.items() if scorer is not None}


def _with_horizons(cfg: Config, horizons: dict[str, Scorer]) -> Transformation:
    """Add ``horizon_propensities``: each horizon model's probability by target (null without horizon targets)."""

    def transform(rows: DataFrame) -> DataFrame:
        if not horizon_targets(cfg):
            return rows
        for target, scorer in horizons.items():
            rows = rows.transform(score(scorer.model, f"_{target}"))
        entries = [F.struct(F.lit(t).alias("key"), F.col(f"_{t}").alias("value")) for t in horizons]
        propensities = F.map_from_entries(F.array(*entries).cast("array<struct<key:string,value:double>>"))
        return rows.withColumn(HORIZON_PROPENSITIES, propensities).drop(*[f"_{t}" for t in horizons])

    return transform


def portrait_frame(cfg: Config, day: dt.date, features_of_day: DataFrame, scorer: Scorer | None,
                   churn: Scorer | None, users: DataFrame | None, versions: dict[str, int],
                   value_rows: DataFrame | None = None,
                   horizons: dict[str, Scorer] | None = None) -> tuple[DataFrame, DataFrame]:
    """Portrait rows of ``day`` from its feature rows, and the cached scored rows (unpersist after use).
    Without ``scorer`` the purchase model's columns are null. ``value_rows`` (``customer_value`` of ``day``)
    add every customer without a feature row and give the value columns (else null):
    :func:`portrait.features.population.with_customers`."""
    scored = features_of_day.transform(with_customers(value_rows, cfg.features))
    if scorer is not None and scorer.explanation is not None:
        scored = scored.transform(reason_codes(scorer.model, scorer.explanation, score_output=SCORE))
    elif scorer is not None:
        scored = scored.transform(score(scorer.model))
    if churn is not None and churn.explanation is not None:
        scored = scored.transform(reason_codes(churn.model, churn.explanation, output=CHURN_REASON_CODES,
                                               score_output=CHURN_SCORE))
    elif churn is not None:
        scored = scored.transform(score(churn.model, CHURN_SCORE))
    horizons = horizons or {}
    scored = scored.transform(_with_horizons(cfg, horizons))
    scored = scored.transform(with_user_attributes(users)).cache()  # read twice: cut points, then the assembly
    horizon_runs = tuple((t, h.run_id) for t, h in horizons.items()) if horizon_targets(cfg) else None
    lineage = PortraitLineage(None if scorer is None else tracking.registered_name(cfg),
                              None if scorer is None else scorer.run_id, None if scorer is None else scorer.version,
                              None if churn is None else churn.run_id, tuple(sorted(versions.items())), horizon_runs)
    assemble = assemble_portrait(day, cut_points(scored), lineage, pseudonym_key(), tags=cfg.tags,
                                 high_refund_rate=cfg.features.high_refund_rate)
    return scored.transform(assemble), scored


def input_frame(lake: Lakehouse, contract, versions: dict[str, int]) -> DataFrame | None:
    """A table as of its recorded version; None when the run did not read it (an absent optional table)."""
    if contract.name not in versions:
        return None
    return lake.read(contract, version=versions[contract.name])


def write_portrait(lake: Lakehouse, day: dt.date, scorer: Scorer | None, churn: Scorer | None = None,
                   versions: dict[str, int] | None = None, horizons: dict[str, Scorer] | None = None) -> int:
    """Score the users of ``day`` and publish the ``user_portrait`` partition of ``day``; returns its rows.

    Missing features of ``day`` are computed first, then its ``customer_value`` partition (portrait/stages/value.py),
    whose value columns the rows repeat. With the model's explanation every row gets its reason
    codes; without, an empty list. Without ``scorer`` (no purchase model yet) its columns are null; ``churn``
    fills ``churn_score`` (else null), ``horizons`` the ``horizon_propensities``. ``versions`` are the input
    table versions the run records (read at its start; default: now); the rows name them and the ``users``
    attributes are read at that version. The rows are published only when they pass the quality gate
    (:func:`portrait.stages.publish.publish_portrait`); otherwise
    :class:`portrait.publish.quality.QualityGateFailed` is raised and the table is unchanged.
    """
    check_tag_registry(lake)
    features.ensure(lake, [day])
    value_rows = customer_value.compute(lake, day)
    versions = input_versions(lake) if versions is None else versions
    rows, scored = portrait_frame(lake.cfg, day, lake.read_day(USER_FEATURES, day), scorer, churn,
                                  input_frame(lake, USERS, versions), versions, value_rows, horizons)
    try:
        unscored = UNSCORED_COLUMNS if scorer is None else ()
        return publish_portrait(lake, day, rows, unscored).rows  # quality gate, atomic write, tag changes
    finally:
        scored.unpersist()


def _scorers(lake: Lakehouse, day: dt.date, model_uri: str | None) -> tuple[Scorer | None, Scorer | None, Trained]:
    """The purchase and churn scorers of a run, training first the targets that need it (none when
    ``model_uri`` names the model to score with)."""
    if model_uri is not None:
        tracking.use_store(lake.cfg)  # the URI names a model of the configured registry
        return load_scorer(model_uri), churn_scorer(lake.cfg), Trained()
    trained = train_targets(lake, day, targets_to_train(lake.cfg))
    if PURCHASE_TARGET in trained or PURCHASE_TARGET in trained.skipped:
        # Trained now: a model that learnt too little leaves the scores null until one has learnt enough.
        scorer = target_scorer(lake.cfg, PURCHASE_TARGET, trained)
    else:
        scorer = scorer_after_training(lake.cfg, None)  # NoModelError without a champion
    if PURCHASE_TARGET not in trained and scorer is not None:
        log.info("scoring with the champion %s (model.daily_training: %s)", scorer.uri,
                 lake.cfg.model.daily_training)
    return scorer, churn_scorer(lake.cfg, trained), trained


def run(lake: Lakehouse, day: dt.date, model_uri: str | None = None, git_commit: str | None = None) -> ScoreResult:
    """The score task: score ``day`` with ``model_uri`` (default: the champion, trained first when there is
    none and ``model.daily_training`` allows), publish the portrait, write the BI tables and the report;
    recorded in ``job_runs`` as job ``score`` with the versions :func:`portrait.stages.operations.replay`
    needs."""
    with audit.recorded(lake, JOB, day, git_commit) as run:
        check_tag_registry(lake)  # a bad tag definition fails now, not after training
        pseudonym_key()  # the BI tables need it: a missing key fails now, not after training
        run.input_versions = input_versions(lake)
        scorer, churn, trained = _scorers(lake, day, model_uri)
        horizons = horizon_scorers(lake.cfg, trained)
        run.mlflow_run_id = None if scorer is None else scorer.run_id
        with timed(f"portrait {day}"):
            rows = write_portrait(lake, day, scorer, churn, run.input_versions, horizons)
        with timed(f"bi tables and report {day}"):
            bi_rows = bi.write_tables(lake, day)
            report = bi.write_report(lake, day)
        run.rows_in, run.rows_out = lake.day_rows(USER_FEATURES, day), rows
        run.output_versions = lake.versions(OUTPUT_TABLES)
    return ScoreResult(scorer, rows, run.rows_in, bi_rows, str(report), run.input_versions, trained)
