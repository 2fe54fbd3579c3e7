"""The bad-input catalogue: each kind of bad input gets a clear error (or quarantine) and nothing half-written.

Config, CLI and parameter kinds are tested here; bad data rows are quarantined by ingestion and tested
there (tests/test_ingest_formats.py, tests/test_ingest_end_to_end.py, tests/test_ingest_runs.py). The
catalogue with every kind and its test is in docs/SECURITY.md ("Bad input").
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from portrait import audit, cli, io, privacy
from portrait.config import ConfigError, load_config
from portrait.lakehouse import Lakehouse
from portrait.schemas import JOB_RUNS, ORDERS, USER_PORTRAIT
from portrait.stages import forget, operations
from tests.conftest import LOCAL_CONF, config_environ
from tests.privacy_helpers import DAY, portrait_rows

BASE = "time_zone: Asia/Shanghai\nmlflow:\n  tracking_uri: sqlite:///x.db\n"
ENV = "environment: local\nlakehouse:\n  path: lake\n"
INJECTION = "2026-11-01' OR '1'='1"


def _config(tmp_path: Path, extra: str, environ: dict[str, str] | None = None):
    (tmp_path / "base.yml").write_text(BASE, encoding="utf-8")
    env_file = tmp_path / "local.yml"
    env_file.write_text(ENV + extra, encoding="utf-8")
    return load_config(env_file, environ=environ or {})


# ------------------------------------------------------------------------------------------------ config


@pytest.mark.parametrize(
    ("kind", "extra", "message"),
    [
        ("unknown key", "privacy:\n  min_group_sise: 5\n", r"local\.yml: key 'privacy\.min_group_sise': unknown key"),
        ("wrong type", "privacy:\n  vacuum_retention_hours: a week\n",
         r"key 'privacy\.vacuum_retention_hours'.*'a week'"),
        ("out of range", "privacy:\n  noise_epsilon: 0\n", r"key 'privacy\.noise_epsilon'.*greater than 0"),
        ("negative retention", "privacy:\n  vacuum_retention_hours: -1\n", r"privacy\.vacuum_retention_hours"),
        ("backtick in lakehouse path", "lakehouse:\n  path: \"lake`; DROP TABLE x; --\"\n",
         r"key 'lakehouse\.path'.*without backticks"),
        ("backtick in table name", "tables:\n  user_portrait: \"x` ; DROP TABLE y; --\"\n",
         r"key 'tables\.user_portrait'.*plain identifier"),
        ("catalog injection", "lakehouse:\n  path: null\n  catalog: \"main; DROP SCHEMA s\"\n  schema: s\n",
         r"plain SQL identifier"),
        ("invalid regex", "identity:\n  excluded_pattern: \"(unclosed\"\n", r"identity\.excluded_pattern.*regular"),
    ],
)
def test_bad_configuration_names_the_key_and_the_file(tmp_path, kind, extra, message):
    with pytest.raises(ConfigError, match=message):
        _config(tmp_path, extra)


def test_lakehouse_path_that_is_a_file_is_refused(tmp_path):
    existing_file = tmp_path / "lake.txt"
    existing_file.write_text("x")
    with pytest.raises(ConfigError, match=r"key 'lakehouse\.path'.*exists and is not a directory"):
        _config(tmp_path, f"lakehouse:\n  path: {existing_file}\n")


def test_bad_environment_override_names_the_variable(tmp_path):
    with pytest.raises(ConfigError, match="environment variable PORTRAIT__PRIVACY__MIN_GROUP_SIZE"):
        _config(tmp_path, "", {"PORTRAIT__PRIVACY__MIN_GROUP_SIZE": "many"})


# --------------------------------------------------------------------------------------------------- CLI


@pytest.fixture
def env(tmp_path, monkeypatch) -> Path:
    """The CLI's configuration moved under tmp_path (no Spark is started by the argument checks)."""
    for name, value in config_environ(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(privacy.PSEUDONYM_KEY_ENV, "bad-input-test-key-0123456789")
    return tmp_path


def _cli(argv, capsys) -> tuple[int, str]:
    try:
        code = cli.main([*argv[:1], "--conf", str(LOCAL_CONF), *argv[1:]])
    except SystemExit as exit_:  # argparse refuses the arguments
        code = exit_.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["features", "--date", "2026-13-01"], "invalid date '2026-13-01': use YYYY-MM-DD"),
        (["features", "--date", "2026-02-30"], "invalid date '2026-02-30'"),
        (["daily", "--date", INJECTION], "invalid date \"2026-11-01' OR '1'='1\""),
        (["backfill", "--start", "2026-11-01", "--end", INJECTION], "invalid date"),
        (["backfill", "--start", "2026-11-05", "--end", "2026-11-01"], "ends before it starts"),
        (["ingest", "--format", "taobao", "--path", "x.csv", "--table", "user_portrait; DROP TABLE orders"],
         "invalid choice"),
        (["ingest", "--format", "csv2", "--path", "x.csv"], "invalid choice: 'csv2'"),
        (["forget"], "no id to erase"),
        (["forget", "--user", "", "--file", ""], "no id to erase"),
        (["forget", "--user", "u1\x00u2"], "the id contains control characters"),
        (["forget", "--user", "u" * 300], "300 characters long"),
        (["nosuchjob"], "invalid choice: 'nosuchjob'"),
    ],
    ids=["month-13", "february-30", "date-injection", "range-injection", "range-backwards", "table-injection",
         "unknown-format", "forget-nothing", "forget-blank", "forget-control-chars", "forget-too-long",
         "unknown-job"],
)
def test_bad_arguments_exit_2_with_a_message_and_write_nothing(env, capsys, argv, message):
    code, err = _cli(argv, capsys)
    assert code == cli.EXIT_USAGE
    assert message in err
    assert "Traceback" not in err
    assert not (env / "lakehouse").exists()  # rejected before anything was created


def test_a_missing_config_file_is_named(env, capsys):
    code = cli.main(["features", "--conf", str(env / "nope.yml")])
    assert code == cli.EXIT_USAGE
    assert f"config file {env / 'nope.yml'} does not exist" in capsys.readouterr().err


def test_a_request_file_that_is_missing_or_not_text_is_named(env, capsys):
    code, err = _cli(["forget", "--file", str(env / "ids.txt")], capsys)
    assert code == cli.EXIT_USAGE and f"--file {env / 'ids.txt'}: cannot read it" in err
    (env / "ids.bin").write_bytes(b"\xff\xfe\x00u1")
    code, err = _cli(["forget", "--file", str(env / "ids.bin")], capsys)
    assert code == cli.EXIT_USAGE and "cannot read it as UTF-8 text" in err
    assert not (env / "lakehouse").exists()


# ------------------------------------------------------------------------------- parameters reaching SQL


def test_an_injected_id_erases_only_the_row_holding_exactly_that_string(spark, cfg, monkeypatch):
    monkeypatch.setenv(privacy.PSEUDONYM_KEY_ENV, "bad-input-test-key-0123456789")
    io.replace_partition(spark, cfg, USER_PORTRAIT, portrait_rows(spark, ["u1", "u2", "x' OR '1'='1"]), DAY)
    report = forget.run(Lakehouse(spark, cfg), ["x' OR '1'='1", "u9') OR true --"], vacuum=False)
    assert report.rows_deleted == {"user_portrait": 1}
    assert sorted(r[0] for r in io.read_table(spark, cfg, USER_PORTRAIT).select("user_id").collect()) == ["u1", "u2"]


@pytest.mark.parametrize("day", ["2026-11-20' OR '1'='1", dt.datetime(2026, 11, 20, 1, 2), 20261120, None])
def test_a_partition_date_that_is_not_a_date_object_is_refused_before_writing(spark, cfg, day):
    with pytest.raises(TypeError, match="must be a datetime.date"):
        io.replace_partition(spark, cfg, USER_PORTRAIT, portrait_rows(spark, ["u1"]), day)
    assert not io.table_exists(spark, io.table_ref(cfg, USER_PORTRAIT))


def test_a_backwards_date_range_is_refused_before_writing(spark, cfg):
    with pytest.raises(ValueError, match="ends before it starts"):
        io.replace_date_range(spark, cfg, USER_PORTRAIT, portrait_rows(spark, ["u1"]), DAY, DAY - dt.timedelta(1))
    assert not io.table_exists(spark, io.table_ref(cfg, USER_PORTRAIT))


def test_merge_dates_must_be_date_objects(spark, cfg):
    rows = spark.createDataFrame([], ORDERS.schema)
    with pytest.raises(TypeError, match="days must be datetime.date objects"):
        io.merge_new_rows(spark, cfg, ORDERS, rows, days=[INJECTION])


def test_a_time_travel_version_must_be_a_number(spark, cfg):
    io.replace_partition(spark, cfg, USER_PORTRAIT, portrait_rows(spark, ["u1"]), DAY)
    with pytest.raises(ValueError, match="invalid literal for int"):
        io.read_table(spark, cfg, USER_PORTRAIT, version="0; DROP TABLE user_portrait")
    assert io.read_table(spark, cfg, USER_PORTRAIT).count() == 1


def test_an_injected_replay_run_id_matches_no_run(spark, cfg):
    with audit.recorded(Lakehouse(spark, cfg), "daily", DAY):
        pass
    with pytest.raises(operations.ReplayError, match="no succeeded daily run with run_id"), \
            operations.replay_portrait(Lakehouse(spark, cfg), "x' OR '1'='1"):
        pass
    assert io.read_table(spark, cfg, JOB_RUNS).where(F.col("job") == "daily").count() == 1
