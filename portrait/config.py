"""One typed, validated configuration for every job.

A run's configuration is ``conf/base.yml`` with an environment file laid over it (``conf/local.yml``,
``conf/dev.yml`` or ``conf/prod.yml``), then environment variables of the form
``PORTRAIT__SECTION__KEY=value`` laid over that (values are parsed as YAML scalars, so ``8``, ``0.5``,
``true`` and ``[7, 30]`` keep their types). The merged mapping is validated once into :class:`Config`; an
unknown key, a wrong type or a missing value is a :class:`ConfigError` naming the key and the file (or
variable) it came from.

Example::

    cfg = load_config("conf/local.yml")
    cfg.tables.clickstream          # "clickstream"
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

ENV_PREFIX = "PORTRAIT__"
BASE_FILE_NAME = "base.yml"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ConfigError(ValueError):
    """A configuration problem, with the key and the file it came from in the message."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LakehouseConfig(_Section):
    """Where the tables live: a directory of Delta tables, or a catalog.schema in a metastore."""

    path: str | None = Field(None, description="Directory holding one Delta table per sub-folder.")
    catalog: str | None = None
    schema_name: str | None = Field(None, alias="schema")

    @field_validator("path")
    @classmethod
    def _plain_path(cls, value: str | None) -> str | None:
        # The path is quoted into SQL as delta.`<path>`: a backtick or a control character would end the quote.
        if value is not None:
            if not value.strip() or "`" in value or any(ord(c) < 32 for c in value):
                raise ValueError(f"lakehouse path {value!r} must be non-empty, without backticks or control "
                                 "characters")
            if Path(value).exists() and not Path(value).is_dir():
                raise ValueError(f"lakehouse path {value!r} exists and is not a directory")
        return value

    @model_validator(mode="after")
    def _one_location(self) -> LakehouseConfig:
        if (self.path is None) == (self.schema_name is None):
            raise ValueError("set exactly one of 'path' (a directory) or 'schema' (a metastore schema)")
        for part in (self.catalog, self.schema_name):
            if part is not None and not _IDENTIFIER.match(part):
                raise ValueError(f"catalog/schema name {part!r} must be a plain SQL identifier")
        return self


class TablesConfig(_Section):
    """Physical table names; each is a plain identifier (it becomes a folder or a metastore table)."""

    clickstream: str = "clickstream"
    orders: str = "orders"
    items: str = "items"
    users: str = "users"
    reviews: str = "reviews"
    user_daily_activity: str = "user_daily_activity"
    rollup_inputs: str = "rollup_inputs"
    user_features: str = "user_features"
    user_portrait: str = "user_portrait"
    quarantine: str = "quarantine"
    ingest_runs: str = "ingest_runs"
    identity_graph: str = "identity_graph"
    identity_merge_log: str = "identity_merge_log"
    job_runs: str = "job_runs"
    monitoring: str = "monitoring"
    publish_checks: str = "publish_checks"
    portrait_changes: str = "portrait_changes"
    erasure_requests: str = "erasure_requests"
    portrait_latest: str = "portrait_latest"
    segment_daily: str = "segment_daily"

    @field_validator("*")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError(f"table name {value!r} must be a plain identifier (letters, digits, _)")
        return value


class LifecycleRules(_Section):
    """Lifecycle stage rules, first match wins: new, then active, then sleeping, else churned."""

    new_max_tenure_days: int = Field(13, ge=0, description="new: first activity at most this many days ago.")
    active_max_idle_days: int = Field(7, ge=0, description="active: last activity at most this many days ago.")
    sleeping_max_idle_days: int = Field(30, ge=0, description="sleeping: last activity at most this many days ago.")

    @model_validator(mode="after")
    def _ordered(self) -> LifecycleRules:
        if self.sleeping_max_idle_days < self.active_max_idle_days:
            raise ValueError("sleeping_max_idle_days must be at least active_max_idle_days")
        return self


class FeaturesConfig(_Section):
    """Feature engineering settings (families and definitions in docs/FEATURES.md)."""

    text_window_days: int = Field(30, ge=1, le=90)
    max_tokens_per_user: int = Field(200, ge=10, le=10_000)
    min_token_length: int = Field(1, ge=1, le=10)
    session_gap_minutes: int = Field(30, ge=1, le=24 * 60, description="Inactivity that ends a session.")
    affinity_half_life_days: float = Field(14.0, gt=0, description="Interest weight halves every this many days.")
    affinity_weights: dict[Literal["view", "search", "cart", "remove_cart", "fav", "buy"], float] = Field(
        default_factory=lambda: {"view": 1.0, "cart": 3.0, "fav": 2.0, "buy": 5.0},
        description="Interest weight of one event per type; types not listed weigh nothing.",
    )
    top_k: int = Field(5, ge=1, le=50, description="Categories and brands kept in top_categories/top_brands.")
    price_tier_edges: tuple[float, float] = Field(
        (1 / 3, 2 / 3), description="price_percentile_90d below the first is low, from the second high."
    )
    lifecycle: LifecycleRules = LifecycleRules()
    bot_max_events_per_day: int = Field(
        5000, ge=100, description="A person-day above this is a bot day: counted, but no sessions or text."
    )
    bot_events_per_active_day: float = Field(1000.0, gt=0, description="bot_suspect above this 30-day rate.")
    bot_max_gap_cv: float = Field(0.1, ge=0, description="bot_suspect when in-session gaps vary less than this.")
    bot_min_gaps: int = Field(50, ge=2, description="Gaps needed before their regularity is judged.")
    high_refund_rate: float = Field(
        0.5, gt=0.0, le=1.0,
        description="user_portrait.high_refund_rate (risk flag) when refund_rate_90d is at least this.")

    @field_validator("price_tier_edges")
    @classmethod
    def _edges_ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 < value[0] < value[1] < 1:
            raise ValueError("price_tier_edges must be two increasing numbers strictly between 0 and 1")
        return value


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
    label_horizon_days: int = Field(7, ge=1, le=90)
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
    targets: list[Literal["purchase", "churn"]] = Field(
        default_factory=lambda: ["purchase", "churn"], min_length=1,
        description="Label definitions trained per run, one MLflow experiment and registered model each; "
                    "the portrait's purchase_propensity comes from 'purchase', churn_score from 'churn'.",
    )
    churn_horizon_days: int = Field(30, ge=1, le=180, description="churn: no activity in (D, D + horizon].")
    daily_training: Literal["always", "if_no_champion"] = Field(
        "if_no_champion",
        description="always: every daily run trains (and the promotion gate decides); if_no_champion: the daily "
                    "run scores with the champion and trains only when none exists or it is marked for "
                    "retraining; the weekly training job trains.",
    )

    @field_validator("targets")
    @classmethod
    def _purchase_first(cls, value: list[str]) -> list[str]:
        if value[0] != "purchase" or len(set(value)) != len(value):
            raise ValueError(f"targets must start with 'purchase' and not repeat, got {value}")
        return value


class MlflowConfig(_Section):
    """Where runs and models are tracked."""

    tracking_uri: str
    experiment: str = "portrait"
    artifact_location: str | None = Field(
        None, description="Artifact root for a new experiment; a local folder or a URI."
    )
    register_model: bool = True


class GenerateConfig(_Section):
    """Synthetic data used when the input tables do not exist yet."""

    users: int = Field(4000, ge=10)
    days: int = Field(60, ge=14)
    seed: int = 7


# Fields a generic source may map, by clickstream contract name (plus order_id and quantity for purchases).
GENERIC_TARGET_FIELDS: tuple[str, ...] = (
    "event_id", "user_id", "anonymous_id", "session_id", "event_time", "event_type", "item_id", "category_id",
    "brand", "price", "search_query", "channel", "platform", "order_id", "quantity",
)
_CONTRACT_EVENT_TYPES = ("view", "search", "cart", "remove_cart", "fav", "buy")  # = schemas.EVENT_TYPES


class GenericFormatConfig(_Section):
    """How ``portrait ingest --format generic`` reads a file: layout, column mapping and value mapping."""

    file_format: Literal["csv", "json", "parquet"] = "csv"
    header: bool = Field(True, description="CSV only: the first line of every file names the columns.")
    delimiter: str = Field(",", min_length=1, max_length=1)
    columns: list[str] = Field(default_factory=list, description="CSV without header: column names in order.")
    mapping: dict[str, str | None] = Field(
        default_factory=lambda: {f: f for f in GENERIC_TARGET_FIELDS if f not in ("order_id", "quantity")},
        description="clickstream field -> source column; null = not mapped (mappings merge key by key).",
    )
    event_types: dict[str, str] = Field(
        default_factory=lambda: {t: t for t in _CONTRACT_EVENT_TYPES},
        description="source event type value -> clickstream event type.",
    )
    time_format: str = Field(
        "yyyy-MM-dd HH:mm:ss", min_length=1,
        description="'seconds' or 'millis' (Unix epoch numbers) or a Spark datetime pattern.",
    )

    @field_validator("mapping")
    @classmethod
    def _known_targets(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        unknown = sorted(set(value) - set(GENERIC_TARGET_FIELDS))
        if unknown:
            raise ValueError(f"unknown target field(s) {unknown}; allowed: {list(GENERIC_TARGET_FIELDS)}")
        mapped = {k for k, v in value.items() if v}
        if not {"event_time", "event_type"} <= mapped or not {"user_id", "anonymous_id"} & mapped:
            raise ValueError("map at least event_time, event_type and one of user_id / anonymous_id")
        return value

    @field_validator("event_types")
    @classmethod
    def _known_event_types(cls, value: dict[str, str]) -> dict[str, str]:
        bad = sorted(v for v in value.values() if v not in _CONTRACT_EVENT_TYPES)
        if bad or not value:
            raise ValueError(f"event types {bad} are not clickstream types {list(_CONTRACT_EVENT_TYPES)}")
        return value


class IngestConfig(_Section):
    """File ingestion (``portrait ingest``): plausibility limits and the quarantine threshold."""

    min_event_date: datetime.date = Field(datetime.date(2000, 1, 1), description="Older events are quarantined.")
    max_future_hours: int = Field(24, ge=0, description="Events later than run time + this are quarantined.")
    max_quarantine_share: float = Field(
        0.05, ge=0.0, le=1.0, description="Above this share of quarantined rows the run fails and commits nothing."
    )
    generic: GenericFormatConfig = GenericFormatConfig()


class IdentityConfig(_Section):
    """Identity stitching: anonymous/device ids linked to the users that logged in on them."""

    enabled: bool = Field(True, description="Rebuild identity_graph after ingest and use it in features.")
    max_ids_per_person: int = Field(3, ge=1, description="Most user ids one person (component) may merge.")
    excluded_ids: list[str] = Field(default_factory=list, description="Ids never used to link (shared/test).")
    excluded_pattern: str | None = Field(None, description="Java regex: matching ids are never used to link.")
    max_iterations: int = Field(30, ge=1, le=1000)

    @field_validator("excluded_pattern")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value


class MonitoringConfig(_Section):
    """Drift and volume checks run after each daily portrait."""

    enabled: bool = True
    psi_threshold: float = Field(0.25, gt=0.0)
    volume_max_relative_change: float = Field(0.5, gt=0.0)
    volume_trailing_days: int = Field(7, ge=1, le=90)
    fail_on_breach: bool = False


class PrivacyConfig(_Section):
    """Aggregate privacy of BI exports and erasure (``portrait forget``); keys come only from the environment."""

    min_group_size: int = Field(
        10, ge=1, description="Segment counts and audiences smaller than this are suppressed in BI tables."
    )
    noise_epsilon: float | None = Field(
        None, gt=0.0, description="Laplace noise on exported segment counts (privacy.laplace_noised); null = none."
    )
    vacuum_retention_hours: int = Field(
        168, ge=0, description="VACUUM after erasure keeps files younger than this (Delta's check is 168 h)."
    )


TAG_CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class TagDefinition(_Section):
    """One entry of the tag registry (``tags:``): a code to select users by, its names and its rule.

    A tag with a ``definition`` is set on every portrait row where the expression is true, once its status
    is ``live``. A tag without one is a category that only groups its children in the hierarchy.
    """

    code: str = Field(description="Stable code stored in user_portrait.tags: lower-case letters, digits, _.")
    name_zh: str = Field(min_length=1, description="Chinese name shown to marketing and in BI tools.")
    name_en: str = Field(min_length=1, description="English name.")
    type: Literal["rule", "statistical", "model"] = Field(
        description="rule: fixed thresholds; statistical: relative to the day's population; model: from a score."
    )
    parent: str | None = Field(None, description="Code of the broader tag or category; null at the top level.")
    definition: str | None = Field(
        None, description="Spark SQL boolean expression over user_features and user_portrait columns; null for "
                          "a category."
    )
    status: Literal["draft", "live", "retired"] = Field(
        "draft", description="Only live tags are set; draft and retired ones are kept for the catalogue."
    )

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        if not TAG_CODE.match(value):
            raise ValueError(f"tag code {value!r} must be lower-case letters, digits and _, starting with a letter")
        return value

    @model_validator(mode="after")
    def _definition_text(self) -> TagDefinition:
        if self.definition is not None and not self.definition.strip():
            raise ValueError(f"tag '{self.code}': definition is empty; write a condition or null for a category")
        if self.parent == self.code:
            raise ValueError(f"tag '{self.code}': a tag cannot be its own parent")
        return self


def check_tag_hierarchy(tags: list[TagDefinition]) -> None:
    """Raise ValueError naming the tag for a duplicate code, an unknown parent or a cycle of parents."""
    seen: set[str] = set()
    for tag in tags:
        if tag.code in seen:
            raise ValueError(f"tag '{tag.code}' is defined more than once; tag codes must be unique")
        seen.add(tag.code)
    parents = {tag.code: tag.parent for tag in tags}
    for tag in tags:
        if tag.parent is not None and tag.parent not in parents:
            raise ValueError(f"tag '{tag.code}': parent '{tag.parent}' is not a tag code of the registry")
    for tag in tags:
        chain, code = [tag.code], tag.parent
        while code is not None:
            if code in chain:
                raise ValueError(f"tag '{tag.code}': its parents form a cycle ({' -> '.join([*chain, code])})")
            chain.append(code)
            code = parents[code]


class PublishConfig(_Section):
    """Quality gate before a date's user_portrait partition is written, and the tables' owner."""

    enforce: bool = Field(True, description="A failed check stops the write (else it is only recorded).")
    max_row_count_change: float = Field(
        0.3, gt=0.0, description="|rows / rows of the previous portrait date - 1| above this fails."
    )
    max_null_rate: float = Field(0.5, ge=0.0, le=1.0, description="Share of nulls any column may have.")
    null_rate_overrides: dict[str, float] = Field(
        default_factory=dict, description="Per-column limits replacing max_null_rate, by portrait column name."
    )
    min_tag_coverage: float = Field(0.9, ge=0.0, le=1.0, description="Share of rows with at least one tag.")
    segment_columns: list[str] = Field(
        default_factory=lambda: ["rfm_segment", "lifecycle_stage"],
        description="Portrait columns whose value shares are compared with the previous portrait date.",
    )
    max_segment_share_change: float = Field(
        0.1, gt=0.0, le=1.0, description="Largest change of one segment's share of users (0.1 = 10 points)."
    )
    score_columns: list[str] = Field(
        default_factory=lambda: ["purchase_propensity"], description="Scores whose distribution is compared."
    )
    max_score_psi: float = Field(0.25, gt=0.0, description="PSI of a score against the previous portrait date.")
    owner: str = Field("portrait-team", min_length=1, description="Table property portrait.owner.")

    @field_validator("owner")
    @classmethod
    def _owner(cls, value: str) -> str:
        # The owner is written into ALTER TABLE ... SET TBLPROPERTIES as a string literal.
        if not re.fullmatch(r"[\w.@ -]+", value):
            raise ValueError(f"owner {value!r} may contain letters, digits, space and . @ _ - only")
        return value

    @field_validator("null_rate_overrides")
    @classmethod
    def _rates(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {column: rate for column, rate in value.items() if not 0.0 <= rate <= 1.0}
        if bad:
            raise ValueError(f"null rates must lie in [0, 1], got {bad}")
        return value


class MaintenanceConfig(_Section):
    """``portrait maintain``: file compaction with Z-ordering, then VACUUM (retention: privacy section)."""

    zorder_by: dict[str, list[str]] = Field(
        default_factory=lambda: {"user_features": ["user_id"], "user_portrait": ["user_id"],
                                 "portrait_changes": ["user_id"]},
        description="Columns to Z-order each table's files by (contract name -> columns); others are compacted.",
    )


class BiConfig(_Section):
    """BI side: the SQL endpoint (`portrait serve-bi`), segment noise and the daily report."""

    host: str = Field("127.0.0.1", description="Thrift Server bind address; loopback unless BI runs elsewhere.")
    port: int = Field(10000, ge=1, le=65535, description="HiveServer2 (JDBC) port of the Thrift Server.")
    database: str = Field("portrait", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                          description="Metastore database the lakehouse tables are registered in.")
    noise_seed: int = Field(7, description="Seed of the Laplace noise on segment counts (with the date).")
    reports_path: str | None = Field(None, description="Daily HTML reports folder; null = <lakehouse.path>/reports.")


class SparkConfig(_Section):
    """Session settings for local mode; on a cluster the existing session is reused."""

    master: str = "local[2]"
    app_name: str = "portrait"
    shuffle_partitions: int = Field(4, ge=1)
    driver_memory: str = "4g"
    rollup_events_per_pass: int = Field(
        10_000_000, ge=1,
        description="A rollup of many days reads at most this many clickstream events per pass (whole days): "
                    "the events of a pass are cached and shuffled at once, so memory follows this, not the "
                    "history's length. Scale it with driver memory and shuffle_partitions.")
    options: dict[str, str] = Field(default_factory=dict)

    @field_validator("driver_memory")
    @classmethod
    def _memory(cls, value: str) -> str:
        if not re.fullmatch(r"\d+[kmgt]", value.lower()):
            raise ValueError(f"driver_memory {value!r} must look like 4g or 2048m")
        return value


class Config(_Section):
    """The whole configuration of a run. Build it with :func:`load_config`."""

    environment: Literal["local", "dev", "prod", "test"]
    time_zone: str
    lakehouse: LakehouseConfig
    tables: TablesConfig = TablesConfig()
    features: FeaturesConfig = FeaturesConfig()
    model: ModelConfig = ModelConfig()
    mlflow: MlflowConfig
    generate: GenerateConfig = GenerateConfig()
    spark: SparkConfig = SparkConfig()
    ingest: IngestConfig = IngestConfig()
    identity: IdentityConfig = IdentityConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    bi: BiConfig = BiConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    publish: PublishConfig = PublishConfig()
    maintenance: MaintenanceConfig = MaintenanceConfig()
    tags: list[TagDefinition] = Field(default_factory=list, description="The tag registry; see docs/TAGS.md.")

    @field_validator("tags")
    @classmethod
    def _tag_hierarchy(cls, value: list[TagDefinition]) -> list[TagDefinition]:
        check_tag_hierarchy(value)
        return value

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}; use an IANA name like Asia/Shanghai") from exc
        return value

    def fingerprint(self) -> str:
        """A short stable hash of the effective configuration, logged with every model run."""
        text = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, not {type(data).__name__}")
    return data


def _merge(base: dict[str, Any], overlay: Mapping[str, Any], origin: str, origins: dict[str, str],
           prefix: str = "") -> dict[str, Any]:
    """Deep-merge ``overlay`` into ``base``, recording which source set each dotted key."""
    merged = dict(base)
    for key, value in overlay.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping) and key != "options":
            merged[key] = _merge(dict(merged[key]), value, origin, origins, f"{dotted}.")
        else:
            merged[key] = value
            origins[dotted] = origin
            if isinstance(value, Mapping):
                for sub in value:
                    origins[f"{dotted}.{sub}"] = origin
    return merged


def _env_overrides(environ: Mapping[str, str]) -> list[tuple[str, dict[str, Any]]]:
    overrides = []
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX):].split("__") if p]
        if not path:
            raise ConfigError(f"environment variable {name} names no config key")
        try:
            value = yaml.safe_load(raw) if raw != "" else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"environment variable {name}: value {raw!r} is not a YAML scalar") from exc
        nested: dict[str, Any] = {path[-1]: value}
        for part in reversed(path[:-1]):
            nested = {part: nested}
        overrides.append((f"environment variable {name}", nested))
    return overrides


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
    """Load and validate the configuration for one environment file.

    Parameters
    ----------
    path:
        An environment file such as ``conf/local.yml``. ``base.yml`` in the same folder is read first and the
        file is laid over it. Passing ``base.yml`` itself is allowed.
    environ:
        Environment variables to take ``PORTRAIT__…`` overrides from; defaults to ``os.environ``.

    Returns
    -------
    Config
        The validated, immutable configuration.

    Raises
    ------
    ConfigError
        For a missing or unreadable file, an unknown key, a wrong type or a missing value; the message
        names the dotted key and the file or environment variable it came from.
    """
    env_file = Path(path)
    base_file = env_file.parent / BASE_FILE_NAME
    origins: dict[str, str] = {}
    merged: dict[str, Any] = {}
    sources = [base_file] if base_file.exists() and base_file.resolve() != env_file.resolve() else []
    sources.append(env_file)
    for source in sources:
        merged = _merge(merged, _read_yaml(source), str(source), origins)
    for origin, nested in _env_overrides(os.environ if environ is None else environ):
        merged = _merge(merged, nested, origin, origins)
    try:
        return Config.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origins, str(env_file))) from None


def _shortened(text: str, limit: int = 200) -> str:
    # A whole section (e.g. the tag list) can be the offending input: its first characters are enough.
    return text if len(text) <= limit else text[:limit] + " …"


def _describe(exc: ValidationError, origins: Mapping[str, str], default_origin: str) -> str:
    lines = []
    for error in exc.errors():
        location = [str(p) for p in error["loc"]]
        dotted = ".".join(location)
        origin = next(
            (origins[".".join(location[:i])] for i in range(len(location), 0, -1)
             if ".".join(location[:i]) in origins),
            default_origin,
        )
        if error["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see conf/base.yml for the allowed keys)"
        elif error["type"] == "missing":
            message = "missing value: this key is required"
        else:
            message = f"{error['msg']} (got {_shortened(repr(error.get('input')))})"
        lines.append(f"{origin}: key '{dotted}': {message}")
    return "invalid configuration:\n  " + "\n  ".join(lines)
