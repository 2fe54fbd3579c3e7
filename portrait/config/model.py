"""The propensity and churn models: training, tuning, and where MLflow tracks runs and registers models."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from portrait.config.base import _Section, check_identifier

_HORIZON_TARGET = re.compile(r"purchase_([1-9][0-9]{0,2})d")


def horizon_of(target: str) -> int | None:
    """The label horizon of a ``purchase_<N>d`` target (N in 1..365), else None."""
    match = _HORIZON_TARGET.fullmatch(target)
    return int(match.group(1)) if match and int(match.group(1)) <= 365 else None


class TuningConfig(_Section):
    """Hyper-parameter search over the Pipeline (off by default: every candidate is a full fit)."""

    enabled: bool = False
    method: Literal["train_validation_split", "cross_validation"] = "train_validation_split"
    folds: int = Field(3, ge=2, le=20, description="cross_validation: number of folds.")
    train_ratio: float = Field(0.75, gt=0.0, lt=1.0, description="train_validation_split: share that fits.")
    parallelism: int = Field(1, ge=1, le=64, description="Candidate models fitted at the same time.")
    reg_params: list[float] = Field(default_factory=lambda: [0.01, 0.1], min_length=1)
    elastic_net_params: list[float] = Field(default_factory=lambda: [0.0], min_length=1)
    selected_text_features: list[int] = Field(default_factory=lambda: [300], min_length=1)

    @field_validator("reg_params", "elastic_net_params")
    @classmethod
    def _ranges(cls, value: list[float], info) -> list[float]:
        upper = 1.0 if info.field_name == "elastic_net_params" else float("inf")
        bad = [v for v in value if not 0.0 <= v <= upper]
        if bad:
            raise ValueError(f"values {bad} out of range [0, {upper}]")
        return value

    @field_validator("selected_text_features")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(v < 1 for v in value):
            raise ValueError(f"numbers of selected text features must be >= 1, got {value}")
        return value


class ModelConfig(_Section):
    """Propensity model: label, training snapshots and Spark ML pipeline parameters."""

    name: str = "purchase_propensity"
    label_horizon_days: int = Field(
        7, ge=1, le=365,
        description="purchase: a paid order in (D, D + horizon]. Match it to how often the shop's customers buy: "
                    "on a shop where they buy every few months, 7 days is almost never true; training needs "
                    "history of horizon + (training_snapshots - 1) * snapshot_step_days days beyond the lookback.")
    training_snapshots: int = Field(3, ge=1, le=52)
    snapshot_step_days: int = Field(7, ge=1, le=90)
    hashing_features: int = Field(1 << 14, ge=16, le=1 << 22)
    idf_min_doc_freq: int = Field(3, ge=0)
    selected_text_features: int = Field(300, ge=1)
    reg_param: float = Field(0.01, ge=0.0)
    elastic_net_param: float = Field(0.0, ge=0.0, le=1.0)
    max_iter: int = Field(100, ge=1, le=10_000)
    seed: int = 42
    class_weights: bool = Field(
        False, description="Weight rows by inverse label frequency (LogisticRegression weightCol)."
    )
    min_training_rows: int = Field(
        100, ge=1, description="Fewer training rows: nothing is trained or registered (portrait/model/gate.py).")
    min_class_rows: int = Field(
        10, ge=1, description="Fewer rows of either class in the training or the test set: nothing is trained.")
    baseline_margin: float = Field(
        0.01, ge=0.0, le=1.0,
        description="A model is registered only when its test AUC-ROC beats every baseline's by more than this.")
    promotion_margin: float = Field(
        0.0, ge=0.0, le=1.0, description="Champion alias moves when challenger AUC >= champion AUC + margin."
    )
    vocabulary_tokens: int = Field(
        5000, ge=0, le=100_000, description="Most frequent training tokens mapped back to hashed text terms."
    )
    split: Literal["time", "user_hash"] = Field(
        "time", description="time: newest snapshot is the test set; user_hash: a hash of user_id picks test users."
    )
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0, description="user_hash split: share of users held out.")
    tuning: TuningConfig = TuningConfig()
    targets: list[str] = Field(
        default_factory=lambda: ["purchase", "churn"], min_length=1,
        description="Label definitions trained per run, one MLflow experiment and registered model each; "
                    "the portrait's purchase_propensity comes from 'purchase' (label_horizon_days), churn_score "
                    "from 'churn'; 'purchase_<N>d' (N in 1..365) adds a purchase label of another horizon, "
                    "whose probability goes to user_portrait.horizon_propensities under that name.",
    )
    churn_horizon_days: int = Field(30, ge=1, le=180, description="churn: no activity in (D, D + horizon].")
    daily_training: Literal["always", "if_no_champion", "never"] = Field(
        "if_no_champion",
        description="always: every scoring run trains first (and the promotion gate decides); if_no_champion: "
                    "it scores with the champion and trains only when none exists (a fresh workspace's first "
                    "run) or it is marked for retraining; never: it fails without a champion. The weekly "
                    "training job trains.",
    )

    @field_validator("targets")
    @classmethod
    def _purchase_first(cls, value: list[str]) -> list[str]:
        if value[0] != "purchase" or len(set(value)) != len(value):
            raise ValueError(f"targets must start with 'purchase' and not repeat, got {value}")
        unknown = [t for t in value if t not in ("purchase", "churn") and horizon_of(t) is None]
        if unknown:
            raise ValueError(f"unknown targets {unknown}: known are purchase, churn and purchase_<N>d, N in 1..365")
        return value


class ValueConfig(_Section):
    """Customer value: BG/NBD and Gamma-Gamma fitted on every date's purchase history (portrait/model/value.py)."""

    enabled: bool = True
    retention_days: int = Field(
        1095, ge=30, le=3650, description="Purchase history the models see: customers with a paid order in it.")
    clv_periods: int = Field(12, ge=1, le=120, description="CLV horizon in periods of 30 days.")
    margin: float = Field(1.0, gt=0.0, le=1.0, description="Share of an order's value that is margin (1: revenue).")
    discount_rate: float = Field(0.01, ge=0.0, le=1.0, description="Discount rate per 30-day period.")
    holdout_days: int = Field(
        90, ge=7, le=365, description="The held-out check: the purchase model fitted on the history to this many "
                                      "days before the date must predict the purchases of those days better than "
                                      "each customer's past rate, else no predictions are published.")
    max_fit_rows: int = Field(
        200_000, ge=1000, description="Summary rows the fit reads on the driver; a larger summary is sampled.")
    min_customers: int = Field(
        100, ge=10, description="Fewer customers with an order, or half as many with a repeat purchase of known "
                                "value (the spend model's data): no fit, the value columns are null.")
    seed: int = 42


class MlflowConfig(_Section):
    """Where runs and models are tracked."""

    tracking_uri: str
    experiment: str = "portrait"
    artifact_location: str | None = Field(
        None, description="Artifact root for a new experiment; a local folder or a URI."
    )
    register_model: bool = True
    registry_uri: str | None = Field(
        None, description="Model registry URI; None: the tracking server's. databricks-uc: Unity Catalog.")
    model_catalog: str | None = Field(
        None, description="Catalog of registered models (Unity Catalog names are catalog.schema.model).")
    model_schema: str | None = Field(None, description="Schema of registered models; set with model_catalog.")

    @field_validator("model_catalog", "model_schema")
    @classmethod
    def _identifier(cls, value: str | None, info: ValidationInfo) -> str | None:
        return value if value is None else check_identifier(value, info.field_name)

    @model_validator(mode="after")
    def _both_or_neither(self) -> MlflowConfig:
        if (self.model_catalog is None) != (self.model_schema is None):
            raise ValueError("set both model_catalog and model_schema (three-level model names) or neither")
        return self
