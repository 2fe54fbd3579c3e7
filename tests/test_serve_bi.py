"""The SQL endpoint for BI tools and a non-Spark reader, on a small real lakehouse.

``portrait serve-bi`` runs as its own process (its own Spark application with the Thrift Server); a real
HiveServer2 client (PyHive) queries it and must get the aggregates Spark computes from the same Delta
folders. delta-rs (``deltalake``), which shares no code with Spark, must read the same portrait rows.

The lakehouse is the process shop's (tests/shops.py: the bundle's tasks run as processes): its BI tables come
from the jobs as scheduled, and no second shop is built for reading it.
"""

from __future__ import annotations

import math
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from pyspark.sql import Row
from pyspark.sql import functions as F

from portrait import io
from portrait.schemas import PORTRAIT_LATEST, SEGMENT_DAILY, USER_PORTRAIT
from tests.conftest import LOCAL_CONF
from tests.shops import RUN_DATE

pytestmark = pytest.mark.slow

SERVER_START_SECONDS = 300


@pytest.fixture(scope="module")
def lakehouse(process_shop):
    """The process shop (tests/shops.py): features, model, portrait and BI tables of its run date."""
    return process_shop.root, process_shop.cfg


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(lakehouse, process_shop, tmp_path_factory):
    """``portrait serve-bi`` on a free port, started from an empty working directory; yields the port."""
    root, _ = lakehouse
    port = _free_port()
    workdir = tmp_path_factory.mktemp("serve_cwd")
    environ = {**os.environ, **process_shop.environ(SPARK__DRIVER_MEMORY="1g", SPARK__MASTER="local[1]")}
    log_path = workdir.parent / "serve-bi.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "portrait.cli", "serve-bi", "--conf", str(LOCAL_CONF), "--port", str(port)],
            cwd=workdir, env=environ, stdout=subprocess.PIPE, stderr=log, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    try:
        try:
            ready = lines.get(timeout=SERVER_START_SECONDS)
        except queue.Empty:
            pytest.fail(f"serve-bi did not start in {SERVER_START_SECONDS} s:\n{log_path.read_text()[-3000:]}")
        assert f"jdbc:hive2://127.0.0.1:{port}/portrait" in ready, log_path.read_text()[-3000:]
        yield port, workdir
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _query(port: int, sql: str) -> list[tuple]:
    from pyhive import hive

    connection = hive.connect(host="127.0.0.1", port=port, database="portrait", username="analyst")
    try:
        cursor = connection.cursor()
        cursor.execute(sql)
        return cursor.fetchall()
    finally:
        connection.close()


def _close(actual: list[tuple], expected: list[tuple]) -> bool:
    return len(actual) == len(expected) and all(
        len(a) == len(e) and all(
            math.isclose(x, y, rel_tol=1e-9) if isinstance(y, float) else x == y for x, y in zip(a, e, strict=True))
        for a, e in zip(actual, expected, strict=True))


def test_thrift_server_serves_only_the_bi_tables_and_keeps_the_metastore_beside_them(server, lakehouse):
    port, workdir = server
    _, cfg = lakehouse
    assert sorted(row[1] for row in _query(port, "SHOW TABLES")) == [
        "portrait_history", "portrait_latest", "segment_daily"]
    with pytest.raises(Exception, match="(?i)user_portrait"):
        _query(port, "SELECT count(*) FROM user_portrait")  # raw ids are not served
    with pytest.raises(Exception, match="(?i)user_id"):
        _query(port, "SELECT user_id FROM portrait_history")
    assert list(workdir.iterdir()) == []  # no metastore_db or derby.log in the working directory
    assert (Path(cfg.lakehouse.path) / "_metastore" / "metastore_db").is_dir()


def test_bi_queries_over_hiveserver2_equal_spark_aggregates(spark, server, lakehouse):
    port, _ = server
    _, cfg = lakehouse
    sizes = _query(port, "SELECT rfm_segment, count(*) AS persons, avg(purchase_propensity) AS avg_propensity "
                         "FROM portrait_latest GROUP BY rfm_segment ORDER BY rfm_segment")
    expected = (io.read_table(spark, cfg, PORTRAIT_LATEST).groupBy("rfm_segment")
                .agg(F.count(F.lit(1)), F.avg("purchase_propensity")).orderBy("rfm_segment").collect())
    assert len(sizes) >= 2
    assert _close(sizes, [tuple(r) for r in expected]), (sizes, expected)
    assert sum(r[1] for r in sizes) == io.read_table(spark, cfg, USER_PORTRAIT).count()

    # HiveServer2 sends dates as text: compare them as ISO strings.
    history = _query(port, "SELECT CAST(dt AS STRING), value_tier, count(DISTINCT person_key), "
                           "avg(purchase_propensity) FROM portrait_history GROUP BY dt, value_tier ORDER BY 1, 2")
    expected = (io.read_table(spark, cfg, USER_PORTRAIT).groupBy(F.col("dt").cast("string"), "value_tier")
                .agg(F.count_distinct("user_id"), F.avg("purchase_propensity")).orderBy(1, 2).collect())
    assert history and _close(history, [tuple(r) for r in expected]), (history, expected)
    joined = _query(port, "SELECT count(*) FROM portrait_history h JOIN portrait_latest l "
                          "ON h.person_key = l.person_key AND h.dt = l.dt")
    assert joined == [(io.read_table(spark, cfg, PORTRAIT_LATEST).count(),)]  # one pseudonym in both

    segments = _query(port, "SELECT segment_kind, segment, users, avg_propensity FROM segment_daily "
                            f"WHERE dt = DATE'{RUN_DATE}' ORDER BY segment_kind, segment")
    expected = (io.read_table(spark, cfg, SEGMENT_DAILY).where(F.col("dt") == F.lit(RUN_DATE))
                .select("segment_kind", "segment", "users", "avg_propensity")
                .orderBy("segment_kind", "segment").collect())
    assert segments and _close(segments, [tuple(r) for r in expected])
    assert min(r[2] for r in segments) >= cfg.privacy.min_group_size


def _plain(value):
    """Spark and Arrow values in one comparable form (Rows and dicts → sorted items, lists → tuples)."""
    if isinstance(value, Row):
        value = value.asDict(recursive=True)
    if isinstance(value, dict):
        return tuple(sorted((k, _plain(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_plain(v) for v in value)
    return value


def test_delta_rs_reads_the_same_portrait_rows_as_spark(spark, lakehouse):
    from deltalake import DeltaTable

    _, cfg = lakehouse
    path = io.table_ref(cfg, USER_PORTRAIT).path
    table = DeltaTable(path)
    assert table.version() == io.table_version(spark, cfg, USER_PORTRAIT)
    arrow = table.to_pyarrow_table()
    frame = table.to_pandas()
    assert len(frame) == arrow.num_rows
    columns = USER_PORTRAIT.columns
    from_rust = sorted(tuple(_plain(row[c]) for c in columns) for row in arrow.to_pylist())
    from_spark = sorted(tuple(_plain(row[c]) for c in columns)
                        for row in io.read_table(spark, cfg, USER_PORTRAIT).collect())
    assert len(from_spark) > 100
    assert from_rust == from_spark
