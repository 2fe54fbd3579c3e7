"""Shared fixtures: one local SparkSession for the whole run, and a fresh lakehouse per test."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from portrait.config import Config, load_config

# pytest-xdist workers (`make test PYTEST_ARGS="-n 2"`) run with a __main__ module that has neither __spec__
# nor __file__; pyspark.ml.connect, imported by mlflow.spark.log_model, takes that for a doctest run and calls
# sys.exit(0). Naming the worker's main module avoids it; a plain pytest process is unaffected.
_main = sys.modules["__main__"]
if getattr(_main, "__spec__", None) is None and not hasattr(_main, "__file__"):
    _main.__file__ = "pytest-xdist-worker"

# BI stages need the pseudonymisation key and it only ever comes from the environment. Tests use a fixed,
# openly non-secret one (also inherited by the jobs tests start as subprocesses); a test about a missing key
# passes its own environment.
TEST_PSEUDONYM_KEY = "test-only-pseudonym-key-not-a-secret"
os.environ.setdefault("PORTRAIT_PSEUDONYM_KEY", TEST_PSEUDONYM_KEY)

REPO = Path(__file__).resolve().parents[1]
LOCAL_CONF = REPO / "conf" / "local.yml"


# A small model for end-to-end tests about operations rather than model quality (the quality tests — planted
# signal, leakage, Spark vs scikit-learn — keep the configured model): fewer snapshots, buckets and iterations.
FAST_MODEL: dict[str, str] = {"MODEL__TRAINING_SNAPSHOTS": "2", "MODEL__MAX_ITER": "20",
                              "MODEL__HASHING_FEATURES": "1024", "MODEL__SELECTED_TEXT_FEATURES": "50"}


# Test data is small: compiling Java for every new query shape costs more than evaluating the expressions
# directly (docs/BENCHMARKS.md, test suite). Every
# session and job process the tests start interprets, except the standalone cluster's job, which keeps Spark's
# code generation as production runs it (so CI also checks that both give the same portrait), and the
# end-to-end module, whose runs are large enough for compiling to pay (tests/test_end_to_end.py).
INTERPRETED_SPARK_OPTIONS = '{"spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN"}'


def config_environ(root: Path, **overrides: str) -> dict[str, str]:
    """``PORTRAIT__…`` variables that move the local configuration's lakehouse and MLflow under ``root``
    and make Spark interpret expressions (:data:`INTERPRETED_SPARK_OPTIONS`).

    ``overrides`` use the variable syntax without prefix, e.g. ``MODEL__MAX_ITER="20"``.
    """
    return {
        "PORTRAIT__SPARK__OPTIONS": INTERPRETED_SPARK_OPTIONS,
        "PORTRAIT__ENVIRONMENT": "test",
        "PORTRAIT__LAKEHOUSE__PATH": str(root / "lakehouse"),
        "PORTRAIT__MLFLOW__TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "PORTRAIT__MLFLOW__ARTIFACT_LOCATION": str(root / "mlartifacts"),
        "PORTRAIT__SPARK__SHUFFLE_PARTITIONS": "2",
        # One model per daily run unless a test asks for churn too (it doubles the training time).
        "PORTRAIT__MODEL__TARGETS": "[purchase]",
        **{f"PORTRAIT__{key}": value for key, value in overrides.items()},
    }


def make_config(root: Path, **overrides: str) -> Config:
    """The local configuration with its lakehouse and MLflow store under ``root`` (see config_environ)."""
    return load_config(LOCAL_CONF, environ=config_environ(root, **overrides))


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    from portrait.spark import get_spark

    # Interprets (INTERPRETED_SPARK_OPTIONS). -Xshare:on: the JVM does not start unless it can map the set-up
    # step's class-data archive (portrait.spark.class_archive), so the archive is proven to fit the class path.
    options = json.dumps({**json.loads(INTERPRETED_SPARK_OPTIONS), "spark.driver.extraJavaOptions": "-Xshare:on"})
    session = get_spark(make_config(tmp_path_factory.mktemp("session"), SPARK__OPTIONS=options))
    assert session.conf.get("spark.sql.codegen.factoryMode") == "NO_CODEGEN"
    yield session
    session.stop()


@pytest.fixture
def cfg(tmp_path) -> Config:
    return make_config(tmp_path)


def run_process(command: list[str], environ: dict[str, str], timeout: int = 600):
    """Run a job process from the repository root with the test environment plus ``environ``."""
    import subprocess

    env = {**os.environ, **environ, "PYSPARK_PYTHON": sys.executable}
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def daily_shop(spark, tmp_path_factory):
    """``make run``'s daily run on a generated shop, once per session (tests/shops.py): the end-to-end,
    leakage and re-run tests read it, and a test that writes works on a copy."""
    from tests import shops

    return shops.build_daily(spark, tmp_path_factory.mktemp("daily_shop") / "shop")


@pytest.fixture(scope="session")
def process_shop(spark, tmp_path_factory):
    """The bundle's daily and weekly jobs run as processes on one generated shop (tests/shops.py), once per
    session: every test about job processes reads it instead of running whole jobs of its own."""
    from tests import shops

    return shops.build(spark, tmp_path_factory.mktemp("process_shop"))


def pytest_collection_modifyitems(config, items):
    """Slow end-to-end modules first: with several workers (``-n``) the long ones start early instead of
    leaving one worker busy at the end. The sort is stable, so the order within each group is kept."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
