"""Configuration: every environment file loads; bad keys, types and values fail naming key and file."""

from __future__ import annotations

from pathlib import Path

import pytest

from portrait.config import ConfigError, load_config

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
