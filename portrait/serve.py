"""``portrait serve-bi``: a SQL endpoint for BI tools — the Spark Thrift Server over the lakehouse.

The Thrift Server (``HiveThriftServer2``, shipped in pip pyspark's jars) speaks the HiveServer2 protocol, so
any JDBC/ODBC client connects with ``jdbc:hive2://localhost:10000/portrait`` (Hive JDBC driver), as do
``beeline`` and PyHive. It is started inside this process's Spark application (``startWithContext``), after
the lakehouse's BI tables are registered in a metastore database, so queries see exactly the Delta folders
the jobs write: every query reads the newest committed version.

Left as Spark ships it, that server is a Spark SQL shell for anyone who reaches the port. Here:

* **Authenticated.** HiveServer2's CUSTOM authentication with portrait's provider (``portrait.bi.BiAuthenticator``,
  built by the set-up step, ``portrait.jvm``): one user name and password from the environment
  (``PORTRAIT_BI_USER`` and ``PORTRAIT_BI_PASSWORD`` or its SHA-256 ``PORTRAIT_BI_PASSWORD_SHA256``), handed to
  the JVM as digests only. Without them the server does not start, unless ``--no-auth-local-only`` is given,
  which also binds to loopback. Optional TLS with ``--tls-keystore`` (password in
  ``PORTRAIT_BI_KEYSTORE_PASSWORD``).
* **Read-only, BI tables only.** A session extension (``portrait.bi.BiGuardExtension``) checks every analysed
  plan of every client session and refuses commands other than SHOW/DESCRIBE/USE and a few SETs, reads of
  anything but the served tables at their current version (path SQL, time travel, the change feed),
  reflection (``java_method``/``reflect``), user-defined functions, script transforms and sessions whose
  settings were changed. ``spark.sql.runSQLOnFiles`` is off as well.
* **Only BI-facing tables by default** (``TableContract.bi_facing``: pseudonymised, no raw id).
  ``--all-tables`` registers every existing table, for trusted users on a trusted machine. The
  ``portrait_history`` view reads user_portrait, registered for it in ``<database>_restricted``, which clients
  can neither read nor list.
* **No pseudonymisation key in the server.** ``PORTRAIT_PSEUDONYM_KEY*`` and the BI passwords are removed from
  the environment before the JVM starts: nothing a client runs can read them there.
* **Metastore beside the tables.** The embedded Derby metastore and its log live in
  ``<lakehouse>/_metastore``, never in the working directory; one server per lakehouse at a time (Derby is
  single-process). The registrations are redone on every start, and anything else found in the served
  databases is removed from the metastore (entries only: the data stays where it is).
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import re
import signal
import socket
import ssl
import sys
import threading
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import NamedTuple

from pyspark.sql import SparkSession

from portrait import io, jvm
from portrait.config import Config
from portrait.privacy import PSEUDONYM_KEY_ENV
from portrait.schemas import ALL_TABLES, PERSON_ID_COLUMNS, USER_PORTRAIT, TableContract
from portrait.spark import DELTA_CATALOG, DELTA_EXTENSION, SparkSetupError, delta_jars

THRIFT_SERVER_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"
HISTORY_VIEW = "portrait_history"
METASTORE_FOLDER = "_metastore"
LOOPBACK = "127.0.0.1"

USER_ENV = "PORTRAIT_BI_USER"
PASSWORD_ENV = "PORTRAIT_BI_PASSWORD"
PASSWORD_SHA256_ENV = "PORTRAIT_BI_PASSWORD_SHA256"
KEYSTORE_PASSWORD_ENV = "PORTRAIT_BI_KEYSTORE_PASSWORD"
KEYSTORE_PASSWORD_PROPERTY = "hive.server2.keystore.password"
MIN_PASSWORD_LENGTH = 12
# Removed from the environment before the server's JVM starts: the pseudonymisation keys (current and
# previous, PORTRAIT_PSEUDONYM_KEY*) are never needed to serve pseudonymised tables, and the passwords are
# handed over as digests or system properties instead.
SECRET_ENV_PREFIXES = (PSEUDONYM_KEY_ENV, PASSWORD_ENV, KEYSTORE_PASSWORD_ENV)

log = logging.getLogger(__name__)


class ServeError(RuntimeError):
    """The SQL endpoint cannot start as asked; the message says why and what to do."""


class Credentials(NamedTuple):
    user: str
    password_sha256: str  # hex digest: the only form of the password the JVM sees


class Tls(NamedTuple):
    keystore: Path
    password: str


class Endpoint(NamedTuple):
    host: str
    port: int
    credentials: Credentials | None  # None only with --no-auth-local-only
    tls: Tls | None


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


def password_sha256(password: str) -> str:
    """The digest ``PORTRAIT_BI_PASSWORD_SHA256`` holds: SHA-256 of the UTF-8 password, as hex."""
    return hashlib.sha256(password.encode("utf-8")).hexdigest()


def credentials_from(environ: MutableMapping[str, str]) -> Credentials | None:
    """The BI login from ``environ``; None when no user name is set. A plain password is hashed here."""
    user = environ.get(USER_ENV, "").strip()
    password, digest = environ.get(PASSWORD_ENV), environ.get(PASSWORD_SHA256_ENV, "").strip().lower()
    if not user:
        if password or digest:
            raise ServeError(f"{PASSWORD_ENV}/{PASSWORD_SHA256_ENV} is set but {USER_ENV} is not: set both")
        return None
    if password and digest:
        raise ServeError(f"set either {PASSWORD_ENV} or {PASSWORD_SHA256_ENV}, not both")
    if password:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise ServeError(f"{PASSWORD_ENV} is shorter than {MIN_PASSWORD_LENGTH} characters: use a random one, "
                             "e.g. `openssl rand -hex 24`")
        return Credentials(user, password_sha256(password))
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ServeError(f"{USER_ENV} is set but neither {PASSWORD_ENV} nor a 64-digit hex {PASSWORD_SHA256_ENV} "
                         "(e.g. `printf %s \"$PASSWORD\" | sha256sum`)")
    return Credentials(user, digest)


def drop_secrets(environ: MutableMapping[str, str]) -> list[str]:
    """Remove the variables the server must not hold (:data:`SECRET_ENV_PREFIXES`); returns their names."""
    names = [name for name in environ if name.startswith(SECRET_ENV_PREFIXES)]
    for name in names:
        del environ[name]
    return names


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


def endpoint(cfg: Config, host: str | None, port: int | None, no_auth_local_only: bool = False,
             tls_keystore: str | None = None, environ: MutableMapping[str, str] = os.environ) -> Endpoint:
    """Where and how to serve, from the arguments, the configuration and ``environ`` (read, then stripped of
    every secret); raises :class:`ServeError` for a combination that would expose the data."""
    port = cfg.bi.port if port is None else port
    if not 0 < port < 65536:
        raise ServeError(f"--port {port} is not a TCP port (1-65535)")
    credentials = credentials_from(environ)
    tls = _tls(tls_keystore, environ.get(KEYSTORE_PASSWORD_ENV))
    drop_secrets(environ)
    if no_auth_local_only:
        if credentials is not None:
            raise ServeError(f"--no-auth-local-only, but {USER_ENV} is set: drop one of them")
        if host is not None and not _is_loopback(host):
            raise ServeError(f"--no-auth-local-only serves this machine only; it cannot bind to {host}")
        return Endpoint(host or LOOPBACK, port, None, tls)
    if credentials is None:
        raise ServeError(f"serve-bi needs a login for its clients: set {USER_ENV} and {PASSWORD_ENV} (or "
                         f"{PASSWORD_SHA256_ENV}). On a machine of your own, --no-auth-local-only serves without "
                         "one on 127.0.0.1 (every local user can then connect).")
    host = host or cfg.bi.host
    if not _is_loopback(host) and tls is None:
        log.warning("serve-bi binds to %s without TLS: passwords and rows cross the network unencrypted; use "
                    "--tls-keystore or a TLS-terminating gateway", host)
    return Endpoint(host, port, credentials, tls)


def _tls(keystore: str | None, password: str | None) -> Tls | None:
    if keystore is None:
        return None
    path = Path(keystore).expanduser().resolve()
    if not path.is_file():
        raise ServeError(f"--tls-keystore {keystore}: no such file")
    if not password:
        raise ServeError(f"--tls-keystore needs the keystore's password in {KEYSTORE_PASSWORD_ENV}")
    return Tls(path, password)


def _guarded_settings(host: str, port: int, authenticated: bool, tls: Tls | None) -> dict[str, str]:
    """Settings the guard and the login depend on: applied after spark.options, which may not name them.

    The keystore's password is not among them: Spark settings reach the JVM on its command line and `SET` lists
    them; it goes into the Hadoop configuration instead (:func:`_lock_down`).
    """
    settings = {
        "spark.sql.extensions": f"{DELTA_EXTENSION},{jvm.GUARD_EXTENSION}",
        "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
        # Path SQL (parquet.`/path`, text.`/file`) is not even resolved; the guard refuses it besides, and
        # refuses any session that turns this back on.
        "spark.sql.runSQLOnFiles": "false",
        # ${env:NAME}, ${system:name} and ${setting} in a statement's text would be replaced before any check,
        # reading the server's environment, Java properties and settings.
        "spark.sql.variable.substitute": "false",
        # One Spark session per client connection: a client's settings never reach another client.
        "spark.sql.hive.thriftServer.singleSession": "false",
        "spark.hadoop.hive.server2.thrift.bind.host": host,
        "spark.hadoop.hive.server2.thrift.port": str(port),
        "spark.hadoop.hive.server2.authentication": "CUSTOM" if authenticated else "NONE",
        "spark.hadoop.hive.server2.enable.doAs": "false",
    }
    if tls is not None:
        settings.update({"spark.hadoop.hive.server2.use.SSL": "true",
                         "spark.hadoop.hive.server2.keystore.path": str(tls.keystore)})
    return settings


def bi_session(cfg: Config, host: str, port: int, authenticated: bool = True,
               tls: Tls | None = None) -> SparkSession:
    """A local Spark session with Hive support (Derby metastore under the lakehouse), Delta and portrait's
    guard, configured for a Thrift Server on ``host:port``. Must be the first session of the process."""
    if SparkSession.getActiveSession() is not None:
        raise ServeError("serve-bi needs its own Spark application (Hive metastore, Thrift settings); run it as "
                         "its own process: `portrait serve-bi`")
    metastore = metastore_dir(cfg)
    metastore.mkdir(parents=True, exist_ok=True)
    jars = [str(j) for j in [*delta_jars(), jvm.build()]]  # built by the set-up step; here only if missing
    guarded = _guarded_settings(host, port, authenticated, tls)
    overridden = sorted(set(cfg.spark.options) & set(guarded))
    if overridden:
        raise ServeError(f"spark.options sets {', '.join(overridden)}, which serve-bi must control itself")
    builder = (
        SparkSession.builder.master(cfg.spark.master).appName(f"{cfg.spark.app_name}-serve-bi")
        .config("spark.jars", ",".join(jars))
        # Also on the driver's class path: the Thrift handler threads open sessions (and resolve the Delta
        # catalog) with the system class loader, which does not see spark.jars; HiveServer2 loads the
        # authentication class the same way.
        .config("spark.driver.extraClassPath", os.pathsep.join(jars))
        .config("spark.driver.memory", cfg.spark.driver_memory)
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={metastore} -XX:+UseG1GC")
        .config("spark.sql.warehouse.dir", str(metastore / "warehouse"))
        .config("spark.hadoop.javax.jdo.option.ConnectionURL",
                f"jdbc:derby:;databaseName={metastore / 'metastore_db'};create=true")
        .config("spark.sql.session.timeZone", cfg.time_zone)
        .config("spark.sql.shuffle.partitions", str(cfg.spark.shuffle_partitions))
        .config("spark.sql.adaptive.enabled", "true")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .enableHiveSupport()
    )
    for key, value in {**cfg.spark.options, **guarded}.items():
        builder = builder.config(key, value)
    os.environ.setdefault("SPARK_LOCAL_IP", LOOPBACK)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session


def _drop_unserved(spark: SparkSession, database: str, served: list[str]) -> None:
    """Remove from the metastore what an earlier start (``--all-tables``, or a client of a server before the
    guard) left in ``database``. The entries are external tables and views: dropping one keeps its data."""
    for name, kind in _listed(spark, database):
        if name in served:
            continue
        if kind in ("EXTERNAL", "VIEW"):
            spark.sql(f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} `{database}`.`{name}`")
        else:  # a managed copy inside the metastore's warehouse: the guard refuses it; keep the data for review
            log.warning("serve-bi leaves the managed table %s.%s in the metastore (not served)", database, name)


def _listed(spark: SparkSession, database: str) -> list[tuple[str, str]]:
    """(name, EXTERNAL | MANAGED | VIEW) of the tables and views in ``database``, temporary views left out.

    Through SQL: ``spark.catalog.listTables`` fails to decode its result when Spark interprets expressions
    (``spark.sql.codegen.factoryMode=NO_CODEGEN``)."""
    views = {row["viewName"] for row in spark.sql(f"SHOW VIEWS IN `{database}`").collect()}
    listed = []
    for row in spark.sql(f"SHOW TABLES IN `{database}`").collect():  # one row per table: a metastore's few
        if row["isTemporary"]:
            continue
        name = row["tableName"]
        if name in views:
            listed.append((name, "VIEW"))
            continue
        described = spark.sql(f"DESCRIBE TABLE EXTENDED `{database}`.`{name}`").collect()
        listed.append((name, next((r["data_type"].upper() for r in described if r["col_name"] == "Type"), "")))
    return listed


def restricted_database(cfg: Config) -> str:
    """The database holding what the served views read but clients may not (user_portrait, with its ids)."""
    return f"{cfg.bi.database}_restricted"


def _register_history(spark: SparkSession, cfg: Config) -> bool:
    """``portrait_history``: user_portrait's columns except the raw ids, keyed by person_key, read at query time
    (a view, no copy). The view names user_portrait in the restricted database, not by path: path SQL is off
    for the whole server, views included. False when user_portrait does not exist yet."""
    restricted = restricted_database(cfg)
    source = io.register_tables(spark, cfg, restricted, [USER_PORTRAIT])
    _drop_unserved(spark, restricted, source)
    if not source:
        return False
    columns = ", ".join(f"`{c}`" for c in USER_PORTRAIT.columns if c not in PERSON_ID_COLUMNS)
    spark.sql(f"CREATE OR REPLACE VIEW `{cfg.bi.database}`.`{HISTORY_VIEW}` AS SELECT {columns} "
              f"FROM `{restricted}`.`{USER_PORTRAIT.name}`")
    return True


def _register(spark: SparkSession, cfg: Config, all_tables: bool) -> tuple[list[str], list[str]]:
    """Register the served tables and the history view; returns (tables, views)."""
    database = cfg.bi.database
    tables = io.register_tables(spark, cfg, database, served_tables(all_tables))
    views = [HISTORY_VIEW] if _register_history(spark, cfg) else []
    _drop_unserved(spark, database, tables + views)
    if not tables and not views:
        log.warning("no table to serve yet under %s: run `portrait daily` first", cfg.lakehouse.path)
    return tables, views


def _lock_down(spark: SparkSession, database: str, tables: list[str], views: list[str], view_sources: str,
               where: Endpoint) -> None:
    """Configure HiveServer2's authentication and TLS, then arm the guard: from here on every plan is checked.

    HiveServer2 loads the authentication class through a Hive configuration of its own, which reads Java system
    properties (Hive also copies them into each client session: the guard takes them as the server's settings).
    The keystore password goes into the Hadoop configuration the server's Hive configuration is made from, which
    no client can list, until the server listens (:func:`_forget_keystore_password`).
    """
    jvm_view = spark.sparkContext._jvm
    if where.credentials is not None:
        getattr(jvm_view, jvm.AUTHENTICATOR_CLASS).configure(where.credentials.user, where.credentials.password_sha256)
        jvm_view.java.lang.System.setProperty("hive.server2.custom.authentication.class", jvm.AUTHENTICATOR_CLASS)
    getattr(jvm_view, jvm.GUARD_CLASS).arm(spark._jsparkSession, ",".join(f"{database}.{t}" for t in tables),
                                           ",".join(f"{database}.{v}" for v in views), view_sources)
    if where.tls is not None:
        spark.sparkContext._jsc.hadoopConfiguration().set(KEYSTORE_PASSWORD_PROPERTY, where.tls.password)
        # The Thrift Server takes its Hive configuration from this thread's Hive session when there is one,
        # which the registrations left behind from before the password was set: let it make a new one.
        jvm_view.org.apache.hadoop.hive.ql.session.SessionState.detachSession()


def _wait_listening(host: str, port: int, tls: bool, seconds: float = 60.0) -> None:
    """Return once the Thrift Server accepts connections (it opens its socket on a thread of its own).

    Over TLS the probe completes a handshake before closing: a connection dropped before it makes the server
    log a failed handshake at every start, noise that would hide a real client's."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection((host, port), timeout=2) as connection:
                if tls:
                    _handshake(connection, host)
                return
        except OSError:
            if time.monotonic() > deadline:
                raise ServeError(f"the Thrift Server did not listen on {host}:{port} within {seconds:.0f} s") from None
            time.sleep(0.2)


def _handshake(connection: socket.socket, host: str) -> None:
    # The probe only learns that this process's own server answers, and sends nothing: it needs no trust in
    # the certificate, which may be self-signed (clients verify it against the CA they are given).
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with context.wrap_socket(connection, server_hostname=host):
        pass


def _forget_keystore_password(spark: SparkSession) -> None:
    """Once the TLS socket is open its password is not needed any more."""
    spark.sparkContext._jsc.hadoopConfiguration().unset(KEYSTORE_PASSWORD_PROPERTY)


def serve_bi(cfg: Config, host: str | None = None, port: int | None = None, all_tables: bool = False,
             stop: threading.Event | None = None, no_auth_local_only: bool = False,
             tls_keystore: str | None = None) -> None:
    """Register the lakehouse tables and serve them over HiveServer2 until SIGTERM/SIGINT (or ``stop``).

    Prints one line with the JDBC URL once clients can connect.
    """
    where = endpoint(cfg, host, port, no_auth_local_only, tls_keystore)
    metastore_dir(cfg)  # fails before Spark starts when there is no directory lakehouse
    _check_port_free(where.host, where.port)
    try:
        spark = bi_session(cfg, where.host, where.port, where.credentials is not None, where.tls)
    except SparkSetupError as exc:
        raise ServeError(str(exc)) from None
    stop = stop or threading.Event()
    try:
        tables, views = _register(spark, cfg, all_tables)
        sources = f"{restricted_database(cfg)}.{USER_PORTRAIT.name}"
        _lock_down(spark, cfg.bi.database, tables, views, sources, where)
        server_class = getattr(spark.sparkContext._jvm, THRIFT_SERVER_CLASS)
        server_class.startWithContext(spark._jsparkSession.sqlContext())
        _wait_listening(where.host, where.port, where.tls is not None)
        _forget_keystore_password(spark)
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signal_number, lambda *_: stop.set())
        login = (f"user {where.credentials.user}" if where.credentials else "no authentication, this machine only")
        print(f"serving {', '.join(tables + views) or 'no tables'} as database {cfg.bi.database} at "
              f"{jdbc_url(where.host, where.port, cfg.bi.database)} ({login}{', TLS' if where.tls else ''}; "
              "stop with Ctrl-C)", flush=True)
        stop.wait()
    finally:
        spark.stop()
