"""Spark session factory and the Delta Lake jars it needs locally.

Three situations, one function (:func:`get_spark`):

* **Local** (console script, tests, ``python -m``): a ``local[N]`` session with the Delta extension and
  catalog, adaptive execution, few shuffle partitions, the session time zone from config and quiet logs.
  Delta's jars come from a local folder filled once by ``python -m portrait.spark fetch-jars`` (the set-up
  step), so later starts need no network and pay no dependency resolution. The set-up step also records the
  classes a session loads in a class-data archive (``python -m portrait.spark class-archive``), which later
  driver JVMs map instead of loading and verifying those classes from the jars again.
* **spark-submit** (local mode or ``--master spark://…``): the Python process was launched by
  spark-submit, which has already set master and jars; the session is created with the same Delta and
  SQL settings but adds no packages. ``python -m portrait.spark submit-args`` prints the ``--jars`` and
  ``--conf`` options to pass.
* **A cluster that already has a session** (Databricks): that session is reused and only session-level
  SQL settings are applied.
"""

from __future__ import annotations

import argparse
import hashlib
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
    # Sessions run in the shop's time zone. Outside UTC, Delta verifies the file list it keeps in each commit's
    # checksum (allFilesInCrc) by rebuilding the table's whole state after every commit: extra Spark jobs
    # per write, whose cost grows with the table's files. Without the list in the checksum there is nothing to
    # verify; reads rebuild state from the log as they always could.
    "spark.databricks.delta.allFilesInCrc.enabled": "false",
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
    # Files and folders Spark writes through Hadoop (tables, their logs) are the owner's only: the lakehouse
    # holds raw ids, and Hadoop applies its own umask (022 by default), not the process's.
    "spark.hadoop.fs.permissions.umask-mode": "077",
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
    # Memory pages are sized from the heap (64 MB on a 4g driver), and a broadcast join's hash relation takes at
    # least one page however few rows it holds. Broadcasts stay in storage memory until the driver's garbage
    # collector lets Spark clean them, and storage up to half the pool is never evicted for execution, so a
    # session that has run many small broadcast joins can hold hundreds of MB of nearly empty pages and then
    # fail a large aggregation for memory. A page of a few MB wastes little on small relations.
    "spark.buffer.pageSize": "4m",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.warehouse.dir": "",  # filled per lakehouse below
}
_DRIVER_JAVA_OPTIONS = "-Dderby.system.home={scratch} -XX:+UseG1GC"


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


def class_archive() -> Path | None:
    """The class-data archive the set-up step made for this JDK, pyspark and Delta jar set, if there is one.

    A driver JVM started with it maps most of the Spark, Delta and Scala classes a job loads (of a daily job's
    35,685, those not generated at run time) from one file instead of reading and verifying each from ~250
    jars: about 5 s less per cold start (docs/BENCHMARKS.md).
    The file name is a fingerprint of everything the JVM checks the archive against (its own build, the class
    path's jars with their sizes and times), so a changed JDK or jar set finds no archive and starts as before.
    """
    path = _class_archive_path()
    return path if path is not None and path.is_file() else None


def _class_archive_path() -> Path | None:
    """``<installation>-<fingerprint>.jsa``: each pyspark installation (virtualenv) keeps its own newest archive,
    so two checkouts sharing the cache do not delete each other's."""
    fingerprint = _class_path_fingerprint()
    if fingerprint is None:
        return None
    installation = hashlib.sha256(_pyspark_home().encode()).hexdigest()[:8]
    return cache_dir() / "class-archive" / f"{installation}-{fingerprint}.jsa"


def _class_path_fingerprint() -> str | None:
    java = _java_executable()
    folder = jars_dir()
    if java is None or not (folder / ".complete").exists():
        return None
    java_home = Path(java).resolve().parents[1]
    files = [java_home / "lib" / "modules", *sorted((java_home / "lib").glob("*/libjvm.so")),
             *sorted((Path(_pyspark_home()) / "jars").glob("*.jar")), *sorted(folder.glob("*.jar"))]
    digest = hashlib.sha256(str(java_home).encode())
    for file in files:
        stat = file.stat()
        digest.update(f"\0{file}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:20]


def _driver_java_options(scratch: Path) -> str:
    options = _DRIVER_JAVA_OPTIONS.format(scratch=scratch)
    archive = class_archive()
    return f"{options} -XX:SharedArchiveFile={archive}" if archive else options


# What the archive's JVM does before it exits: what a daily run's driver loads most of (session start, Delta
# writes, reads, MERGE and history, aggregations, windows, joins, the model pipeline), on a few rows. Classes
# it does not load are loaded from the jars as usual.
_ARCHIVE_WORKLOAD = """
import sys
from pyspark.ml import Pipeline
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.ml.feature import (ChiSqSelector, HashingTF, IDF, OneHotEncoder, RegexTokenizer, StringIndexer,
                                VectorAssembler)
from pyspark.sql import Window, functions as F
from portrait import spark as portrait_spark

work = sys.argv[1]
spark = portrait_spark._local_session("local[2]", "portrait-class-archive", "4g", work,
                                      {"spark.sql.shuffle.partitions": "2"}, archive_java_options=sys.argv[2])
rows = spark.range(400).select(
    F.concat(F.lit("u"), (F.col("id") % 40).cast("string")).alias("user_id"),
    F.date_add(F.lit("2026-11-01").cast("date"), (F.col("id") % 5).cast("int")).alias("dt"),
    F.timestamp_seconds(F.lit(1795000000) + F.col("id") * 37).alias("event_time"),
    F.element_at(F.array(*[F.lit(t) for t in ("view", "cart", "buy", "search")]), (F.col("id") % 4 + 1).cast("int"))
    .alias("event_type"),
    F.concat_ws(" ", F.lit("red shoe"), (F.col("id") % 7).cast("string")).alias("text"),
    (F.col("id") % 3 == 0).cast("double").alias("label"), (F.col("id") % 11).cast("double").alias("amount"))
table = f"{work}/events"
rows.write.format("delta").partitionBy("dt").mode("overwrite").save(table)
rows.where(F.col("dt") == "2026-11-02").write.format("delta").mode("overwrite") \
    .option("replaceWhere", "dt = '2026-11-02'").save(table)
events = spark.read.format("delta").load(table)
in_order = Window.partitionBy("user_id", "dt").orderBy("event_time")
daily = (events.withColumn("gap", F.col("event_time").cast("long") - F.lag("event_time").over(in_order).cast("long"))
         .groupBy("user_id", "dt").agg(F.count(F.lit(1)).alias("events"), F.sum("gap").alias("gaps"),
                                       F.sort_array(F.collect_list(F.struct("event_time", "text"))).alias("texts"))
         .join(events.groupBy("user_id", "dt", "event_type").agg(F.sum("amount").alias("amount"))
               .groupBy("user_id", "dt").agg(F.map_from_entries(F.collect_list(F.struct("event_type", "amount")))
                                             .alias("m")), ["user_id", "dt"]))
users = daily.groupBy("user_id").agg(F.sum("events").alias("events"), F.max("dt").alias("last"))
joined = users.join(F.broadcast(events.select("user_id", "label", "text", "event_type", "amount").distinct()),
                    "user_id").join(daily.select("user_id", F.explode("m")), "user_id", "left")
joined.write.format("delta").mode("overwrite").save(f"{work}/joined")
from delta.tables import DeltaTable
DeltaTable.forPath(spark, table).alias("t").merge(rows.limit(10).alias("s"), "t.user_id = s.user_id AND t.dt = s.dt") \
    .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute()
DeltaTable.forPath(spark, table).history().collect()
training = spark.read.format("delta").load(f"{work}/joined").toPandas()
training = spark.createDataFrame(training)
stages = [RegexTokenizer(inputCol="text", outputCol="words"),
          HashingTF(inputCol="words", outputCol="tf", numFeatures=64), IDF(inputCol="tf", outputCol="tfidf"),
          StringIndexer(inputCol="event_type", outputCol="kind"),
          OneHotEncoder(inputCol="kind", outputCol="kinds"),
          VectorAssembler(inputCols=["tfidf", "kinds", "amount", "events"], outputCol="raw"),
          ChiSqSelector(numTopFeatures=8, featuresCol="raw", outputCol="features", labelCol="label"),
          LogisticRegression(maxIter=5, regParam=0.01)]
model = Pipeline(stages=stages).fit(training)
BinaryClassificationEvaluator().evaluate(model.transform(training))
model.write().overwrite().save(f"{work}/model")
spark.stop()
"""


def build_class_archive(force: bool = False) -> Path | None:
    """Make the class-data archive :func:`class_archive` finds (the set-up step: ~100 s on 2 cores, once per JDK
    and jar set).

    A JVM dumps the classes it loaded at exit (``-XX:ArchiveClassesAtExit``) after running the workload above
    in a local session built as every local session is. The dump goes to a temporary file that becomes the archive
    only after a JVM has opened it, since a truncated archive would crash every JVM that maps it.
    Returns None when no Java is found (Spark cannot start either; :func:`get_spark` says so).
    """
    target = _class_archive_path()
    if target is None:
        delta_jars()  # raises with what to do when the jars are missing
        return None
    if target.is_file() and not force:
        return target
    folder = target.parent
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as staging:
        dump = Path(staging) / "classes.jsa"
        # C1 only: this short recording run warms up sooner; the archive holds classes, not compiled code.
        recording = f"-XX:ArchiveClassesAtExit={dump} -XX:TieredStopAtLevel=1"
        result = subprocess.run(
            [sys.executable, "-c", _ARCHIVE_WORKLOAD, staging, recording],
            capture_output=True, text=True, env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1",
                                                "PYSPARK_PYTHON": sys.executable})
        if result.returncode != 0 or not dump.is_file():
            raise SparkSetupError(f"could not record the class-data archive:\n{result.stderr[-3000:]}")
        opened = subprocess.run([_java_executable(), f"-XX:SharedArchiveFile={dump}", "-version"],
                                capture_output=True, text=True)
        if opened.returncode != 0:
            raise SparkSetupError(f"the recorded class-data archive does not open:\n{opened.stdout[-2000:]}")
        os.replace(dump, target)
    installation = target.name.split("-", 1)[0]
    for stale in folder.glob(f"{installation}-*.jsa"):  # this installation's archives for older JDKs or jars
        if stale != target:
            stale.unlink(missing_ok=True)
    return target


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
    warehouse = Path(cfg.lakehouse.path or tempfile.gettempdir()).resolve() / "_warehouse"
    _require_java()
    session = _local_session(cfg.spark.master, cfg.spark.app_name, cfg.spark.driver_memory, warehouse,
                             cfg.spark.options)
    _apply_session_settings(session, cfg)
    return session


def _local_session(master: str, app_name: str, driver_memory: str, warehouse: Path | str,
                   options: dict[str, str], archive_java_options: str | None = None) -> SparkSession:
    """A new local session with Delta and portrait's settings. ``options`` win over them, except the driver's
    JVM options, which are added to portrait's. ``archive_java_options``: instead of the class-data archive,
    these options (the set-up step records the archive with them)."""
    scratch = cache_dir() / "spark-scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    java_options = [_DRIVER_JAVA_OPTIONS.format(scratch=scratch) if archive_java_options is not None
                    else _driver_java_options(scratch), archive_java_options,
                    options.get("spark.driver.extraJavaOptions")]
    builder = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.jars", ",".join(str(j) for j in delta_jars()))
        .config("spark.driver.memory", driver_memory)
        .config("spark.driver.extraJavaOptions", " ".join(filter(None, java_options)))
    )
    for key, value in {**_STATIC_SETTINGS, **_LOCAL_SETTINGS, "spark.sql.warehouse.dir": str(warehouse)}.items():
        builder = builder.config(key, value)
    for key, value in options.items():
        if key != "spark.driver.extraJavaOptions":
            builder = builder.config(key, value)
    # Bind to loopback: a laptop's or CI machine's host name may not resolve to a reachable address.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # Python workers must run this interpreter (the one with portrait installed), not the first python3.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return builder.getOrCreate()


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


def _java_executable() -> str | None:
    """The java spark-submit starts: JAVA_HOME's when set, else the first on PATH."""
    if os.environ.get("JAVA_HOME"):
        return shutil.which("java", path=os.path.join(os.environ["JAVA_HOME"], "bin"))
    return shutil.which("java")


def _require_java() -> None:
    if _java_executable() is None:
        raise SparkSetupError(
            "Java was not found. portrait runs Spark, which needs Java 17 or newer: install OpenJDK 17 "
            "(e.g. `apt-get install openjdk-17-jre-headless`) or set JAVA_HOME."
        )


DEFAULT_SUBMIT_DRIVER_MEMORY = "4g"


def submit_args(driver_memory: str = DEFAULT_SUBMIT_DRIVER_MEMORY) -> list[str]:
    """spark-submit options that give a submitted job the Delta jars, Delta settings and driver memory.

    Driver memory must be given here: under spark-submit the driver JVM starts before portrait runs. With the
    set-up step's class-data archive on this machine the driver maps it (``--driver-java-options``; a driver
    started elsewhere, as in cluster deploy mode, would not find the file: leave the option out there).
    """
    args = ["--jars", ",".join(str(j) for j in delta_jars()), "--driver-memory", driver_memory]
    archive = class_archive()
    if archive is not None:
        args += ["--driver-java-options", f"-XX:SharedArchiveFile={archive}"]
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
    archive = sub.add_parser("class-archive", help="record the class-data archive driver JVMs start from (once)")
    archive.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch-jars":
            jars = fetch_delta_jars(force=args.force)
            print(f"{len(jars)} jars for {delta_maven_coordinate()} in {jars_dir()}")
        elif args.command == "class-archive":
            delta_jars()  # missing jars are an error of the set-up step; a failed recording below is not
            try:
                path = build_class_archive(force=args.force)
            except SparkSetupError as exc:
                print(f"warning: {exc}\nSpark will start without a class-data archive (a few seconds slower per "
                      "start); run `python -m portrait.spark class-archive` again to retry.", file=sys.stderr)
                return 0
            print(f"class-data archive: {path}" if path else "no Java found: no class-data archive made")
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
