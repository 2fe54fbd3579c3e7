"""Shared fixtures: one local SparkSession for the whole run, and a fresh lakehouse per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from portrait.config import Config, load_config

# BI stages need the pseudonymisation key and it only ever comes from the environment. Tests use a fixed,
# openly non-secret one (also inherited by the jobs tests start as subprocesses); a test about a missing key
# passes its own environment.
TEST_PSEUDONYM_KEY = "test-only-pseudonym-key-not-a-secret"
os.environ.setdefault("PORTRAIT_PSEUDONYM_KEY", TEST_PSEUDONYM_KEY)

REPO = Path(__file__).resolve().parents[1]
LOCAL_CONF = REPO / "conf" / "local.yml"


def config_environ(root: Path, **overrides: str) -> dict[str, str]:
    """``PORTRAIT__…`` variables that move the local configuration's lakehouse and MLflow under ``root``.

    ``overrides`` use the variable syntax without prefix, e.g. ``MODEL__MAX_ITER="20"``.
    """
    return {
        "PORTRAIT__ENVIRONMENT": "test",
        "PORTRAIT__LAKEHOUSE__PATH": str(root / "lakehouse"),
        "PORTRAIT__MLFLOW__TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "PORTRAIT__MLFLOW__ARTIFACT_LOCATION": str(root / "mlartifacts"),
        "PORTRAIT__SPARK__SHUFFLE_PARTITIONS": "2",
        **{f"PORTRAIT__{key}": value for key, value in overrides.items()},
    }


def make_config(root: Path, **overrides: str) -> Config:
    """The local configuration with its lakehouse and MLflow store under ``root`` (see config_environ)."""
    return load_config(LOCAL_CONF, environ=config_environ(root, **overrides))


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    from portrait.spark import get_spark

    cfg = make_config(tmp_path_factory.mktemp("session"))
    session = get_spark(cfg)
    yield session
    session.stop()


@pytest.fixture
def cfg(tmp_path) -> Config:
    return make_config(tmp_path)
