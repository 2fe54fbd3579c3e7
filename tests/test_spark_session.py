"""Settings of the sessions portrait starts that cost time when left at Spark's defaults."""

from __future__ import annotations

from portrait.spark import submit_args
from tests.test_bundle import load_bundle

DEBUGGING = "spark.python.sql.dataFrameDebugging.enabled"
CODE_CACHE = "spark.sql.codegen.cache.maxEntries"


def test_the_local_session_records_no_python_call_site_per_column_function(spark):
    from pyspark.errors.utils import is_debugging_enabled

    assert spark.conf.get(DEBUGGING) == "false"
    # PySpark reads the setting once; on, every pyspark.sql.functions call makes extra JVM round trips.
    assert is_debugging_enabled() is False


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
