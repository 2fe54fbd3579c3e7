"""Operations: every job leaves a job_runs row; backfills resume; a past portrait replays exactly."""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from portrait import audit, graph, io
from portrait.config import Config
from portrait.lakehouse import Lakehouse
from portrait.schemas import INPUT_TABLES, JOB_RUNS, MONITORING, USER_FEATURES, USER_PORTRAIT
from portrait.stages import features as feature_stage
from portrait.stages import ingest, operations
from tests.conftest import FAST_MODEL, make_config

pytestmark = pytest.mark.slow

DAY1 = dt.date(2026, 11, 18)
DAYS = [DAY1 + dt.timedelta(days=k) for k in range(3)]


@pytest.fixture(scope="module")
def shop(spark, tmp_path_factory):
    cfg = make_config(tmp_path_factory.mktemp("ops"), GENERATE__USERS="1000", GENERATE__DAYS="35", **FAST_MODEL)
    ingest.generate(Lakehouse(spark, cfg), end_date=DAYS[-1])
    return cfg


def _runs(spark, cfg):
    """The runs of the daily job as a whole (each of its tasks records a row of its own too)."""
    return io.read_table(spark, cfg, JOB_RUNS).where(F.col("job") == "daily").orderBy("started_at").collect()


class Backfilled(NamedTuple):
    cfg: Config
    runs_after_failure: list
    portrait_dates_after_failure: set
    day_one_rows: list          # day one's portrait rows after the failed backfill
    day_one_schema: object
    resumed: list               # the dates the second backfill ran
    runs: list                  # the daily runs after it
    checks: list                # the monitoring rows after it


@pytest.fixture(scope="module")
def backfilled(spark, shop):
    """A backfill of DAYS that fails on day two (an injected error), then the same backfill again."""
    real_compute = feature_stage.compute

    def failing_on_day_two(lake, day, *args, **kwargs):
        if day == DAYS[1]:
            raise RuntimeError("injected failure on day two")
        return real_compute(lake, day, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(feature_stage, "compute", failing_on_day_two)
        with pytest.raises(graph.BackfillError, match=f"{DAYS[1]}.*injected failure"):
            graph.backfill(Lakehouse(spark, shop), DAYS[0], DAYS[-1])
    portrait = io.read_table(spark, shop, USER_PORTRAIT)
    day_one = portrait.where(F.col("dt") == F.lit(DAYS[0]).cast("date"))
    failed = Backfilled(shop, _runs(spark, shop), {r["dt"] for r in portrait.select("dt").distinct().collect()},
                        day_one.collect(), day_one.schema, [], [], [])
    resumed = graph.backfill(Lakehouse(spark, shop), DAYS[0], DAYS[-1])
    return failed._replace(resumed=resumed, runs=_runs(spark, shop),
                           checks=io.read_table(spark, shop, MONITORING).collect())


def test_backfill_stops_at_a_failure_and_the_rerun_resumes_there(spark, backfilled):
    cfg = backfilled.cfg
    runs = backfilled.runs_after_failure
    assert [(r["run_date"], r["status"]) for r in runs] == [(DAYS[0], "succeeded"), (DAYS[1], "failed")]
    assert "injected failure on day two" in runs[1]["error_message"]
    assert backfilled.portrait_dates_after_failure == {DAYS[0]}

    assert backfilled.resumed == DAYS[1:]  # day one was not redone
    runs = backfilled.runs
    assert [(r["run_date"], r["status"]) for r in runs] == [
        (DAYS[0], "succeeded"), (DAYS[1], "failed"), (DAYS[1], "succeeded"), (DAYS[2], "succeeded")]
    portrait = io.read_table(spark, cfg, USER_PORTRAIT)
    assert {r["dt"] for r in portrait.select("dt").distinct().collect()} == set(DAYS)
    # Later dates add partitions and leave the earlier one exactly as it was.
    assertDataFrameEqual(portrait.where(F.col("dt") == F.lit(DAYS[0]).cast("date")),
                         spark.createDataFrame(backfilled.day_one_rows, backfilled.day_one_schema),
                         rtol=0.0, atol=0.0)
    assert portrait.groupBy("user_id", "dt").count().where("count > 1").count() == 0
    checks = backfilled.checks
    assert {r["dt"] for r in checks if r["check"] == "volume"} == set(DAYS)
    drift_days = {r["dt"] for r in checks if r["check"] == "psi" and r["reference"] == "previous day"}
    assert drift_days == set(DAYS[1:])  # day one has no previous portrait day
    assert sum(1 for r in checks if r["check"] == "score_psi") == 2
    features = io.read_table(spark, cfg, USER_FEATURES)
    for run in runs:
        if run["status"] == "succeeded":
            on_date = F.col("dt") == F.lit(run["run_date"]).cast("date")
            assert run["rows_in"] == features.where(on_date).count() > 0
            assert run["rows_out"] == portrait.where(on_date).count() > 0
            assert run["mlflow_run_id"]
            assert set(run["input_versions"]) >= {"clickstream", "orders"}
            assert run["output_versions"]["user_portrait"] >= 0
            assert run["config_fingerprint"] == cfg.fingerprint()


def test_a_backwards_range_is_refused(spark, shop):
    with pytest.raises(ValueError, match="ends before it starts"):
        graph.backfill(Lakehouse(spark, shop), DAYS[2], DAYS[0])


def test_rerunning_a_date_leaves_identical_content(spark, backfilled):
    cfg = backfilled.cfg
    latest = F.col("dt") == F.lit(DAYS[-1]).cast("date")
    table_rows_before = io.read_table(spark, cfg, USER_PORTRAIT).count()
    version_before = io.table_version(spark, cfg, USER_PORTRAIT)
    before = io.read_table(spark, cfg, USER_PORTRAIT).where(latest).drop("model_run_id", "model_version")
    before_rows = before.collect()
    rerun = graph.run_daily(Lakehouse(spark, cfg), DAYS[-1], generate_if_missing=False)
    after = io.read_table(spark, cfg, USER_PORTRAIT).where(latest).drop("model_run_id", "model_version")
    # A re-run replaces its date's partition in one commit, it adds none.
    assert io.read_table(spark, cfg, USER_PORTRAIT).count() == table_rows_before > len(before_rows) > 0
    assert rerun.portrait_rows == len(before_rows)
    assert rerun.table_versions["user_portrait"] == version_before + 1
    assertDataFrameEqual(after, spark.createDataFrame(before_rows, before.schema), rtol=0.0, atol=0.0)


def test_replaying_a_date_from_job_runs_reproduces_its_portrait(spark, backfilled):
    cfg = backfilled.cfg
    run = next(r for r in reversed(_runs(spark, cfg)) if r["status"] == "succeeded" and r["run_date"] == DAYS[0])
    stored = io.read_table(spark, cfg, USER_PORTRAIT, version=run["output_versions"]["user_portrait"])
    cached_before = _persisted_rdds(spark)
    with operations.replay_portrait(Lakehouse(spark, cfg), run["run_id"]) as replayed:
        assertDataFrameEqual(replayed, stored.where(F.col("dt") == F.lit(DAYS[0]).cast("date")),
                             rtol=0.0, atol=0.0)
        assert _persisted_rdds(spark) > cached_before  # the scored rows, read for cut points and assembly
    assert _persisted_rdds(spark) == cached_before, "the replay left its scored rows cached"


def _persisted_rdds(spark) -> int:
    """Cached DataFrames' RDDs; Delta's own cached log states (one per table version read) are not counted."""
    rdds = spark.sparkContext._jsc.getPersistentRDDs()
    return sum(1 for key in rdds.keySet() if not str(rdds.get(key).name()).startswith("Delta Table State"))


def test_job_runs_records_the_git_commit_from_the_environment(spark, cfg, monkeypatch):
    monkeypatch.setenv(audit.GIT_COMMIT_ENV, "abc123")
    with pytest.raises(KeyError), audit.recorded(Lakehouse(spark, cfg), "features", DAY1):
        raise KeyError("no such table")
    (row,) = io.read_table(spark, cfg, JOB_RUNS).collect()
    assert (row["job"], row["status"], row["git_commit"]) == ("features", "failed", "abc123")
    assert row["error_message"].startswith("KeyError")
    assert row["ended_at"] >= row["started_at"]


def test_a_backfill_never_generates_data(spark, tmp_path):
    lake = Lakehouse(spark, make_config(tmp_path))
    with pytest.raises(graph.BackfillError, match=f"stopped at {DAY1}.*table 'clickstream' does not exist"):
        graph.backfill(lake, DAY1, DAY1)
    assert not any(lake.exists(contract) for contract in INPUT_TABLES)
