"""The daily job on a real multi-process Spark standalone cluster gives the local-mode result.

A master and two workers run as separate JVMs on loopback (pip pyspark's ``spark-class``); the job is
submitted with ``--master spark://…``, its code shipped with ``--py-files`` and Delta with ``--jars``. Executors
share no memory with the driver, so anything that relied on driver-local state would fail or differ.

The cluster runs the daily job through the backfill entry point (``jobs/backfill.py``), so one cluster run
also covers what a separate spark-submit of the backfill job would: its arguments, its summary line and the
git commit it records (its resume logic is tested in-process, in ``tests/test_operations.py``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from portrait import io
from portrait.schemas import INGEST_TABLES, INPUT_TABLES, JOB_RUNS, USER_PORTRAIT
from portrait.spark import submit_args
from tests.conftest import LOCAL_CONF, REPO, config_environ, make_config
from tests.net_helpers import free_port
from tests.shops import RUN_DATE as SHOP_DATE
from tests.shops import SHOP

pytestmark = pytest.mark.slow

RUN_DATE = SHOP_DATE.isoformat()

BIN = Path(sys.executable).parent


def _wait_for_port(port: int, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


@pytest.fixture(scope="module")
def standalone_master(tmp_path_factory):
    """A master and two single-core workers on loopback; yields the master URL, stops them after."""
    work = tmp_path_factory.mktemp("standalone")
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
           "SPARK_LOG_DIR": str(work / "logs"), "SPARK_WORKER_DIR": str(work / "workers")}
    port = free_port()
    url = f"spark://127.0.0.1:{port}"
    spark_class = str(BIN / "spark-class")
    processes = [subprocess.Popen(
        [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
         "--webui-port", str(free_port())],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )]
    try:
        _wait_for_port(port)
        for index in range(2):
            processes.append(subprocess.Popen(
                [spark_class, "org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1",
                 "--cores", "1", "--memory", "2g", "--webui-port", str(free_port()),
                 "--work-dir", str(work / f"worker-{index}")],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))
        time.sleep(5)  # workers register with the master
        yield url, work
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _package_zip(folder: Path) -> Path:
    archive = folder / "portrait.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for source in (REPO / "portrait").rglob("*.py"):
            zipped.write(source, source.relative_to(REPO))
    return archive


def test_daily_job_on_a_standalone_cluster_matches_local_mode(spark, standalone_master, process_shop, tmp_path):
    """The cluster runs the daily job on a copy of the process shop's input tables (its landed day
    included); the local-mode portrait to match is that shop's own (same input, configuration and seeds).

    The cluster's job compiles its queries as production does; the local shop's, like every other test
    process, interprets them (``INTERPRETED_SPARK_OPTIONS``), so the match also covers both ways of running.

    The cluster scores with the local shop's champion (a copy of its registry; the cluster's own runs go to an
    experiment of their own): training the same model again on the cluster would double the test's time, and
    what executors can get wrong (shipped code, Python workers, features and scores computed away from the
    driver) is in the scoring run.
    """
    url, work = standalone_master
    local_cfg = process_shop.cfg
    cluster_root = tmp_path / "cluster"
    cluster_shop = {**SHOP, "MLFLOW__EXPERIMENT": "portrait-cluster"}
    cluster_cfg = make_config(cluster_root, **cluster_shop)
    cluster_root.mkdir()
    shutil.copyfile(process_shop.root / "mlflow.db", cluster_root / "mlflow.db")
    for contract in INPUT_TABLES + INGEST_TABLES:  # the ingest task's identity graph too
        source = Path(io.table_ref(local_cfg, contract).path)
        if source.exists():
            shutil.copytree(source, io.table_ref(cluster_cfg, contract).path)
    environ = {**os.environ, **config_environ(cluster_root, **cluster_shop, SPARK__OPTIONS="{}"),
               "PYSPARK_PYTHON": sys.executable}
    command = [
        str(BIN / "spark-submit"), "--master", url, "--total-executor-cores", "2", "--executor-memory", "1g",
        "--py-files", str(_package_zip(work)), *submit_args(driver_memory="2g"),
        # Two single-core executors: Delta's default of 50 tasks per table-state rebuild (every read and
        # commit) is pure scheduling overhead here. portrait sets 2 itself in local mode; results do not
        # depend on it.
        "--conf", "spark.databricks.delta.snapshotPartitions=2",
        str(REPO / "jobs" / "backfill.py"), "--conf", str(LOCAL_CONF), "--start", RUN_DATE,
        "--end", RUN_DATE, "--git-commit", "test-commit",
    ]
    result = subprocess.run(command, cwd=REPO, env=environ, capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stderr[-4000:]
    assert f"backfill {RUN_DATE}..{RUN_DATE}: ran 1 date(s)" in result.stdout
    # The daily run as a whole; each of its tasks records a row of its own too.
    runs = (io.read_table(spark, cluster_cfg, JOB_RUNS).where(F.col("job") == "daily")
            .select("job", "run_date", "status", "git_commit").collect())
    assert [(r[0], str(r[1]), r[2], r[3]) for r in runs] == [("daily", RUN_DATE, "succeeded", "test-commit")]
    executors_used = list((work / "worker-0").glob("app-*")) + list((work / "worker-1").glob("app-*"))
    assert executors_used, "the job ran no executor on the standalone workers"

    def portrait(cfg):
        return (io.read_table(spark, cfg, USER_PORTRAIT).where(F.col("dt") == RUN_DATE)
                .orderBy("user_id").collect())

    cluster_rows, local_rows = portrait(cluster_cfg), portrait(local_cfg)
    assert local_rows and [r["user_id"] for r in cluster_rows] == [r["user_id"] for r in local_rows]
    for cluster_row, local_row in zip(cluster_rows, local_rows, strict=True):
        # The same model (the champion: the first version, or the weekly job's retraining of it on the same rows,
        # which the promotion gate takes on an equal AUC); compiled and interpreted arithmetic may differ in the
        # last bits.
        assert cluster_row["purchase_propensity"] == pytest.approx(local_row["purchase_propensity"], abs=1e-6)
        for column in ("lifecycle_stage", "rfm_segment", "recency_score", "frequency_score", "monetary_score",
                       "top_category", "feature_dt", "dt"):
            assert cluster_row[column] == local_row[column], (column, cluster_row["user_id"])
    same_decile = sum(c["propensity_decile"] == lo["propensity_decile"] for c, lo in zip(cluster_rows, local_rows, strict=True))
    assert same_decile >= 0.98 * len(local_rows)
