"""The bundle's job graph, run as the platform runs it, equals ``portrait daily``.

The process shop (tests/shops.py) ran each task of the bundle's daily job and then of its weekly job as a
process of its own, with the task's own parameters, in dependency order, on a fresh lakehouse and MLflow
registry, the day's events arriving as files in its landing folder. ``portrait daily`` (the same graph in one
process) runs here on a copy of the same inputs and files. Both must publish the same ``user_portrait``; the
first run has no champion to score with, every task leaves its ``job_runs`` row, and the bundle's run replays.
"""

from __future__ import annotations

import shutil

import mlflow
import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from portrait import graph, io
from portrait.cli import main
from portrait.lakehouse import Lakehouse
from portrait.model import tracking
from portrait.schemas import JOB_RUNS, USER_PORTRAIT
from portrait.stages.ingest import Source
from tests.conftest import LOCAL_CONF, make_config
from tests.shops import COMMIT, RUN_DATE, SHOP

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_shops(spark, process_shop, tmp_path_factory):
    """(the process shop, portrait daily's config): the same inputs and landed files, run once by the
    bundle's tasks as processes and once here by ``portrait daily``."""
    root = tmp_path_factory.mktemp("graph")
    shutil.copytree(process_shop.inputs, root / "lakehouse")
    daily_cfg = make_config(root, **SHOP)
    graph.run_daily(Lakehouse(spark, daily_cfg), RUN_DATE, generate_if_missing=False, git_commit=COMMIT,
                    source=Source("generic", str(process_shop.landing / RUN_DATE.isoformat())))
    return process_shop, daily_cfg


def _portrait(spark, cfg):
    # The MLflow run ids differ between the two registries; everything else must not.
    return io.read_table(spark, cfg, USER_PORTRAIT).where(F.col("dt") == F.lit(RUN_DATE)).drop("model_run_id")


def test_the_bundle_tasks_publish_the_same_portrait_as_portrait_daily(spark, two_shops):
    shop, daily_cfg = two_shops
    published = _portrait(spark, shop.cfg)
    assert published.count() > 100
    assertDataFrameEqual(published, _portrait(spark, daily_cfg), rtol=0.0, atol=0.0)


def test_the_first_run_trained_the_champion_it_scored_with_and_every_task_left_its_row(spark, two_shops):
    bundle_cfg = two_shops[0].cfg
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
    shop = two_shops[0]
    run_id = io.read_table(spark, shop.cfg, JOB_RUNS).where(F.col("job") == "score").first()["run_id"]
    for name, value in shop.environ().items():
        monkeypatch.setenv(name, value)
    assert main(["replay", "--conf", str(LOCAL_CONF), "--run-id", run_id]) == 0
    assert ", 0 differ from the published portrait" in capsys.readouterr().out
