"""Train → register → promote → load against a real MLflow tracking server over HTTP.

A fixture starts ``mlflow server`` on loopback (SQLite backend store, artifacts proxied by the server from a
local ``--artifacts-destination``) on a free port, waits for ``/health`` and stops the server's process group
afterwards. Nothing here touches a file store directly: every call goes through the REST API.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest

from portrait.model import tracking
from portrait.model.evaluation import evaluate_model
from portrait.model.explain import explain_model
from portrait.model.pipeline import build_pipeline
from portrait.model.promotion import FIRST_CHAMPION, promote
from portrait.model.scoring import SCORE, score
from tests.conftest import make_config
from tests.net_helpers import PortInUse, start_on_free_port
from tests.test_scoring import LABELLED, SETTINGS, _row

pytestmark = pytest.mark.slow

STARTUP_SECONDS = 180


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _stop(server: subprocess.Popen) -> None:
    """Stop the server's process group (its workers too); nothing to do when none of it is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)


def _start_server(root: Path, port: int) -> tuple[subprocess.Popen, str]:
    """``mlflow server`` on ``port``, healthy; :class:`PortInUse` when another process took the port first."""
    url = f"http://127.0.0.1:{port}"
    log_path = root / f"server-{port}.log"
    command = [
        str(Path(sys.executable).parent / "mlflow"), "server",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--serve-artifacts", "--artifacts-destination", str(root / "artifacts"),
    ]
    with open(log_path, "wb") as log:
        # Own session, so stopping it stops the server's workers too (and nothing else).
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        if server.poll() is not None:  # first: a server that lost the port must not take another's for its own
            _stop(server)  # workers it may have left in its session
            output = log_path.read_text()
            if "address already in use" in output.lower():
                raise PortInUse(f"port {port}: {output[-500:]}")
            pytest.fail(f"mlflow server exited with {server.returncode}:\n{output[-3000:]}")
        if time.monotonic() > deadline:
            _stop(server)
            pytest.fail(f"mlflow server not healthy after {STARTUP_SECONDS} s:\n{log_path.read_text()[-3000:]}")
        if _healthy(url):
            return server, url
        time.sleep(1)


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory):
    root: Path = tmp_path_factory.mktemp("mlflow_server")
    server, url = start_on_free_port(lambda port: _start_server(root, port))
    try:
        yield url
    finally:
        _stop(server)


def test_train_register_promote_and_load_over_http(spark, tracking_server, tmp_path):
    # No artifact location: the experiment uses the server's proxied artifact store (mlflow-artifacts:/).
    cfg = make_config(tmp_path, MLFLOW__TRACKING_URI=tracking_server, MLFLOW__ARTIFACT_LOCATION="")
    assert cfg.mlflow.artifact_location is None
    labelled = spark.createDataFrame([_row(i) for i in range(200)], LABELLED)
    model = build_pipeline(SETTINGS).fit(labelled)
    scored = labelled.transform(score(model))
    report = evaluate_model(scored, seed=SETTINGS.seed)
    explanation = explain_model(model, labelled, max_tokens=100)

    logged = tracking.log_training_run(cfg, model, labelled, {"step": "http"}, report.metrics, run_name="http",
                                       evaluation=report, explanation=explanation)
    assert logged.registered_version == "1"
    decision = promote(cfg, logged, labelled, report.metrics["auc_roc"])
    assert decision.outcome == FIRST_CHAMPION

    assert mlflow.get_tracking_uri() == tracking_server
    experiment = mlflow.get_experiment_by_name(cfg.mlflow.experiment)
    assert experiment.artifact_location.startswith("mlflow-artifacts:")
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(logged.run_id, "evaluation")}
    assert "evaluation/roc.png" in artifacts

    uri = tracking.champion_model_uri(cfg)
    loaded = tracking.load_model(uri)
    assert tracking.run_id_of(uri) == logged.run_id
    expected = {r["user_id"]: r[SCORE] for r in scored.select("user_id", SCORE).collect()}
    actual = {r["user_id"]: r[SCORE] for r in labelled.transform(score(loaded)).select("user_id", SCORE).collect()}
    assert actual == expected
    assert tracking.load_explanation(uri) == explanation
