"""The whole configuration of a run: every section, the tag registry and the fingerprint."""

from __future__ import annotations

import hashlib
import json
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from portrait.config.base import _Section
from portrait.config.features import FeaturesConfig
from portrait.config.ingest import IdentityConfig, IngestConfig
from portrait.config.lakehouse import LakehouseConfig, MaintenanceConfig, TablesConfig
from portrait.config.model import MlflowConfig, ModelConfig, ValueConfig
from portrait.config.operations import (
    BiConfig,
    GenerateConfig,
    MonitoringConfig,
    PrivacyConfig,
    PublishConfig,
    SparkConfig,
)
from portrait.config.tags import TagDefinition, check_tag_hierarchy

REDACTED = "<redacted>"


class Config(_Section):
    """The whole configuration of a run. Build it with :func:`load_config`."""

    environment: Literal["local", "dev", "prod", "test"]
    time_zone: str
    lakehouse: LakehouseConfig
    tables: TablesConfig = TablesConfig()
    features: FeaturesConfig = FeaturesConfig()
    model: ModelConfig = ModelConfig()
    value: ValueConfig = ValueConfig()
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
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}; use an IANA name like Asia/Shanghai") from exc
        return value

    def loggable(self) -> dict:
        """The configuration as JSON for MLflow and logs, ``spark.options`` values replaced by ``REDACTED``:
        storage credentials are set there (e.g. ``spark.hadoop.fs.s3a.secret.key``), and an artifact readable
        by everyone with access to the experiment must not carry them. The names stay."""
        dump = self.model_dump(mode="json", by_alias=True)
        dump["spark"]["options"] = dict.fromkeys(dump["spark"]["options"], REDACTED)
        return dump

    def fingerprint(self) -> str:
        """A short stable hash of the effective configuration, logged with every model run."""
        text = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]
