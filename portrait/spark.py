"""Spark session factory and the Delta Lake jars it needs locally.

Three situations, one function (:func:`get_spark`):

* **Local** (console script, tests, ``python -m``): a ``local[N]`` session with the Delta extension and
  catalog, adaptive execution, few shuffle partitions, the session time zone from config and quiet logs.
  Delta's jars come from a local folder filled once by ``python -m portrait.spark fetch-jars`` (the set-up
  step), so later starts need no network and pay no dependency resolution.
* **spark-submit** (local mode or ``--master spark://…``): the Python process was launched by
  spark-submit, which has already set master and jars; the session is created with the same Delta and
  SQL settings but adds no packages. ``python -m portrait.spark submit-args`` prints the ``--jars`` and
  ``--conf`` options to pass.
* **A cluster that already has a session** (Databricks): that session is reused and only session-level
  SQL settings are applied.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from pyspark.sql import SparkSession

from portrait.config import Config

SCALA_BINARY_VERSION = "2.13"
DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
CACHE_ENV = "PORTRAIT_CACHE_DIR"

# Settings every session gets, wherever it runs.  Static ones only take effect when portrait creates the
# session; on a reused cluster session the cluster's own settings win.
_SQL_SETTINGS = {
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.adaptive.coalescePartitions.enabled": "true",
    "spark.sql.sources.partitionOverwriteMode": "static",
    "spark.databricks.delta.schema.autoMerge.enabled": "false",
}
_STATIC_SETTINGS = {
    "spark.sql.extensions": DELTA_EXTENSION,
    "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
    # On, PySpark wraps every pyspark.sql.functions call in ~6 extra JVM round trips to record the Python call
    # site for error contexts: about half of a daily run's 67k driver-to-JVM calls, 12 of its 72 s on a small shop
    # (docs/BENCHMARKS.md). Errors still name the failing expression and Python's traceback the line.
    "spark.python.sql.dataFrameDebugging.enabled": "false",
    # Compiled query code is kept in an LRU cache of 100 classes by default. One daily run makes several hundred
    # (Delta's own state and statistics projections among them), so each run compiled again what the previous
    # one had compiled: with 2,000 a small shop's steady-state run went 60 -> 45 s (docs/BENCHMARKS.md).
    "spark.sql.codegen.cache.maxEntries": "2000",
}
# Session-level settings for any local-mode session, including one started by spark-submit --master local.
_LOCAL_SQL_SETTINGS = {
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # Delta rebuilds table state with this many tasks (default 50); a small machine wants few.
    "spark.databricks.delta.snapshotPartitions": "2",
    # VACUUM lists a table's directories in this many tasks (Spark's default: 10,000 nearly empty ones, 40-70 s
    # per table on two cores); a few tasks list the same files.
    "spark.sql.sources.parallelPartitionDiscovery.parallelism": "4",
}
_LOCAL_SETTINGS = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.warehouse.dir": "",  # filled per lakehouse below
    "spark.driver.extraJavaOptions": "-Dderby.system.home={scratch} -XX:+UseG1GC",
}


class SparkSetupError(RuntimeError):
    """Spark cannot start as configured; the message says what to do."""


def delta_maven_coordinate() -> str:
    """The Maven coordinate of the Delta jar matching the installed pyspark and delta-spark."""
    import pyspark

    spark_minor = ".".join(pyspark.__version__.split(".")[:2])
    delta_version = metadata.version("delta-spark")
    return f"io.delta:delta-spark_{spark_minor}_{SCALA_BINARY_VERSION}:{delta_version}"


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "portrait")).expanduser().resolve()


def jars_dir() -> Path:
    coordinate = delta_maven_coordinate().replace(":", "_")
    return cache_dir() / "jars" / coordinate


def delta_jars() -> list[Path]:
    """The Delta jars fetched by the set-up step; raises with instructions when they are missing."""
    folder = jars_dir()
    jars = sorted(folder.glob("*.jar")) if (folder / ".complete").exists() else []
    if not jars:
        raise SparkSetupError(
            f"Delta Lake jars for {delta_maven_coordinate()} are not in {folder}. "
            "Run the set-up step once with network access: `python -m portrait.spark fetch-jars` "
            "(`make setup` does it)."
        )
    return jars


def fetch_delta_jars(force: bool = False) -> list[Path]:
    """Resolve the Delta jar and its dependencies from Maven Central once, into :func:`jars_dir`.

    Resolution runs through Spark's own Ivy (``spark.jars.packages``) in a child process. Jars that pyspark
    already ships (Hadoop, Parquet, Jackson, …) are left out so Spark's versions are the only ones on the
    class path.
    """
    target = jars_dir()
    if (target / ".complete").exists() and not force:
        return sorted(target.glob("*.jar"))
    ivy_home = cache_dir() / "ivy"
    script = (
        "from pyspark.sql import SparkSession\n"
        "s = (SparkSession.builder.master('local[1]')"
        f".config('spark.jars.packages', {delta_maven_coordinate()!r})"
        f".config('spark.jars.ivy', {str(ivy_home)!r})"
        ".config('spark.ui.enabled', 'false').getOrCreate())\n"
        "s.stop()\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    if result.returncode != 0:
        raise SparkSetupError(
            f"could not fetch {delta_maven_coordinate()} from Maven Central:\n{result.stderr[-3000:]}"
        )
    shipped = _artifact_names(Path(_pyspark_home()) / "jars")
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as staging:
        for jar in sorted((ivy_home / "jars").glob("*.jar")):
            artifact = _artifact_name(jar.name.split("_", 1)[-1])
            if artifact not in shipped:
                shutil.copy2(jar, Path(staging) / jar.name)
        for jar in Path(staging).glob("*.jar"):
            shutil.move(str(jar), target / jar.name)
    (target / ".complete").write_text(delta_maven_coordinate() + "\n")
    return sorted(target.glob("*.jar"))


def _pyspark_home() -> str:
    import pyspark

    return os.path.dirname(pyspark.__file__)


def _artifact_name(jar_name: str) -> str:
    """``parquet-hadoop-1.16.0.jar`` → ``parquet-hadoop``."""
    return re.sub(r"-\d[\w.\-]*\.jar$", "", jar_name)


def _artifact_names(folder: Path) -> set[str]:
    return {_artifact_name(p.name) for p in folder.glob("*.jar")}


def launched_by_spark_submit() -> bool:
    """True when spark-submit (or a cluster) started this Python process and owns the JVM."""
    return "PYSPARK_GATEWAY_PORT" in os.environ or "DATABRICKS_RUNTIME_VERSION" in os.environ


def get_spark(cfg: Config) -> SparkSession:
    """Return the session for this run: reuse an active one, or build a local one for ``cfg``.

    On a cluster (an active session exists, or spark-submit launched this process) no packages or master
    are set; only session-level SQL settings. Locally the session is tuned for a small machine.
    """
    active = SparkSession.getActiveSession()
    if active is None and launched_by_spark_submit():
        builder = SparkSession.builder.appName(cfg.spark.app_name)
        for key, value in {**_STATIC_SETTINGS, **cfg.spark.options}.items():
            builder = builder.config(key, value)
        active = builder.getOrCreate()
        _require_delta(active)
    if active is not None:
        _apply_session_settings(active, cfg)
        return active
    return _build_local(cfg)


def _build_local(cfg: Config) -> SparkSession:
    scratch = cache_dir() / "spark-scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    warehouse = Path(cfg.lakehouse.path or tempfile.gettempdir()).resolve() / "_warehouse"
    builder = (
        SparkSession.builder.master(cfg.spark.master)
        .appName(cfg.spark.app_name)
        .config("spark.jars", ",".join(str(j) for j in delta_jars()))
        .config("spark.driver.memory", cfg.spark.driver_memory)
    )
    settings = {**_STATIC_SETTINGS, **_LOCAL_SETTINGS, "spark.sql.warehouse.dir": str(warehouse)}
    for key, value in settings.items():
        builder = builder.config(key, value.format(scratch=scratch))
    for key, value in cfg.spark.options.items():
        builder = builder.config(key, value)
    _require_java()
    # Bind to loopback: a laptop's or CI machine's host name may not resolve to a reachable address.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # Python workers must run this interpreter (the one with portrait installed), not the first python3.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = builder.getOrCreate()
    _apply_session_settings(session, cfg)
    return session


def _apply_session_settings(session: SparkSession, cfg: Config) -> None:
    session.conf.set("spark.sql.session.timeZone", cfg.time_zone)
    session.conf.set("spark.sql.shuffle.partitions", str(cfg.spark.shuffle_partitions))
    settings = dict(_SQL_SETTINGS)
    if session.sparkContext.master.startswith("local"):
        settings.update(_LOCAL_SQL_SETTINGS)
    for key, value in settings.items():
        session.conf.set(key, value)
    session.sparkContext.setLogLevel("WARN")


def _require_delta(session: SparkSession) -> None:
    jvm = session.sparkContext._jvm
    try:
        jvm.java.lang.Class.forName(
            "io.delta.tables.DeltaTable", True, jvm.Thread.currentThread().getContextClassLoader()
        )
    except Exception as exc:  # py4j wraps the ClassNotFoundException
        raise SparkSetupError(
            "Delta Lake is not on this Spark application's class path. Pass the options printed by "
            "`python -m portrait.spark submit-args` to spark-submit."
        ) from exc


def _require_java() -> None:
    java = shutil.which("java", path=os.path.join(os.environ["JAVA_HOME"], "bin")) if os.environ.get(
        "JAVA_HOME") else shutil.which("java")
    if java is None:
        raise SparkSetupError(
            "Java was not found. portrait runs Spark, which needs Java 17 or newer: install OpenJDK 17 "
            "(e.g. `apt-get install openjdk-17-jre-headless`) or set JAVA_HOME."
        )


DEFAULT_SUBMIT_DRIVER_MEMORY = "4g"


def submit_args(driver_memory: str = DEFAULT_SUBMIT_DRIVER_MEMORY) -> list[str]:
    """spark-submit options that give a submitted job the Delta jars, Delta settings and driver memory.

    Driver memory must be given here: under spark-submit the driver JVM starts before portrait runs.
    """
    args = ["--jars", ",".join(str(j) for j in delta_jars()), "--driver-memory", driver_memory]
    for key, value in {**_STATIC_SETTINGS, "spark.ui.showConsoleProgress": "false"}.items():
        args += ["--conf", f"{key}={value}"]
    return args


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m portrait.spark", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch-jars", help="download the Delta jars once into the local cache")
    fetch.add_argument("--force", action="store_true")
    submit = sub.add_parser("submit-args", help="print spark-submit options for Delta, one per line")
    submit.add_argument("--driver-memory", default=DEFAULT_SUBMIT_DRIVER_MEMORY)
    sub.add_parser("jars", help="print the Delta jar paths, comma-separated")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch-jars":
            jars = fetch_delta_jars(force=args.force)
            print(f"{len(jars)} jars for {delta_maven_coordinate()} in {jars_dir()}")
        elif args.command == "submit-args":
            print("\n".join(submit_args(args.driver_memory)))
        else:
            print(",".join(str(j) for j in delta_jars()))
    except SparkSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
