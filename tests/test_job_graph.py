"""The bundle's job graph, run as the platform runs it, equals ``portrait daily``.

Each task of the bundle's daily job and then of its weekly job (``resources/*.yml``) runs as a process of its
own with the task's own parameters, in dependency order, on a fresh lakehouse and MLflow registry; the day's
events arrive as files in the landing folder the ingest task reads. ``portrait daily`` (the same graph in one
process) runs on a copy of the same inputs and files. Both must publish the same ``user_portrait``; the first
run has no champion to score with, every task leaves its ``job_runs`` row, and the bundle's run replays.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import mlflow
import pyarrow.compute as pc
import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from portrait import graph, io
from portrait.cli import main
from portrait.generate import generate_tables
from portrait.lakehouse import Lakehouse
from portrait.model import tracking
from portrait.schemas import CLICKSTREAM, INPUT_TABLES, JOB_RUNS, ORDERS, USER_PORTRAIT
from portrait.stages.ingest import Source
from tests.conftest import FAST_MODEL, LOCAL_CONF, config_environ, make_config, run_process
from tests.ingest_helpers import write_format_files
from tests.test_bundle import (
    BUNDLE_REF,
    DYNAMIC_REF,
    _bundle_values,
    _run_values,
    _substitute,
    _task_order,
    load_bundle,
)

pytestmark = pytest.mark.slow

RUN_DATE = dt.date(2026, 11, 20)
SHOP = {**FAST_MODEL, "INGEST__GENERIC__FILE_FORMAT": "parquet"}
COMMIT = "bundle-test-commit"
PORTRAIT_SCRIPT = Path(__import__("sys").executable).parent / "portrait"


def _inputs_and_landing(spark, cfg, landing: Path) -> None:
    """Generated tables up to the day before ``RUN_DATE``; the events of ``RUN_DATE`` land as generic files."""
    tables = generate_tables(users=150, days=30, end_date=RUN_DATE, seed=23)
    lake = Lakehouse(spark, cfg)
    for contract in INPUT_TABLES:
        table = tables[contract.name]
        if contract in (CLICKSTREAM, ORDERS):
            table = table.filter(pc.less(table["dt"], RUN_DATE))
        lake.overwrite(contract, spark.createDataFrame(table))
    day = tables[CLICKSTREAM.name].filter(pc.equal(tables[CLICKSTREAM.name]["dt"], RUN_DATE))
    write_format_files(day, "generic", landing / RUN_DATE.isoformat())


def _task_argv(bundle: dict, job_key: str, task: dict, landing: Path) -> list[str]:
    """The task's parameters as the platform passes them; the configuration is conf/local.yml (the test
    environment moves its lakehouse and MLflow store) and the landing folder is this test's."""
    values = {**_bundle_values(bundle, "dev"), "bundle.target": "local", "var.landing_format": "generic",
              "var.landing_path": str(landing)}
    job = bundle["resources"]["jobs"][job_key]
    run_values = {**_run_values(job, values, job_key), "job.parameters.run_date": RUN_DATE.isoformat(),
                  "job.parameters.git_commit": COMMIT}
    where = f"{job_key}.{task['task_key']}"
    return [_substitute(_substitute(arg, values, BUNDLE_REF, where), run_values, DYNAMIC_REF, where)
            for arg in task["python_wheel_task"]["parameters"]]


@pytest.fixture(scope="module")
def two_shops(spark, tmp_path_factory):
    """(bundle shop root, its config, portrait daily's config): the same inputs and landed files, run once by
    the bundle's tasks as processes and once by ``portrait daily``."""
    root = tmp_path_factory.mktemp("graph")
    landing = root / "landing"
    daily_cfg = make_config(root / "daily", **SHOP)
    _inputs_and_landing(spark, daily_cfg, landing)
    bundle_root = root / "bundle"
    shutil.copytree(root / "daily" / "lakehouse", bundle_root / "lakehouse")
    bundle_cfg = make_config(bundle_root, **SHOP)

    bundle = load_bundle()
    for job_key in ("portrait_daily", "portrait_weekly_training"):
        for task in _task_order(bundle["resources"]["jobs"][job_key]):
            argv = _task_argv(bundle, job_key, task, landing)
            assert argv[argv.index("--conf") + 1] == str(LOCAL_CONF)
            result = run_process([str(PORTRAIT_SCRIPT), *argv], config_environ(bundle_root, **SHOP))
            assert result.returncode == 0, f"task {task['task_key']}: {result.stderr[-4000:]}"

    graph.run_daily(Lakehouse(spark, daily_cfg), RUN_DATE, generate_if_missing=False, git_commit=COMMIT,
                    source=Source("generic", str(landing / RUN_DATE.isoformat())))
    return bundle_root, bundle_cfg, daily_cfg


def _portrait(spark, cfg):
    # The MLflow run ids differ between the two registries; everything else must not.
    return io.read_table(spark, cfg, USER_PORTRAIT).where(F.col("dt") == F.lit(RUN_DATE)).drop("model_run_id")


def test_the_bundle_tasks_publish_the_same_portrait_as_portrait_daily(spark, two_shops):
    _, bundle_cfg, daily_cfg = two_shops
    published = _portrait(spark, bundle_cfg)
    assert published.count() > 100
    assertDataFrameEqual(published, _portrait(spark, daily_cfg), rtol=0.0, atol=0.0)


def test_the_first_run_trained_the_champion_it_scored_with_and_every_task_left_its_row(spark, two_shops):
    _, bundle_cfg, _ = two_shops
    runs = io.read_table(spark, bundle_cfg, JOB_RUNS).collect()
    assert sorted((r["job"], r["status"], r["git_commit"]) for r in runs) == sorted(
        (task, "succeeded", COMMIT) for task in (*graph.DAILY, *graph.WEEKLY))
    score_run = next(r for r in runs if r["job"] == "score")
    tracking.use_experiment(bundle_cfg)  # the bundle shop's tracking server and registry, not the last one used
    versions = mlflow.MlflowClient().search_model_versions(f"name = '{bundle_cfg.model.name}'")
    # The score task found no champion, trained version 1 and scored with it; the weekly job added version 2.
    first = next(v for v in versions if str(v.version) == "1")
    assert score_run["mlflow_run_id"] == first.run_id
    assert sorted(str(v.version) for v in versions) == ["1", "2"]
    assert tracking.champion_version(bundle_cfg) is not None


def test_a_bundle_run_replays_exactly(spark, two_shops, monkeypatch, capsys):
    bundle_root, bundle_cfg, _ = two_shops
    run_id = io.read_table(spark, bundle_cfg, JOB_RUNS).where(F.col("job") == "score").first()["run_id"]
    for name, value in config_environ(bundle_root, **SHOP).items():
        monkeypatch.setenv(name, value)
    assert main(["replay", "--conf", str(LOCAL_CONF), "--run-id", run_id]) == 0
    assert ", 0 differ from the published portrait" in capsys.readouterr().out
