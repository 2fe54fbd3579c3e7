"""One typed, validated configuration for every job.

A run's configuration is ``conf/base.yml`` with an environment file laid over it (``conf/local.yml``,
``conf/dev.yml`` or ``conf/prod.yml``), then environment variables of the form
``PORTRAIT__SECTION__KEY=value`` laid over that (values are parsed as YAML scalars, so ``8``, ``0.5``,
``true`` and ``[7, 30]`` keep their types). The merged mapping is validated once into :class:`Config`; an
unknown key, a wrong type or a missing value is a :class:`ConfigError` naming the key and the file (or
variable) it came from.

Every default lives in the typed sections here, and only here: the YAML files set what differs from them.
Modules: ``base`` (error, section base), ``lakehouse`` (location, table names, maintenance), ``features``,
``model`` (models, tuning, MLflow), ``ingest`` (ingestion, identity), ``tags`` (the registry's entries),
``operations`` (Spark, synthetic data, monitoring, privacy, publishing, BI), ``root`` (:class:`Config`) and
``loader`` (:func:`load_config`).

Example::

    cfg = load_config("conf/local.yml")
    cfg.tables.clickstream          # "clickstream"
"""

from __future__ import annotations

from portrait.config.base import ConfigError, check_identifier
from portrait.config.features import FeaturesConfig, LifecycleRules
from portrait.config.ingest import GENERIC_TARGET_FIELDS, GenericFormatConfig, IdentityConfig, IngestConfig
from portrait.config.lakehouse import LakehouseConfig, MaintenanceConfig, TablesConfig
from portrait.config.loader import BASE_FILE_NAME, ENV_PREFIX, load_config
from portrait.config.model import MlflowConfig, ModelConfig, TuningConfig, ValueConfig
from portrait.config.operations import (
    BiConfig,
    GenerateConfig,
    MonitoringConfig,
    PrivacyConfig,
    PublishConfig,
    SparkConfig,
)
from portrait.config.root import Config
from portrait.config.tags import TAG_CODE, TagDefinition, check_tag_hierarchy

__all__ = [
    "BASE_FILE_NAME", "ENV_PREFIX", "GENERIC_TARGET_FIELDS", "TAG_CODE", "BiConfig", "Config", "ConfigError",
    "FeaturesConfig", "GenerateConfig", "GenericFormatConfig", "IdentityConfig", "IngestConfig", "LakehouseConfig",
    "LifecycleRules", "MaintenanceConfig", "MlflowConfig", "ModelConfig", "MonitoringConfig", "PrivacyConfig",
    "PublishConfig", "SparkConfig", "TablesConfig", "TagDefinition", "TuningConfig", "ValueConfig", "check_identifier",
    "check_tag_hierarchy", "load_config",
]
