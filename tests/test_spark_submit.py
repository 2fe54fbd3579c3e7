"""The jobs run as separate processes: spark-submit in local mode, and the console script."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from portrait import io
from portrait.schemas import USER_PORTRAIT
from tests.conftest import REPO, config_environ, run_process
from tests.shops import RUN_DATE, SUBMITTED_TASK

BIN = Path(sys.executable).parent


@pytest.mark.slow
def test_spark_submit_runs_a_job_in_local_mode(spark, process_shop):
    """The process shop's score task ran as ``spark-submit --master local[2] jobs/score.py`` (tests/shops.py):
    with no champion yet it trained one, scored with it and published the day."""
    result = process_shop.runs[SUBMITTED_TASK]
    assert result.args[0].endswith("spark-submit") and str(REPO / "jobs" / "score.py") in result.args
    rows = io.read_table(spark, process_shop.cfg, USER_PORTRAIT).where(F.col("dt") == F.lit(RUN_DATE)).count()
    assert rows > 100
    assert f"user_portrait {RUN_DATE}: {rows:,} rows scored with models:/" in result.stdout, result.stdout


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
