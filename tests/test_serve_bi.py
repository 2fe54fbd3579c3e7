"""The SQL endpoint for BI tools and a non-Spark reader, on a small real lakehouse.

``portrait serve-bi`` runs as its own process (its own Spark application with the Thrift Server), with a login
and TLS; a real HiveServer2 client (PyHive over TLS) queries it and must get the aggregates Spark computes from
the same Delta folders. delta-rs (``deltalake``), which shares no code with Spark, must read the same portrait
rows.

The same server is attacked as a hostile client would (issue #29): connections without the login or without
TLS, path SQL, reflection, DDL and DML, writing files, raw tables, changed session settings; every attempt must
be refused and change nothing, and the server process must not hold the pseudonymisation key.

The lakehouse is the session's daily shop (tests/shops.py: ``make run``'s daily run), which the end-to-end tests
check; no second shop is built for reading it. The server starts once per module.
"""

from __future__ import annotations

import math
import os
import queue
import re
import shutil
import signal
import ssl
import subprocess
import sys
import threading
from pathlib import Path
from typing import NamedTuple

import pytest
from pyspark.sql import Row
from pyspark.sql import functions as F

from portrait import io
from portrait.schemas import ALL_TABLES, PORTRAIT_LATEST, SEGMENT_DAILY, USER_PORTRAIT
from tests.conftest import LOCAL_CONF, REPO, TEST_PSEUDONYM_KEY, config_environ
from tests.net_helpers import free_port
from tests.shops import DAILY_SHOP, RUN_DATE

pytestmark = [pytest.mark.slow, pytest.mark.mission]

SERVER_START_SECONDS = 300
LOOPBACK = "127.0.0.1"
USER, PASSWORD = "analyst", "bi-test-password-not-a-secret"
KEYSTORE_PASSWORD = "keystore-test-password"
REFUSED = "portrait serve-bi refuses this statement"


class Server(NamedTuple):
    port: int
    workdir: Path     # the server's working directory, which must stay empty
    pid: int          # the Python process; its JVM is a child
    certificate: Path  # the server's self-signed TLS certificate, trusted by the clients below
    scratch: Path     # a folder a hostile client tries to overwrite


@pytest.fixture(scope="module")
def lakehouse(daily_shop):
    """The daily shop (tests/shops.py): features, models, portrait and BI tables of its run date."""
    return daily_shop.root, daily_shop.cfg


def _keystore(folder: Path) -> tuple[Path, Path]:
    """A self-signed key pair for 127.0.0.1 (PKCS12, made with the JDK's keytool) and its certificate (PEM)."""
    java_home = os.environ.get("JAVA_HOME")
    keytool = (java_home and shutil.which("keytool", path=str(Path(java_home) / "bin"))) or shutil.which("keytool")
    keystore, certificate = folder / "bi.p12", folder / "bi.pem"
    subprocess.run([keytool, "-genkeypair", "-alias", "bi", "-keyalg", "RSA", "-keysize", "2048", "-validity", "7",
                    "-dname", "CN=localhost", "-ext", "SAN=ip:127.0.0.1,dns:localhost", "-storetype", "PKCS12",
                    "-keystore", str(keystore), "-storepass", KEYSTORE_PASSWORD], check=True, capture_output=True)
    exported = subprocess.run([keytool, "-exportcert", "-rfc", "-alias", "bi", "-keystore", str(keystore),
                               "-storepass", KEYSTORE_PASSWORD], check=True, capture_output=True, text=True)
    certificate.write_text(exported.stdout)
    return keystore, certificate


@pytest.fixture(scope="module")
def server(lakehouse, tmp_path_factory):
    """``portrait serve-bi`` on a free port with a login and TLS, started from an empty working directory with
    the pseudonymisation key in its environment (as a job's would be)."""
    port = free_port()
    workdir = tmp_path_factory.mktemp("serve_cwd")
    keystore, certificate = _keystore(tmp_path_factory.mktemp("serve_tls"))
    scratch = tmp_path_factory.mktemp("serve_scratch")
    (scratch / "kept.txt").write_text("a file INSERT OVERWRITE DIRECTORY must not delete\n")
    shop = config_environ(lakehouse[0], **DAILY_SHOP, SPARK__DRIVER_MEMORY="1g", SPARK__MASTER="local[1]")
    environ = {**os.environ, **shop,
               "PORTRAIT_PSEUDONYM_KEY": TEST_PSEUDONYM_KEY, "PORTRAIT_BI_USER": USER,
               "PORTRAIT_BI_PASSWORD": PASSWORD, "PORTRAIT_BI_KEYSTORE_PASSWORD": KEYSTORE_PASSWORD}
    log_path = workdir.parent / "serve-bi.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "portrait.cli", "serve-bi", "--conf", str(LOCAL_CONF), "--port", str(port),
             "--tls-keystore", str(keystore)],
            cwd=workdir, env=environ, stdout=subprocess.PIPE, stderr=log, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    try:
        try:
            ready = lines.get(timeout=SERVER_START_SECONDS)
        except queue.Empty:
            pytest.fail(f"serve-bi did not start in {SERVER_START_SECONDS} s:\n{log_path.read_text()[-3000:]}")
        assert f"jdbc:hive2://127.0.0.1:{port}/portrait" in ready, log_path.read_text()[-3000:]
        assert f"user {USER}, TLS" in ready
        server = Server(port, workdir, process.pid, certificate, scratch)
        # Its readiness probe completed a TLS handshake: a start logs no failed one (checked after a query of
        # ours, so that anything the probe's connection caused is in the log by then).
        assert _query(server, "SELECT 1") == [(1,)]
        assert "handshake" not in log_path.read_text().lower(), log_path.read_text()[-3000:]
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _connect(server: Server, user: str = USER, password: str = PASSWORD, **options):
    """A PyHive connection over TLS (HiveServer2's binary protocol in a TLS socket, SASL PLAIN login)."""
    import thrift_sasl
    from pyhive import hive
    from pyhive.hive import get_pure_sasl_client
    from thrift.transport import TSSLSocket

    tls = TSSLSocket.TSSLSocket(LOOPBACK, server.port,
                                ssl_context=ssl.create_default_context(cafile=str(server.certificate)))
    transport = thrift_sasl.TSaslClientTransport(
        lambda: get_pure_sasl_client(LOOPBACK, "PLAIN", username=user, password=password), "PLAIN", tls)
    return hive.connect(thrift_transport=transport, database="portrait", **options)


def _query(server: Server, sql: str) -> list[tuple]:
    connection = _connect(server)
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
    _, cfg = lakehouse
    assert sorted(row[1] for row in _query(server, "SHOW TABLES")) == [
        "portrait_history", "portrait_latest", "segment_daily"]
    with pytest.raises(Exception, match="(?i)user_portrait"):
        _query(server, "SELECT count(*) FROM user_portrait")  # raw ids are not served
    with pytest.raises(Exception, match="(?i)user_id"):
        _query(server, "SELECT user_id FROM portrait_history")
    assert list(server.workdir.iterdir()) == []  # no metastore_db or derby.log in the working directory
    assert (Path(cfg.lakehouse.path) / "_metastore" / "metastore_db").is_dir()


def test_bi_queries_over_hiveserver2_equal_spark_aggregates(spark, server, lakehouse):
    _, cfg = lakehouse
    sizes = _query(server, "SELECT rfm_segment, count(*) AS persons, avg(purchase_propensity) AS avg_propensity "
                           "FROM portrait_latest GROUP BY rfm_segment ORDER BY rfm_segment")
    expected = (io.read_table(spark, cfg, PORTRAIT_LATEST).groupBy("rfm_segment")
                .agg(F.count(F.lit(1)), F.avg("purchase_propensity")).orderBy("rfm_segment").collect())
    assert len(sizes) >= 2
    assert _close(sizes, [tuple(r) for r in expected]), (sizes, expected)
    assert sum(r[1] for r in sizes) == io.read_table(spark, cfg, USER_PORTRAIT).count()

    # HiveServer2 sends dates as text: compare them as ISO strings.
    history = _query(server, "SELECT CAST(dt AS STRING), value_tier, count(DISTINCT person_key), "
                             "avg(purchase_propensity) FROM portrait_history GROUP BY dt, value_tier ORDER BY 1, 2")
    expected = (io.read_table(spark, cfg, USER_PORTRAIT).groupBy(F.col("dt").cast("string"), "value_tier")
                .agg(F.count_distinct("user_id"), F.avg("purchase_propensity")).orderBy(1, 2).collect())
    assert history and _close(history, [tuple(r) for r in expected]), (history, expected)
    joined = _query(server, "SELECT count(*) FROM portrait_history h JOIN portrait_latest l "
                            "ON h.person_key = l.person_key AND h.dt = l.dt")
    assert joined == [(io.read_table(spark, cfg, PORTRAIT_LATEST).count(),)]  # one pseudonym in both

    segments = _query(server, "SELECT segment_kind, segment, users, avg_propensity FROM segment_daily "
                              f"WHERE dt = DATE'{RUN_DATE}' ORDER BY segment_kind, segment")
    expected = (io.read_table(spark, cfg, SEGMENT_DAILY).where(F.col("dt") == F.lit(RUN_DATE))
                .select("segment_kind", "segment", "users", "avg_propensity")
                .orderBy("segment_kind", "segment").collect())
    assert segments and _close(segments, [tuple(r) for r in expected])
    assert min(r[2] for r in segments) >= cfg.privacy.min_group_size


def _documented_queries() -> list[str]:
    """The statements of docs/BI.md's example SQL, as a BI user would paste them."""
    text = (REPO / "docs" / "BI.md").read_text(encoding="utf-8")
    block = re.search(r"### Example SQL\s+```sql\n(.*?)```", text, re.S).group(1)
    code = "\n".join(line for line in block.splitlines() if not line.lstrip().startswith("--"))
    return [statement.strip() for statement in code.split(";") if statement.strip()]


def test_the_documented_bi_queries_run_with_the_login(server):
    queries = _documented_queries()
    assert len(queries) >= 4
    results = [_query(server, sql) for sql in queries]
    assert results[0], queries[0]  # segment sizes of the shop's run date (2026-11-20, as in the docs)


def _refusal(server: Server, **login) -> str:
    """The error of connecting with ``login`` and running one query; fails the test if the query runs."""
    try:
        connection = _connect(server, **login) if "host" not in login else _plain_connect(**login)
        connection.cursor().execute("SELECT count(*) FROM portrait_latest")
    except Exception as exc:  # PyHive and Thrift raise several types for a refused login
        return str(exc)
    pytest.fail(f"a connection with {login} ran a query")


def _plain_connect(host: str, port: int, **options):
    from pyhive import hive

    return hive.connect(host=host, port=port, database="portrait", **options)


def test_connections_without_the_login_or_without_tls_are_refused(server):
    assert "validating the login" in _refusal(server, password="wrong-password-of-the-right-length")
    assert "validating the login" in _refusal(server, user="root", password=PASSWORD)
    assert "validating the login" in _refusal(server, password="")
    # Plain TCP, as every client of the server before #29: no login (PyHive's NONE), no SASL, or the right
    # login without TLS. The TLS socket drops them before a login is even read.
    _refusal(server, host=LOOPBACK, port=server.port, username="anyone")
    _refusal(server, host=LOOPBACK, port=server.port, username="anyone", auth="NOSASL")
    _refusal(server, host=LOOPBACK, port=server.port, username=USER, password=PASSWORD, auth="CUSTOM")


def _hostile_statements(lake: str, scratch: Path) -> dict[str, list[str]]:
    """What issue #29 found a client could do, grouped by what it is; each must be refused. Predicates match no
    row, so a statement that slipped through would still leave the shared shop as it was."""
    return {
        "path SQL": [f"SELECT user_id, person_key FROM delta.`{lake}/user_portrait`",
                     f"SELECT count(*) FROM parquet.`{lake}/clickstream`", f"SELECT * FROM delta.`{lake}/users`",
                     "SELECT * FROM text.`/etc/passwd`", f"SELECT * FROM json.`{lake}/user_portrait/_delta_log`",
                     f"SELECT * FROM table_changes_by_path('{lake}/user_portrait', 0)"],
        "reflection": ["SELECT java_method('java.lang.System', 'getenv', 'PORTRAIT_PSEUDONYM_KEY')",
                       "SELECT reflect('java.lang.System', 'getProperty', 'user.home')",
                       "SELECT try_reflect('java.lang.System', 'getenv', 'PORTRAIT_PSEUDONYM_KEY')",
                       "SELECT person_key FROM portrait_latest WHERE person_key = "
                       "(SELECT java_method('java.lang.System', 'getenv', 'HOME'))",
                       "EXECUTE IMMEDIATE 'SELECT reflect(''java.lang.System'', ''getenv'', ''HOME'')'",
                       "SELECT TRANSFORM(person_key) USING 'cat /etc/passwd' AS (line) FROM portrait_latest",
                       "CREATE TEMPORARY FUNCTION r AS 'org.apache.hadoop.hive.ql.udf.generic.GenericUDFReflect'"],
        "DDL and DML": ["DELETE FROM segment_daily WHERE users < 0", "DROP TABLE portrait_latest",
                        "DROP VIEW portrait_history", "UPDATE portrait_latest SET rfm_segment = 'x' WHERE 1 = 0",
                        "INSERT INTO segment_daily SELECT * FROM segment_daily WHERE 1 = 0",
                        f"CREATE TABLE portrait.leak USING DELTA LOCATION '{lake}/user_portrait'",
                        "CREATE TABLE portrait.copy AS SELECT * FROM portrait_latest",
                        "CREATE TEMPORARY VIEW lines USING text OPTIONS (path '/etc/passwd')",
                        f"ALTER TABLE portrait_latest SET LOCATION '{lake}/user_portrait'",
                        "CACHE TABLE portrait_latest", "ADD JAR /tmp/anything.jar", "ADD FILE /etc/passwd",
                        "VACUUM portrait_latest RETAIN 0 HOURS", "EXECUTE IMMEDIATE 'DROP TABLE portrait_latest'"],
        "file write": [f"INSERT OVERWRITE DIRECTORY '{scratch}' USING parquet SELECT 1 AS x",
                       f"INSERT OVERWRITE LOCAL DIRECTORY '{scratch}' SELECT 1"],
        "settings": ["SET spark.sql.runSQLOnFiles=true", "SET spark.sql.extensions=x", "RESET",
                     "SET spark.sql.variable.substitute=true",
                     "SET spark.sql.catalog.other=org.apache.spark.sql.execution.datasources.v2.jdbc.JDBCTableCatalog"],
        "raw tables": ["SELECT * FROM user_portrait", "SELECT * FROM clickstream",
                       "SELECT user_id FROM portrait_restricted.user_portrait", "SHOW TABLES IN portrait_restricted",
                       "DESCRIBE portrait_restricted.user_portrait", "SELECT * FROM portrait_latest VERSION AS OF 0",
                       "SELECT * FROM table_changes('portrait_latest', 0)", "DESCRIBE HISTORY portrait_latest"],
    }


def test_hostile_statements_are_refused_and_change_nothing(spark, server, lakehouse):
    _, cfg = lakehouse
    lake = str(Path(cfg.lakehouse.path).resolve())
    versions = {name: io.table_version(spark, cfg, contract) for name, contract in ALL_TABLES.items()}
    ran = []
    connection = _connect(server)  # one session, as a BI tool keeps: a refused statement does not end it
    try:
        cursor = connection.cursor()
        for kind, statements in _hostile_statements(lake, server.scratch).items():
            for sql in statements:
                try:
                    cursor.execute(sql)
                    ran.append(f"{kind}: {sql}")
                except Exception as exc:  # PyHive's OperationalError carries the server's message
                    # Path SQL and unregistered tables are not even resolved; everything else is the guard's.
                    assert REFUSED in str(exc) or "TABLE_OR_VIEW_NOT_FOUND" in str(exc), (sql, str(exc)[:500])
        cursor.execute("SELECT count(*) FROM portrait_latest")  # the session still serves
        assert cursor.fetchall()[0][0] > 0
    finally:
        connection.close()
    assert not ran, "statements a BI client could run:\n" + "\n".join(ran)
    assert {name: io.table_version(spark, cfg, contract) for name, contract in ALL_TABLES.items()} == versions
    assert [p.name for p in server.scratch.iterdir()] == ["kept.txt"]
    assert sorted(row[1] for row in _query(server, "SHOW TABLES")) == [
        "portrait_history", "portrait_latest", "segment_daily"]


@pytest.mark.parametrize("settings", [{"set:hiveconf:spark.sql.runSQLOnFiles": "true"},
                                      {"set:hivevar:spark.sql.runSQLOnFiles": "true"}])
def test_a_session_opened_with_changed_settings_runs_nothing(server, settings):
    """A client can hand settings to the session it opens; the Thrift Server applies them without a statement
    to check, so the guard refuses every statement of such a session."""
    with pytest.raises(Exception, match=REFUSED):
        connection = _connect(server, configuration=settings)  # PyHive runs USE portrait at once
        connection.cursor().execute("SELECT 1")


def _children(pid: int) -> list[int]:
    return [int(child) for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()]


def test_the_server_process_holds_neither_the_pseudonym_key_nor_the_password(server):
    """The JVM that runs client statements was started without the key or the password in its environment
    (the Python process that launched it had both), and no setting a client can list holds them."""
    jvms = [pid for pid in _children(server.pid) if "java" in Path(f"/proc/{pid}/cmdline").read_bytes().decode()]
    assert jvms, "serve-bi's JVM not found"
    for pid in jvms:
        environment = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace").split("\0")
        names = {entry.split("=", 1)[0] for entry in environment}
        assert not {n for n in names if n.startswith(("PORTRAIT_PSEUDONYM_KEY", "PORTRAIT_BI_PASSWORD",
                                                      "PORTRAIT_BI_KEYSTORE"))}, names
        assert not any(TEST_PSEUDONYM_KEY in entry or PASSWORD in entry for entry in environment)
    settings = str(_query(server, "SET"))
    assert TEST_PSEUDONYM_KEY not in settings and PASSWORD not in settings and KEYSTORE_PASSWORD not in settings
    # Spark would replace ${env:…}, ${system:…} and ${setting} in a statement's text before parsing it.
    variables = ("${env:PATH}", "${system:java.home}", "${spark.sql.extensions}")
    assert _query(server, "SELECT " + ", ".join(f"'{v}'" for v in variables)) == [variables]


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
