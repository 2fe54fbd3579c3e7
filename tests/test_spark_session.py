"""Settings of the sessions portrait starts that cost time when left at Spark's defaults."""

from __future__ import annotations

from portrait.spark import submit_args
from tests.test_bundle import load_bundle

DEBUGGING = "spark.python.sql.dataFrameDebugging.enabled"


def test_the_local_session_records_no_python_call_site_per_column_function(spark):
    from pyspark.errors.utils import is_debugging_enabled

    assert spark.conf.get(DEBUGGING) == "false"
    # PySpark reads the setting once; on, every pyspark.sql.functions call makes extra JVM round trips.
    assert is_debugging_enabled() is False


def test_spark_submit_and_every_job_cluster_start_sessions_without_it():
    args = submit_args()
    assert f"{DEBUGGING}=false" in [args[i + 1] for i, arg in enumerate(args) if arg == "--conf"]
    clusters = [cluster["new_cluster"] for job in load_bundle()["resources"]["jobs"].values()
                for cluster in job["job_clusters"]]
    assert clusters and all(cluster.get("spark_conf", {}).get(DEBUGGING) == "false" for cluster in clusters)
