"""MLflow: the only module that talks to the tracking server and model registry."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import mlflow.spark
import pyspark
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame

from portrait.config import Config
from portrait.model.evaluation import EvaluationReport
from portrait.model.explain import Explanation, top_features
from portrait.model.pipeline import MODEL_INPUT_COLUMNS
from portrait.model.value_holdout import HoldoutReport
from portrait.monitor import Check

MODEL_ARTIFACT = "model"
EXPLANATION_ARTIFACT = "explanation.json"
EVALUATION_DIR = "evaluation"
CHAMPION = "champion"
CHALLENGER = "challenger"
TOP_FEATURES = 20
_INPUT_EXAMPLE_ROWS = 5

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoggedModel:
    run_id: str
    model_uri: str
    registered_version: str | None


def registered_name(cfg: Config) -> str:
    """The model's name in the registry: ``<model_catalog>.<model_schema>.<model.name>`` when both are set
    (Unity Catalog names models in a schema), else ``model.name``."""
    settings = cfg.mlflow
    if settings.model_catalog and settings.model_schema:
        return f"{settings.model_catalog}.{settings.model_schema}.{cfg.model.name}"
    return cfg.model.name


def model_name_of(model_uri: str) -> str:
    """The registered name in ``models:/<name>@<alias>`` or ``models:/<name>/<version>``."""
    return model_uri.removeprefix("models:/").split("@")[0].split("/")[0]


def _artifact_uri(location: str | None) -> str | None:
    if location is None or "://" in location:
        return location
    return Path(location).resolve().as_uri()


def use_store(cfg: Config) -> str:
    """Point MLflow at the configured tracking and registry URIs; return the tracking URI.

    Called before anything reads a model by URI (``runs:/…``, ``models:/…``): without it MLflow resolves the
    URI in its default store (``./mlflow.db``), or in the store another configuration of the process set.
    """
    uri = cfg.mlflow.tracking_uri
    if uri.startswith("sqlite:///"):
        db_path = Path(uri.removeprefix("sqlite:///"))
        db_path.parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    # Set every time: a process serving several configurations must not keep another one's registry.
    mlflow.set_registry_uri(cfg.mlflow.registry_uri or uri)
    return uri


def use_experiment(cfg: Config) -> str:
    """Point MLflow at the configured tracking URI and experiment (created if missing); return its id."""
    uri = use_store(cfg)
    try:
        experiment = mlflow.get_experiment_by_name(cfg.mlflow.experiment)
    except MlflowException as exc:
        _raise_if_unreachable(exc, uri)
        raise
    if experiment is not None:
        return experiment.experiment_id
    return mlflow.create_experiment(cfg.mlflow.experiment,
                                    artifact_location=_artifact_uri(cfg.mlflow.artifact_location))


class TrackingUnavailableError(RuntimeError):
    """The MLflow tracking server cannot be reached; the job stops before publishing anything."""


_UNREACHABLE = ("Max retries exceeded", "Connection refused", "Failed to establish a new connection",
                "Name or service not known", "timed out", "ConnectTimeout", "RemoteDisconnected")


def _raise_if_unreachable(exc: BaseException, uri: str) -> None:
    text = str(exc)
    if any(marker in text for marker in _UNREACHABLE):
        raise TrackingUnavailableError(
            f"MLflow tracking server {uri} (mlflow.tracking_uri) is unreachable: "
            f"{text.splitlines()[0][:200]}. Nothing was published by this step; check the server is up and "
            "reachable from this machine (MLFLOW_HTTP_REQUEST_MAX_RETRIES / _TIMEOUT bound the wait), then re-run."
        ) from None


def _log_evaluation(report: EvaluationReport) -> None:
    from portrait.model.plots import close, evaluation_figures

    tables = {"deciles": report.deciles, "calibration": report.calibration, "curve": report.curve,
              **{f"curve_baseline_{name}": curve for name, curve in report.baseline_curves.items()}}
    if report.by_frequency is not None:
        tables["holdout_by_frequency"] = report.by_frequency
    for name, table in tables.items():
        mlflow.log_text(table.to_csv(index=False), f"{EVALUATION_DIR}/{name}.csv")
        mlflow.log_text(table.to_json(orient="records", indent=1), f"{EVALUATION_DIR}/{name}.json")
    figures = evaluation_figures(report)
    try:
        for file_name, figure in figures.items():
            mlflow.log_figure(figure, f"{EVALUATION_DIR}/{file_name}")
    finally:
        close(figures)


def _log_explanation(explanation: Explanation) -> None:
    mlflow.log_dict(explanation.to_dict(), EXPLANATION_ARTIFACT)
    table = top_features(explanation, TOP_FEATURES)
    mlflow.log_text(table.to_csv(index=False), "top_features.csv")
    mlflow.log_text(table.to_json(orient="records", indent=1, force_ascii=False), "top_features.json")


def log_training_run(cfg: Config, model: PipelineModel, example_features: DataFrame, params: dict[str, Any],
                     metrics: dict[str, float], run_name: str, evaluation: EvaluationReport | None = None,
                     explanation: Explanation | None = None, refusal: str | None = None) -> LoggedModel:
    """Log one training run: parameters, metrics, and the fitted PipelineModel with its signature.

    ``example_features`` are ``user_features`` rows; a few of them become the input example, and the
    model's output on them defines the signature. The model is registered under :func:`registered_name` when
    ``mlflow.register_model`` is on, unless ``refusal`` says why it must not be (the run is tagged
    ``registration: refused`` and ``registration_refusal`` with the reason). With ``evaluation``, the decile,
    calibration and curve tables are logged as CSV and JSON and the ROC, PR, calibration and lift plots as PNG
    under ``evaluation/``; with
    ``explanation``, ``explanation.json`` (what reason codes need at scoring time) and the top positive
    and negative features (``top_features.csv``/``.json``).
    """
    experiment_id = use_experiment(cfg)
    example_rows = example_features.select(*MODEL_INPUT_COLUMNS).limit(_INPUT_EXAMPLE_ROWS)
    example = example_rows.toPandas()
    # MLflow artifacts are readable by everyone with access to the experiment: no raw person id goes there.
    example["user_id"] = [f"example-{i}" for i in range(len(example))]
    # Integer features may be null (e.g. no order yet); as doubles the signature accepts the missing values.
    example = example.astype({c: "float64" for c in example.select_dtypes("integer").columns})
    # The pyfunc flavour of a Spark model returns its "prediction" column; the signature says so.
    predictions = model.transform(example_rows).select("prediction").toPandas()
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        mlflow.log_params({**params, "config_fingerprint": cfg.fingerprint()})
        mlflow.log_metrics(metrics)
        if refusal is not None:
            mlflow.set_tags({"registration": "refused", "registration_refusal": refusal})
        mlflow.log_dict(cfg.loggable(), "config.json")
        if evaluation is not None:
            _log_evaluation(evaluation)
        if explanation is not None:
            _log_explanation(explanation)
        signature = infer_signature(example, predictions)
        info = mlflow.spark.log_model(
            model,
            artifact_path=MODEL_ARTIFACT,
            signature=signature,
            # Stated, not inferred: inference reloads the model in a subprocess and costs seconds per run.
            pip_requirements=[f"pyspark=={pyspark.__version__}", f"mlflow=={mlflow.__version__}"],
            registered_model_name=registered_name(cfg) if cfg.mlflow.register_model and refusal is None else None,
        )
        version = getattr(info, "registered_model_version", None)
        return LoggedModel(run.info.run_id, info.model_uri, None if version is None else str(version))


def load_model(model_uri: str) -> PipelineModel:
    """Load a logged Spark model (``runs:/…``, ``models:/…``) back as a PipelineModel."""
    return mlflow.spark.load_model(model_uri)


class NoModelError(LookupError):
    """No registered model version (or no champion) exists to score with."""


@dataclass(frozen=True)
class ModelVersionRef:
    version: str
    run_id: str


def champion_version(cfg: Config) -> ModelVersionRef | None:
    """The version behind the ``champion`` alias of the model, or None when there is none."""
    use_experiment(cfg)
    try:
        version = mlflow.MlflowClient().get_model_version_by_alias(registered_name(cfg), CHAMPION)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST" or "not found" in str(exc).lower():
            return None
        raise
    return ModelVersionRef(str(version.version), version.run_id)


def champion_model_uri(cfg: Config) -> str:
    """``models:/<name>@champion``; raises :class:`NoModelError` naming the model when no champion exists."""
    if champion_version(cfg) is None:
        raise NoModelError(
            f"model '{registered_name(cfg)}' has no '{CHAMPION}' version in {cfg.mlflow.tracking_uri}; "
            "run `portrait train` (or `portrait daily`) first to train and promote one"
        )
    return f"models:/{registered_name(cfg)}@{CHAMPION}"


def version_model_uri(cfg: Config, version: str) -> str:
    return f"models:/{registered_name(cfg)}/{version}"


def set_alias(cfg: Config, alias: str, version: str) -> None:
    """Point ``alias`` of the model at ``version`` (moving it from any other version)."""
    use_experiment(cfg)
    mlflow.MlflowClient().set_registered_model_alias(registered_name(cfg), alias, version)


def log_decision(run_id: str, params: dict[str, Any], metrics: dict[str, float], tags: dict[str, str]) -> None:
    """Add parameters, metrics and tags to a finished run (the promotion decision of its model)."""
    client = mlflow.MlflowClient()
    for key, value in params.items():
        client.log_param(run_id, key, value)
    for key, value in metrics.items():
        client.log_metric(run_id, key, value)
    for key, value in tags.items():
        client.set_tag(run_id, key, value)


def load_explanation(model_uri: str) -> Explanation | None:
    """The ``explanation.json`` logged with the model's run, or None for a run logged without one."""
    try:
        data = mlflow.artifacts.load_dict(f"runs:/{run_id_of(model_uri)}/{EXPLANATION_ARTIFACT}")
    except (MlflowException, OSError) as exc:
        log.warning("no %s for %s (%s): portrait rows get no reason codes", EXPLANATION_ARTIFACT, model_uri, exc)
        return None
    return Explanation.from_dict(data)


def latest_model_uri(cfg: Config) -> str:
    """URI of the newest registered version of the model; raises :class:`NoModelError` if none."""
    use_experiment(cfg)
    name = registered_name(cfg)
    versions = mlflow.MlflowClient().search_model_versions(f"name = '{name}'")
    if not versions:
        raise NoModelError(
            f"no registered version of model '{name}' in {cfg.mlflow.tracking_uri}; "
            "run `portrait train` (or `portrait daily`) first"
        )
    newest = max(versions, key=lambda v: int(v.version))
    return f"models:/{name}/{newest.version}"


def registered_version_of(model_uri: str) -> str | None:
    """The registry version behind ``models:/<name>@<alias>`` or ``models:/<name>/<version>``; None for a
    run's model (``runs:/…``)."""
    if not model_uri.startswith("models:/"):
        return None
    name, _, alias = model_uri.removeprefix("models:/").partition("@")
    if alias:
        return str(mlflow.MlflowClient().get_model_version_by_alias(name, alias).version)
    version = model_uri.rstrip("/").rsplit("/", 1)[-1]
    return version if version.isdigit() else None  # a stage name such as "latest" is not a version


def run_id_of(model_uri: str) -> str:
    """The MLflow run that logged the model behind ``model_uri``."""
    if model_uri.startswith("runs:/"):
        return model_uri.split("/")[1]
    return mlflow.models.get_model_info(model_uri).run_id


def log_monitoring(cfg: Config, day, rows: list[Check]) -> str:
    """Log a day's monitoring checks as one MLflow run (metrics per check); returns the run id."""
    experiment_id = use_experiment(cfg)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"monitor-{day}") as run:
        mlflow.set_tags({"portrait.job": "monitor", "portrait.date": str(day)})
        metrics = {}
        for check, subject, reference, value, _threshold, _breached, _dt in rows:
            if value is None:
                continue
            key = "_".join([check, subject, "ref_" + reference.split(" ")[0]])
            metrics[key[:250]] = float(value)
        mlflow.log_metrics(metrics)
        mlflow.log_metric("breaches", float(sum(1 for row in rows if row.breached)))
        return run.info.run_id


def log_value_fit(cfg: Config, day, params: dict[str, float], metrics: dict[str, float],
                  held_out: HoldoutReport | None = None, refusal: str | None = None) -> str:
    """Log a date's customer value fit (BG/NBD and Gamma-Gamma parameters, likelihoods, customers, the held-out
    check's metrics, table and plot) as one MLflow run in the experiment ``<mlflow.experiment>_value``, tagged
    ``publication: refused`` with the reason when the check failed; returns the run id."""
    from portrait.model.plots import close, value_holdout_figure

    settings = cfg.mlflow.model_copy(update={"experiment": f"{cfg.mlflow.experiment}_value"})
    experiment_id = use_experiment(cfg.model_copy(update={"mlflow": settings}))
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"value-{day}") as run:
        mlflow.set_tags({"portrait.job": "value", "portrait.date": str(day),
                         "holdout_check": "none (history too short)" if held_out is None else
                         "passed" if refusal is None else "failed"})
        if refusal is not None:
            mlflow.set_tags({"publication": "refused", "publication.reason": refusal})
        mlflow.log_params({**params, **cfg.value.model_dump()})
        mlflow.log_metrics(metrics)
        if held_out is not None:
            mlflow.log_text(held_out.table.to_csv(index=False), f"{EVALUATION_DIR}/holdout_by_frequency.csv")
            mlflow.log_text(held_out.table.to_json(orient="records", indent=1),
                            f"{EVALUATION_DIR}/holdout_by_frequency.json")
            figure = value_holdout_figure(held_out.table, cfg.value.holdout_days)
            try:
                mlflow.log_figure(figure, f"{EVALUATION_DIR}/holdout_by_frequency.png")
            finally:
                close({"holdout": figure})
        return run.info.run_id


RETRAIN_TAG = "portrait.retrain_required"
ERASURE_TAG = "portrait.erasure_requests"


def mark_for_retraining(cfg: Config, model_names: list[str], feature_dates: set[str], request_id: str) -> list[str]:
    """Tag every registered version of ``model_names`` trained on a feature date in ``feature_dates``.

    A version's training snapshot dates are its run's ``snapshot_dates`` parameter; the erased persons had
    feature rows on ``feature_dates`` (ISO dates), so those versions learnt from their data. The tags
    ``portrait.retrain_required=true`` and ``portrait.erasure_requests`` (request ids, comma-separated) say
    so in the registry; the next training run replaces them (docs/SECURITY.md). A version whose run has no
    ``snapshot_dates`` is marked too (unknown data: assume it). Returns the marked ``name/version``s.

    Raises :class:`TrackingUnavailableError` when the tracking server cannot be reached.
    """
    use_experiment(cfg)
    client = mlflow.MlflowClient()
    marked = []
    try:
        for name in model_names:
            for version in client.search_model_versions(f"name = '{name}'"):
                dates = client.get_run(version.run_id).data.params.get("snapshot_dates") if version.run_id else None
                if dates is not None and not feature_dates & set(dates.split(",")):
                    continue
                earlier = (version.tags or {}).get(ERASURE_TAG)
                requests = ",".join(r for r in (earlier, request_id) if r)
                client.set_model_version_tag(name, version.version, RETRAIN_TAG, "true")
                client.set_model_version_tag(name, version.version, ERASURE_TAG, requests[-5000:])
                marked.append(f"{name}/{version.version}")
    except MlflowException as exc:
        _raise_if_unreachable(exc, cfg.mlflow.tracking_uri)
        raise
    return sorted(marked, key=lambda v: (v.split("/")[0], int(v.split("/")[1])))


def versions_to_retrain(cfg: Config) -> list[str]:
    """Registered versions of the model tagged for retraining after an erasure."""
    use_experiment(cfg)
    versions = mlflow.MlflowClient().search_model_versions(f"name = '{registered_name(cfg)}'")
    return sorted((str(v.version) for v in versions if (v.tags or {}).get(RETRAIN_TAG) == "true"), key=int)


def log_report(cfg: Config, day, report_path: str | Path, metrics: dict[str, float]) -> str:
    """Log a day's HTML portrait report (artifact ``report/``) and its headline numbers as one MLflow run."""
    experiment_id = use_experiment(cfg)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"report-{day}") as run:
        mlflow.set_tags({"portrait.job": "report", "portrait.date": str(day)})
        mlflow.log_metrics(metrics)
        mlflow.log_artifact(str(report_path), artifact_path="report")
        return run.info.run_id
