"""Settings of the sessions portrait starts that cost time when left at Spark's defaults, and the class-data
archive their driver JVMs start from."""

from __future__ import annotations

import os
import shutil
import subprocess

from portrait.spark import CACHE_ENV, _class_archive_path, _java_executable, class_archive, jars_dir, submit_args
from tests.test_bundle import load_bundle

DEBUGGING = "spark.python.sql.dataFrameDebugging.enabled"
CODE_CACHE = "spark.sql.codegen.cache.maxEntries"


def test_the_local_session_records_no_python_call_site_per_column_function(spark):
    from pyspark.errors.utils import is_debugging_enabled

    assert spark.conf.get(DEBUGGING) == "false"
    # PySpark reads the setting once; on, every pyspark.sql.functions call makes extra JVM round trips.
    assert is_debugging_enabled() is False


def test_a_session_in_the_shops_time_zone_keeps_no_file_list_in_delta_checksums(spark):
    """Outside UTC Delta rebuilds a table's whole state after every commit to verify the file list it keeps in
    the commit's checksum; portrait's sessions (the test session too) keep no list, so there is none to verify."""
    assert spark.conf.get("spark.sql.session.timeZone") not in ("UTC", "Etc/UTC")  # the case that rebuilt
    assert spark.conf.get("spark.databricks.delta.allFilesInCrc.enabled") == "false"


def test_the_local_session_keeps_a_days_compiled_query_code(spark):
    # Static: read when the first query compiles; Spark's default of 100 classes is less than one daily run makes.
    assert int(spark.conf.get(CODE_CACHE)) >= 2000


def test_spark_submit_and_every_job_cluster_start_sessions_with_both_settings():
    args = submit_args()
    settings = dict(args[i + 1].split("=", 1) for i, arg in enumerate(args) if arg == "--conf")
    assert settings[DEBUGGING] == "false" and int(settings[CODE_CACHE]) >= 2000
    clusters = [cluster["new_cluster"] for job in load_bundle()["resources"]["jobs"].values()
                for cluster in job["job_clusters"]]
    assert clusters and all(cluster.get("spark_conf", {}).get(DEBUGGING) == "false" for cluster in clusters)
    assert all(int(cluster.get("spark_conf", {}).get(CODE_CACHE, 0)) >= 2000 for cluster in clusters)


def test_the_set_up_step_made_a_class_archive_and_the_local_session_maps_it(spark):
    """The test session starts its JVM with -Xshare:on (tests/conftest.py), under which a JVM that cannot use the
    archive refuses to start: every test passing means the archive fits the class path portrait's sessions have."""
    archive = class_archive()
    assert archive is not None, "no class-data archive: `make setup` (python -m portrait.spark class-archive) makes it"
    arguments = list(spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
                     .getInputArguments())
    # The configuration's JVM option is added to portrait's, not put in their place.
    assert f"-XX:SharedArchiveFile={archive}" in arguments and "-Xshare:on" in arguments
    assert "--driver-java-options" in submit_args() and f"-XX:SharedArchiveFile={archive}" in submit_args()
    # -Xshare:on can fail: a JVM with another class path (none) cannot use the archive and does not start.
    refused = subprocess.run([_java_executable(), "-Xshare:on", f"-XX:SharedArchiveFile={archive}", "-version"],
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "shared class paths mismatch" in refused.stdout + refused.stderr


def test_a_changed_jar_finds_no_archive(tmp_path, monkeypatch):
    """The archive's name covers the jars: a replaced jar means a new class path, which the old one would not fit."""
    delta = jars_dir()
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    copied = jars_dir()
    copied.mkdir(parents=True)
    for jar in delta.glob("*.jar"):
        (copied / jar.name).symlink_to(jar)
    (copied / ".complete").write_text("copied\n")
    archive = _class_archive_path()
    assert archive.parent == tmp_path / "class-archive"
    archive.parent.mkdir()
    archive.write_bytes(b"")
    assert class_archive() == archive
    replaced = sorted(copied.glob("*.jar"))[0]
    replaced.unlink()
    shutil.copyfile(delta / replaced.name, replaced)
    os.utime(replaced, ns=(1_000_000_000, 1_000_000_000))
    assert class_archive() is None
