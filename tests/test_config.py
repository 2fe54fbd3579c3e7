"""Configuration: every environment file loads; bad keys, types and values fail naming key and file."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, TypeAdapter
from pydantic_core import PydanticUndefined

from portrait.config import Config, ConfigError, load_config
from portrait.schemas import ALL_TABLES, EVENT_TYPES
from portrait.stages.train import target_config

CONF = Path(__file__).resolve().parents[1] / "conf"


@pytest.mark.parametrize("name", ["local", "dev", "prod"])
def test_every_environment_file_loads(name):
    cfg = load_config(CONF / f"{name}.yml", environ={})
    assert cfg.environment == name
    assert cfg.model.label_horizon_days == 7


def test_local_is_a_path_lakehouse_and_clusters_use_a_metastore():
    assert load_config(CONF / "local.yml", environ={}).lakehouse.path == ".portrait/lakehouse"
    prod = load_config(CONF / "prod.yml", environ={}).lakehouse
    assert (prod.path, prod.catalog, prod.schema_name) == (None, "portrait", "portrait")


def _write(tmp_path: Path, base: str, env: str) -> Path:
    (tmp_path / "base.yml").write_text(base, encoding="utf-8")
    env_file = tmp_path / "local.yml"
    env_file.write_text(env, encoding="utf-8")
    return env_file


BASE = "time_zone: Asia/Shanghai\nmlflow:\n  tracking_uri: sqlite:///x.db\n"
ENV = "environment: local\nlakehouse:\n  path: lake\n"


def test_environment_file_overrides_base_and_env_vars_override_both(tmp_path):
    env_file = _write(tmp_path, BASE + "model:\n  max_iter: 10\n", ENV + "model:\n  max_iter: 20\n")
    assert load_config(env_file, environ={}).model.max_iter == 20
    cfg = load_config(env_file, environ={"PORTRAIT__MODEL__MAX_ITER": "30", "PORTRAIT__SPARK__OPTIONS": "{a: b}"})
    assert cfg.model.max_iter == 30
    assert cfg.spark.options == {"a": "b"}


def test_unknown_key_names_the_key_and_the_file(tmp_path):
    env_file = _write(tmp_path, BASE, ENV + "model:\n  reg_parm: 0.1\n")
    with pytest.raises(ConfigError) as error:
        load_config(env_file, environ={})
    assert "model.reg_parm" in str(error.value)
    assert str(env_file) in str(error.value)
    assert "unknown key" in str(error.value)


def test_unknown_top_level_section_in_base_names_base(tmp_path):
    env_file = _write(tmp_path, BASE + "modle:\n  max_iter: 3\n", ENV)
    with pytest.raises(ConfigError, match=r"base\.yml: key 'modle': unknown key"):
        load_config(env_file, environ={})


def test_wrong_type_names_key_file_and_value(tmp_path):
    env_file = _write(tmp_path, BASE, ENV + "model:\n  max_iter: lots\n")
    with pytest.raises(ConfigError, match=r"local\.yml: key 'model\.max_iter'.*'lots'"):
        load_config(env_file, environ={})


def test_out_of_range_value_is_rejected(tmp_path):
    env_file = _write(tmp_path, BASE, ENV + "model:\n  label_horizon_days: 0\n")
    with pytest.raises(ConfigError, match="model.label_horizon_days"):
        load_config(env_file, environ={})


@pytest.mark.parametrize("targets", ["[purchase, purchase_0d]", "[purchase, purchase_366d]", "[purchase, buy_30d]",
                                     "[purchase_30d, purchase]", "[purchase, purchase_30d, purchase_30d]"])
def test_targets_are_purchase_first_then_churn_or_purchase_horizons_of_up_to_a_year(tmp_path, targets):
    env_file = _write(tmp_path, BASE, ENV + f"model:\n  targets: {targets}\n")
    with pytest.raises(ConfigError, match="model.targets"):
        load_config(env_file, environ={})


def test_a_purchase_horizon_target_trains_its_own_model_with_its_horizon(tmp_path):
    env_file = _write(tmp_path, BASE, ENV + "model:\n  targets: [purchase, churn, purchase_180d]\n")
    cfg = load_config(env_file, environ={})
    horizon = target_config(cfg, "purchase_180d")
    assert (horizon.model.name, horizon.model.label_horizon_days) == ("purchase_propensity_purchase_180d", 180)
    assert horizon.mlflow.experiment == f"{cfg.mlflow.experiment}_purchase_180d"


def test_missing_required_value_is_named(tmp_path):
    env_file = _write(tmp_path, "time_zone: Asia/Shanghai\n", ENV)
    with pytest.raises(ConfigError, match=r"key 'mlflow': missing value"):
        load_config(env_file, environ={})


def test_bad_environment_variable_is_named(tmp_path):
    env_file = _write(tmp_path, BASE, ENV)
    with pytest.raises(ConfigError, match="environment variable PORTRAIT__SPARK__SHUFFLE_PARTITIONS"):
        load_config(env_file, environ={"PORTRAIT__SPARK__SHUFFLE_PARTITIONS": "many"})


def test_unknown_time_zone_and_bad_table_name_are_rejected(tmp_path):
    env_file = _write(tmp_path, BASE, ENV + "time_zone: Mars/Olympus\n")
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Olympus'"):
        load_config(env_file, environ={})
    env_file = _write(tmp_path, BASE, ENV + "tables:\n  user_portrait: \"x; DROP TABLE y\"\n")
    with pytest.raises(ConfigError, match="tables.user_portrait"):
        load_config(env_file, environ={})


def test_lakehouse_needs_exactly_one_location(tmp_path):
    env_file = _write(tmp_path, BASE, "environment: local\nlakehouse:\n  path: a\n  schema: b\n")
    with pytest.raises(ConfigError, match="exactly one of 'path'"):
        load_config(env_file, environ={})


def test_missing_file_and_bad_yaml_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yml", environ={})
    env_file = _write(tmp_path, BASE, "environment: [local\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(env_file, environ={})


def test_fingerprint_is_stable_and_changes_with_the_config(tmp_path):
    env_file = _write(tmp_path, BASE, ENV)
    first = load_config(env_file, environ={}).fingerprint()
    assert first == load_config(env_file, environ={}).fingerprint()
    assert first != load_config(env_file, environ={"PORTRAIT__MODEL__SEED": "1"}).fingerprint()


# --------------------------------------------------------------------------- defaults live in the typed sections


def restated_defaults(data: Mapping, model: type[BaseModel], prefix: str = "") -> list[str]:
    """Dotted keys of ``data`` whose value equals the typed default of ``model``'s field (sections recursed)."""
    restated = []
    for key, value in data.items():
        name = next((n for n, f in model.model_fields.items() if (f.alias or n) == key), key)
        field = model.model_fields[name]
        section = field.annotation
        if isinstance(section, type) and issubclass(section, BaseModel) and isinstance(value, Mapping):
            restated += restated_defaults(value, section, f"{prefix}{key}.")
            continue
        default = field.get_default(call_default_factory=True)
        if default is not PydanticUndefined and TypeAdapter(field.annotation).validate_python(value) == default:
            restated.append(f"{prefix}{key}")
    return restated


def test_base_sets_only_what_differs_from_the_typed_defaults():
    base = yaml.safe_load((CONF / "base.yml").read_text(encoding="utf-8"))
    assert restated_defaults(base, Config) == [], "conf/base.yml restates these defaults; remove them"


def test_the_restated_default_check_compares_typed_values():
    data = {"model": {"max_iter": 100, "seed": 1, "tuning": {"reg_params": [0.01, 0.1]}},
            "features": {"price_tier_edges": [1 / 3, 2 / 3], "top_k": 6},
            "lakehouse": {"schema": None}, "ingest": {"min_event_date": "2000-01-01"}, "time_zone": "UTC"}
    assert restated_defaults(data, Config) == [
        "model.max_iter", "model.tuning.reg_params", "features.price_tier_edges", "lakehouse.schema",
        "ingest.min_event_date"]


def test_table_names_default_to_the_contract_names(tmp_path):
    env_file = _write(tmp_path, BASE, ENV)
    cfg = load_config(env_file, environ={"PORTRAIT__TABLES__USER_PORTRAIT": "portrait_v2"})
    assert {name: getattr(cfg.tables, name) for name in ALL_TABLES} == {
        **{name: name for name in ALL_TABLES}, "user_portrait": "portrait_v2"}
    assert set(cfg.tables.model_dump()) == set(ALL_TABLES)
    assert all(hasattr(cfg.tables, name) for name in ALL_TABLES) and not hasattr(cfg.tables, "nope")


def test_a_table_key_that_is_no_contract_is_unknown(tmp_path):
    env_file = _write(tmp_path, BASE, ENV + "tables:\n  clickstreem: events\n")
    with pytest.raises(ConfigError, match=r"local\.yml: key 'tables\.clickstreem': unknown key"):
        load_config(env_file, environ={})


def test_clusters_register_models_in_unity_catalog_beside_their_tables():
    for name in ("dev", "prod"):
        cfg = load_config(CONF / f"{name}.yml", environ={})
        assert cfg.mlflow.registry_uri == "databricks-uc"
        assert (cfg.mlflow.model_catalog, cfg.mlflow.model_schema) == (cfg.lakehouse.catalog, cfg.lakehouse.schema_name)
    local = load_config(CONF / "local.yml", environ={}).mlflow
    assert (local.registry_uri, local.model_catalog, local.model_schema) == (None, None, None)


@pytest.mark.parametrize(("extra", "message"), [
    ("mlflow:\n  model_catalog: main\n", "set both model_catalog and model_schema"),
    ("mlflow:\n  model_schema: portrait\n", "set both model_catalog and model_schema"),
    ("mlflow:\n  model_catalog: main\n  model_schema: \"a.b\"\n", r"key 'mlflow\.model_schema'.*plain SQL identifier"),
])
def test_model_catalog_and_schema_are_identifiers_set_together(tmp_path, extra, message):
    env_file = _write(tmp_path, BASE, ENV + extra)
    with pytest.raises(ConfigError, match=message):
        load_config(env_file, environ={})


def test_a_mapping_extends_its_typed_default_key_by_key(tmp_path):
    extra = "ingest:\n  generic:\n    event_types: {click: view}\n    mapping: {brand: null, user_id: uid}\n"
    env_file = _write(tmp_path, BASE, ENV + extra)
    cfg = load_config(env_file, environ={"PORTRAIT__FEATURES__AFFINITY_WEIGHTS__SEARCH": "0.5"})
    assert cfg.ingest.generic.event_types == {**{t: t for t in EVENT_TYPES}, "click": "view"}
    assert cfg.ingest.generic.mapping["brand"] is None and cfg.ingest.generic.mapping["user_id"] == "uid"
    assert cfg.ingest.generic.mapping["event_time"] == "event_time"
    assert cfg.features.affinity_weights == {"view": 1.0, "cart": 3.0, "fav": 2.0, "buy": 5.0, "search": 0.5}
