"""``portrait serve-bi``: a SQL endpoint for BI tools — the Spark Thrift Server over the lakehouse.

The Thrift Server (``HiveThriftServer2``, shipped in pip pyspark's jars) speaks the HiveServer2 protocol, so
any JDBC/ODBC client connects with ``jdbc:hive2://localhost:10000/portrait`` (Hive JDBC driver), as do
``beeline`` and PyHive. It is started inside this process's Spark application (``startWithContext``), after
the lakehouse's BI tables are registered in a metastore database, so queries see exactly the Delta folders
the jobs write: every query reads the newest committed version.

* **Only BI-facing tables by default** (``TableContract.bi_facing``: pseudonymised, no raw id).
  ``--all-tables`` registers every existing table, for trusted users on a trusted machine.
* **Loopback by default.** The server has no authentication configured; ``bi.host`` other than loopback
  exposes the data to the network and is logged as a warning.
* **Metastore beside the tables.** The embedded Derby metastore and its log live in
  ``<lakehouse>/_metastore``, never in the working directory; one server per lakehouse at a time (Derby is
  single-process), and the registrations are redone on every start.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import socket
import sys
import threading
from pathlib import Path

from pyspark.sql import SparkSession

from portrait import io
from portrait.config import Config
from portrait.schemas import ALL_TABLES, PERSON_ID_COLUMNS, USER_PORTRAIT, TableContract
from portrait.spark import DELTA_CATALOG, DELTA_EXTENSION, SparkSetupError, delta_jars

THRIFT_SERVER_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"
HISTORY_VIEW = "portrait_history"
METASTORE_FOLDER = "_metastore"

log = logging.getLogger(__name__)


class ServeError(RuntimeError):
    """The SQL endpoint cannot start as asked; the message says why and what to do."""


def metastore_dir(cfg: Config) -> Path:
    """Folder of the Derby metastore and its log: beside the tables, so it moves with the lakehouse."""
    if cfg.lakehouse.path is None:
        raise ServeError("serve-bi needs a directory lakehouse (lakehouse.path). With a metastore schema "
                         "(lakehouse.catalog/schema) the tables are already in a catalog: use its SQL endpoint, "
                         "e.g. a Databricks SQL warehouse.")
    return Path(cfg.lakehouse.path).resolve() / METASTORE_FOLDER


def served_tables(all_tables: bool = False) -> list[TableContract]:
    """The contracts served: the BI-facing ones, or every table with ``all_tables``."""
    return [c for c in ALL_TABLES.values() if all_tables or c.bi_facing]


def jdbc_url(host: str, port: int, database: str) -> str:
    return f"jdbc:hive2://{host}:{port}/{database}"


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ServeError(f"cannot listen on {host}:{port} ({exc.strerror}): another server (a running "
                             "serve-bi?) uses the port, or the address is not this machine's; choose --port/--host"
                             ) from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bi_session(cfg: Config, host: str, port: int) -> SparkSession:
    """A local Spark session with Hive support (Derby metastore under the lakehouse) and Delta, configured
    for a Thrift Server on ``host:port``. Must be the first session of the process."""
    if SparkSession.getActiveSession() is not None:
        raise ServeError("serve-bi needs its own Spark application (Hive metastore, Thrift settings); run it as "
                         "its own process: `portrait serve-bi`")
    metastore = metastore_dir(cfg)
    metastore.mkdir(parents=True, exist_ok=True)
    jars = [str(j) for j in delta_jars()]
    builder = (
        SparkSession.builder.master(cfg.spark.master).appName(f"{cfg.spark.app_name}-serve-bi")
        .config("spark.jars", ",".join(jars))
        # Also on the driver's class path: the Thrift handler threads open sessions (and resolve the Delta
        # catalog) with the system class loader, which does not see spark.jars.
        .config("spark.driver.extraClassPath", os.pathsep.join(jars))
        .config("spark.driver.memory", cfg.spark.driver_memory)
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={metastore} -XX:+UseG1GC")
        .config("spark.sql.extensions", DELTA_EXTENSION)
        .config("spark.sql.catalog.spark_catalog", DELTA_CATALOG)
        .config("spark.sql.warehouse.dir", str(metastore / "warehouse"))
        .config("spark.hadoop.javax.jdo.option.ConnectionURL",
                f"jdbc:derby:;databaseName={metastore / 'metastore_db'};create=true")
        .config("spark.hadoop.hive.server2.thrift.bind.host", host)
        .config("spark.hadoop.hive.server2.thrift.port", str(port))
        .config("spark.sql.session.timeZone", cfg.time_zone)
        .config("spark.sql.shuffle.partitions", str(cfg.spark.shuffle_partitions))
        .config("spark.sql.adaptive.enabled", "true")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .enableHiveSupport()
    )
    for key, value in cfg.spark.options.items():
        builder = builder.config(key, value)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session


def serve_bi(cfg: Config, host: str | None = None, port: int | None = None, all_tables: bool = False,
             stop: threading.Event | None = None) -> None:
    """Register the lakehouse tables and serve them over HiveServer2 until SIGTERM/SIGINT (or ``stop``).

    Prints one line with the JDBC URL once clients can connect.
    """
    host = host or cfg.bi.host
    port = cfg.bi.port if port is None else port
    if not 0 < port < 65536:
        raise ServeError(f"--port {port} is not a TCP port (1-65535)")
    if not _is_loopback(host):
        log.warning("serve-bi binds to %s: the Thrift Server has no authentication, so anyone who can reach "
                    "this address can read the served tables", host)
    metastore_dir(cfg)  # fails before Spark starts when there is no directory lakehouse
    _check_port_free(host, port)
    try:
        spark = bi_session(cfg, host, port)
    except SparkSetupError as exc:
        raise ServeError(str(exc)) from None
    stop = stop or threading.Event()
    try:
        registered = io.register_tables(spark, cfg, cfg.bi.database, served_tables(all_tables))
        # Dated history for BI without the raw id: user_portrait's columns except user_id, keyed by person_key.
        if io.register_view_without(spark, cfg, cfg.bi.database, HISTORY_VIEW, USER_PORTRAIT, PERSON_ID_COLUMNS):
            registered.append(HISTORY_VIEW)
        if not registered:
            log.warning("no table to serve yet under %s: run `portrait daily` first", cfg.lakehouse.path)
        jvm = spark.sparkContext._jvm
        server_class = getattr(jvm, THRIFT_SERVER_CLASS)
        server_class.startWithContext(spark._jsparkSession.sqlContext())
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signal_number, lambda *_: stop.set())
        print(f"serving {', '.join(registered) or 'no tables'} as database {cfg.bi.database} at "
              f"{jdbc_url(host, port, cfg.bi.database)} (stop with Ctrl-C)", flush=True)
        stop.wait()
    finally:
        spark.stop()
