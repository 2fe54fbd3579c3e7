"""MLflow: the only module that talks to the tracking server and model registry."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import mlflow.spark
import pyspark
from mlflow.models import infer_signature
from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame

from portrait.config import Config
from portrait.model.pipeline import MODEL_INPUT_COLUMNS

MODEL_ARTIFACT = "model"
_INPUT_EXAMPLE_ROWS = 5

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoggedModel:
    run_id: str
    model_uri: str
    registered_version: str | None


def _artifact_uri(location: str | None) -> str | None:
    if location is None or "://" in location:
        return location
    return Path(location).resolve().as_uri()


def use_experiment(cfg: Config) -> str:
    """Point MLflow at the configured tracking URI and experiment (created if missing); return its id."""
    uri = cfg.mlflow.tracking_uri
    if uri.startswith("sqlite:///"):
        db_path = Path(uri.removeprefix("sqlite:///"))
        db_path.parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.get_experiment_by_name(cfg.mlflow.experiment)
    if experiment is not None:
        return experiment.experiment_id
    return mlflow.create_experiment(cfg.mlflow.experiment,
                                    artifact_location=_artifact_uri(cfg.mlflow.artifact_location))


def log_training_run(cfg: Config, model: PipelineModel, example_features: DataFrame, params: dict[str, Any],
                     metrics: dict[str, float], run_name: str) -> LoggedModel:
    """Log one training run: parameters, metrics, and the fitted PipelineModel with its signature.

    ``example_features`` are ``user_features`` rows; a few of them become the input example, and the
    model's output on them defines the signature. The model is registered under ``cfg.model.name`` when
    ``mlflow.register_model`` is on.
    """
    experiment_id = use_experiment(cfg)
    example_rows = example_features.select(*MODEL_INPUT_COLUMNS).limit(_INPUT_EXAMPLE_ROWS)
    example = example_rows.toPandas()
    # Integer features may be null (e.g. no order yet); as doubles the signature accepts the missing values.
    example = example.astype({c: "float64" for c in example.select_dtypes("integer").columns})
    # The pyfunc flavour of a Spark model returns its "prediction" column; the signature says so.
    predictions = model.transform(example_rows).select("prediction").toPandas()
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        mlflow.log_params({**params, "config_fingerprint": cfg.fingerprint()})
        mlflow.log_metrics(metrics)
        mlflow.log_dict(cfg.model_dump(mode="json", by_alias=True), "config.json")
        signature = infer_signature(example, predictions)
        info = mlflow.spark.log_model(
            model,
            artifact_path=MODEL_ARTIFACT,
            signature=signature,
            # Stated, not inferred: inference reloads the model in a subprocess and costs seconds per run.
            pip_requirements=[f"pyspark=={pyspark.__version__}", f"mlflow=={mlflow.__version__}"],
            registered_model_name=cfg.model.name if cfg.mlflow.register_model else None,
        )
        version = getattr(info, "registered_model_version", None)
        return LoggedModel(run.info.run_id, info.model_uri, None if version is None else str(version))


def load_model(model_uri: str) -> PipelineModel:
    """Load a logged Spark model (``runs:/…``, ``models:/…``) back as a PipelineModel."""
    return mlflow.spark.load_model(model_uri)


class NoModelError(LookupError):
    """No registered model version exists to score with."""


def latest_model_uri(cfg: Config) -> str:
    """URI of the newest registered version of ``cfg.model.name``; raises :class:`NoModelError` if none."""
    use_experiment(cfg)
    versions = mlflow.MlflowClient().search_model_versions(f"name = '{cfg.model.name}'")
    if not versions:
        raise NoModelError(
            f"no registered version of model '{cfg.model.name}' in {cfg.mlflow.tracking_uri}; "
            "run `portrait train` (or `portrait daily`) first"
        )
    newest = max(versions, key=lambda v: int(v.version))
    return f"models:/{cfg.model.name}/{newest.version}"


def run_id_of(model_uri: str) -> str:
    """The MLflow run that logged the model behind ``model_uri``."""
    if model_uri.startswith("runs:/"):
        return model_uri.split("/")[1]
    return mlflow.models.get_model_info(model_uri).run_id
