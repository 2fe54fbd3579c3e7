"""Operations: every job leaves a job_runs row; backfills resume; a past portrait replays exactly."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from portrait import audit, graph, io
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
    cfg = make_config(tmp_path_factory.mktemp("ops"), GENERATE__USERS="300", GENERATE__DAYS="35", **FAST_MODEL)
    ingest.generate(Lakehouse(spark, cfg), end_date=DAYS[-1])
    return cfg


def _runs(spark, cfg):
    """The runs of the daily job as a whole (each of its tasks records a row of its own too)."""
    return io.read_table(spark, cfg, JOB_RUNS).where(F.col("job") == "daily").orderBy("started_at").collect()


def test_backfill_stops_at_a_failure_and_the_rerun_resumes_there(spark, shop, monkeypatch):
    cfg = shop
    real_compute = feature_stage.compute

    def failing_on_day_two(lake, day, *args, **kwargs):
        if day == DAYS[1]:
            raise RuntimeError("injected failure on day two")
        return real_compute(lake, day, *args, **kwargs)

    monkeypatch.setattr(feature_stage, "compute", failing_on_day_two)
    with pytest.raises(graph.BackfillError, match=f"{DAYS[1]}.*injected failure"):
        graph.backfill(Lakehouse(spark, cfg), DAYS[0], DAYS[-1])
    runs = _runs(spark, cfg)
    assert [(r["run_date"], r["status"]) for r in runs] == [(DAYS[0], "succeeded"), (DAYS[1], "failed")]
    assert "injected failure on day two" in runs[1]["error_message"]
    written = io.read_table(spark, cfg, USER_PORTRAIT).select("dt").distinct().collect()
    assert {r["dt"] for r in written} == {DAYS[0]}
    day_one = io.read_table(spark, cfg, USER_PORTRAIT).where(F.col("dt") == F.lit(DAYS[0]).cast("date"))
    day_one_rows = day_one.collect()

    monkeypatch.setattr(feature_stage, "compute", real_compute)
    done = graph.backfill(Lakehouse(spark, cfg), DAYS[0], DAYS[-1])
    assert done == DAYS[1:]  # day one was not redone
    runs = _runs(spark, cfg)
    assert [(r["run_date"], r["status"]) for r in runs] == [
        (DAYS[0], "succeeded"), (DAYS[1], "failed"), (DAYS[1], "succeeded"), (DAYS[2], "succeeded")]
    portrait = io.read_table(spark, cfg, USER_PORTRAIT)
    assert {r["dt"] for r in portrait.select("dt").distinct().collect()} == set(DAYS)
    # Later dates add partitions and leave the earlier one exactly as it was.
    assertDataFrameEqual(portrait.where(F.col("dt") == F.lit(DAYS[0]).cast("date")),
                         spark.createDataFrame(day_one_rows, day_one.schema), rtol=0.0, atol=0.0)
    assert portrait.groupBy("user_id", "dt").count().where("count > 1").count() == 0
    checks = io.read_table(spark, cfg, MONITORING)
    volume = {r["dt"]: r["value"] for r in checks.where(F.col("check") == "volume").collect()}
    assert set(volume) == set(DAYS)
    drift_days = {r["dt"] for r in checks.where((F.col("check") == "psi") & (F.col("reference") == "previous day"))
                  .select("dt").distinct().collect()}
    assert drift_days == set(DAYS[1:])  # day one has no previous portrait day
    assert checks.where(F.col("check") == "score_psi").count() == 2
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


def test_replaying_a_date_from_job_runs_reproduces_its_portrait(spark, shop):
    cfg = shop
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
