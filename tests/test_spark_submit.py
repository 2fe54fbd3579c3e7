"""The jobs run as separate processes: spark-submit in local mode, and the console script."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from portrait import io
from portrait.schemas import USER_PORTRAIT
from tests.conftest import REPO, config_environ, run_process

BIN = Path(sys.executable).parent


@pytest.mark.slow
def test_spark_submit_runs_the_daily_job_in_local_mode(spark, submitted_shop):
    _, cfg, result = submitted_shop
    assert result.returncode == 0, result.stderr[-4000:]
    assert "portrait daily run for 2026-11-20" in result.stdout
    assert "MLflow run id:" in result.stdout
    portrait = io.read_table(spark, cfg, USER_PORTRAIT)
    assert portrait.where(F.col("dt") == "2026-11-20").count() > 0


def test_console_script_rejects_a_malformed_date_before_starting_spark(tmp_path):
    result = run_process([str(BIN / "portrait"), "daily", "--date", "2026-13-01"], config_environ(tmp_path))
    assert result.returncode == 2
    assert "invalid date '2026-13-01'" in result.stderr


def test_console_script_reports_a_bad_config_key(tmp_path):
    result = run_process([str(BIN / "portrait"), "features", "--date", "2026-11-20"],
                  {**config_environ(tmp_path), "PORTRAIT__MODEL__REG_PARM": "1"})
    assert result.returncode == 2
    assert "environment variable PORTRAIT__MODEL__REG_PARM: key 'model.reg_parm': unknown key" in result.stderr


def test_console_script_reports_a_missing_input_table(tmp_path):
    result = run_process([str(BIN / "portrait"), "daily", "--no-generate", "--date", "2026-11-20"],
                  config_environ(tmp_path))
    assert result.returncode == 2, result.stderr[-2000:]
    assert "error: table 'clickstream' does not exist" in result.stderr
    assert not (tmp_path / "lakehouse" / "user_portrait").exists()


def test_every_job_file_is_a_cli_job_and_none_shadows_the_package():
    from portrait.commands import JOBS as _JOBS

    job_files = {p.stem for p in (REPO / "jobs").glob("*.py")}
    assert "portrait" not in job_files  # jobs/ is sys.path[0] under spark-submit: it would hide the package
    assert job_files <= set(_JOBS), job_files - set(_JOBS)
