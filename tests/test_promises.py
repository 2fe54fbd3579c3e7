"""Promises of the README and docs/OPERATIONS.md that no other test checked (issue 37).

Replay reports a tampered portrait (exit 1) and refuses tampered features; ``monitoring.fail_on_breach`` fails
the monitor task after writing its rows; a failed quality gate exits 3 from ``score`` and ``daily`` and
leaves the published partition alone; ``score --model-uri`` scores with the version named; training on too
little history raises :class:`NotEnoughHistoryError`; the ``generate``, ``train``, ``identity`` and
``monitor`` commands print their line and exit 0; no raw customer id reaches MLflow's store or artifacts.

The shop is the session's process shop (tests/shops.py), shared and read-only: a test that writes works on a
copy (lakehouse, MLflow store and artifacts) with an MLflow experiment of its own, because the copied store's
experiments name the original artifact folder and runs logged there would write into it. Commands run
in-process through ``portrait.cli.main`` with the copy's ``PORTRAIT__`` environment.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import shutil
from pathlib import Path
from typing import NamedTuple

import mlflow
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from portrait import io
from portrait.cli import main
from portrait.config import Config, load_config
from portrait.lakehouse import Lakehouse
from portrait.model import tracking
from portrait.schemas import (
    CLICKSTREAM,
    IDENTITY_GRAPH,
    INPUT_TABLES,
    JOB_RUNS,
    MONITORING,
    PUBLISH_CHECKS,
    USER_FEATURES,
    USER_PORTRAIT,
    USERS,
)
from portrait.stages import ingest, operations, train
from tests.conftest import LOCAL_CONF, config_environ, make_config
from tests.shops import RUN_DATE, SHOP

DAY = RUN_DATE
EXPERIMENT = "promises"  # the copies' own experiment: runs logged there keep their artifacts under the copy


class ShopCopy(NamedTuple):
    root: Path
    environ: dict[str, str]  # PORTRAIT__ variables pointing the local configuration at the copy

    def cfg(self) -> Config:
        return load_config(LOCAL_CONF, environ=self.environ)


def copy_shop(process_shop, root: Path) -> ShopCopy:
    """The process shop's lakehouse, MLflow store and artifacts copied to ``root`` (its event logs are not)."""
    shutil.copytree(process_shop.root, root, ignore=shutil.ignore_patterns("spark-events"))
    return ShopCopy(root, config_environ(root, **SHOP, MLFLOW__EXPERIMENT=EXPERIMENT))


@pytest.fixture(scope="module")
def shop_copy(process_shop, tmp_path_factory) -> ShopCopy:
    """One copy for the tests that only run commands: each replaces what it checks (a date's monitoring rows,
    the portrait, the identity graph) or adds what only it reads (a model version, failed job_runs rows)."""
    return copy_shop(process_shop, tmp_path_factory.mktemp("promises") / "shop")


@pytest.fixture(scope="module")
def replay_copy(process_shop, tmp_path_factory) -> ShopCopy:
    """A copy for the tampering tests: each adds a run of its own whose recorded version was tampered."""
    return copy_shop(process_shop, tmp_path_factory.mktemp("replay") / "shop")


@pytest.fixture
def portrait_cli(monkeypatch, capsys):
    """``portrait <job> --conf conf/local.yml --date DAY …`` in-process with ``environ`` (plus ``PORTRAIT__``
    overrides): (exit code, stdout, the ``error:`` lines of stderr)."""

    def run(environ: dict[str, str], job: str, *args: str, **overrides: str) -> tuple[int, str, list[str]]:
        for name, value in {**environ, **{f"PORTRAIT__{k}": v for k, v in overrides.items()}}.items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        try:
            code = main([job, "--conf", str(LOCAL_CONF), "--date", DAY.isoformat(), *args])
        finally:  # main points the root logger at this test's captured stderr; later tests log elsewhere
            root.handlers[:] = handlers
            root.setLevel(level)
        out, err = capsys.readouterr()
        return code, out, [line for line in err.splitlines() if line.startswith("error:")]

    return run


def _day(spark, cfg: Config, contract):
    return io.read_table(spark, cfg, contract).where(F.col("dt") == F.lit(DAY))


def _run_ids(spark, cfg: Config) -> set[str]:
    return {row["run_id"] for row in io.read_table(spark, cfg, JOB_RUNS).select("run_id").collect()}


def _new_runs(spark, cfg: Config, before: set[str]) -> list[tuple]:
    rows = io.read_table(spark, cfg, JOB_RUNS).where(~F.col("run_id").isin(*before)).collect()
    return sorted((r["job"], r["status"], r["mlflow_run_id"], r["error_message"]) for r in rows)


def _bundle_score_run(spark, process_shop):
    """The job_runs row of the process shop's score task (the one run that published its portrait)."""
    runs = io.read_table(spark, process_shop.cfg, JOB_RUNS).where(F.col("job") == "score").collect()
    assert len(runs) == 1 and runs[0]["status"] == "succeeded"
    return runs[0]


def _client(cfg: Config) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=cfg.mlflow.tracking_uri, registry_uri=cfg.mlflow.tracking_uri)


# ---------------------------------------------------------------------------------------------------- replay


def _forge_tampered_run(lake: Lakehouse, run, contract, tamper) -> str:
    """A published value of ``run`` tampered with: ``contract``'s rows of the date as ``run`` recorded them,
    changed by ``tamper``, written as a new version, and a job_runs row like ``run`` (new run id) naming it."""
    recorded = lake.read_day(contract, DAY, version=run["output_versions"][contract.name])
    lake.replace_day(contract, recorded.transform(tamper), DAY)
    forged = {**run.asDict(), "run_id": f"tampered-{contract.name}",
              "output_versions": {**run["output_versions"], contract.name: lake.version(contract)}}
    lake.append(JOB_RUNS, lake.rows(JOB_RUNS, [tuple(forged[name] for name in JOB_RUNS.schema.fieldNames())]))
    return forged["run_id"]


def _set_for(user_id: str, column: str, value):
    return lambda frame: frame.withColumn(
        column, F.when(F.col("user_id") == user_id, F.lit(value)).otherwise(F.col(column)))


@pytest.mark.slow
def test_replay_of_the_published_run_on_an_untouched_copy_matches(spark, process_shop, tmp_path):
    shop = copy_shop(process_shop, tmp_path / "shop")
    run = _bundle_score_run(spark, process_shop)
    published = _day(spark, process_shop.cfg, USER_PORTRAIT).count()
    assert published > 100
    assert operations.replay_matches(Lakehouse(spark, shop.cfg()), run["run_id"]) == (0, published)


@pytest.mark.slow
def test_replay_reports_a_tampered_portrait_value_and_exits_1(spark, process_shop, replay_copy, portrait_cli):
    lake = Lakehouse(spark, replay_copy.cfg())
    run = _bundle_score_run(spark, process_shop)
    published = lake.read_day(USER_PORTRAIT, DAY, version=run["output_versions"][USER_PORTRAIT.name])
    victim = published.orderBy("user_id").first()
    assert victim["purchase_propensity"] != 0.123
    forged = _forge_tampered_run(lake, run, USER_PORTRAIT, _set_for(victim["user_id"], "purchase_propensity", 0.123))

    code, out, errors = portrait_cli(replay_copy.environ, "replay", "--run-id", forged)
    # The victim's replayed row is missing from what was published, and its tampered row was not replayed.
    assert (code, out, errors) == (1, f"replay of {forged}: {published.count():,} rows, 2 differ from the "
                                      "published portrait\n", [])


@pytest.mark.slow
def test_replay_refuses_features_that_differ_from_the_recorded_inputs(spark, process_shop, replay_copy, portrait_cli):
    lake = Lakehouse(spark, replay_copy.cfg())
    run = _bundle_score_run(spark, process_shop)
    victim = lake.read_day(USER_FEATURES, DAY, version=run["output_versions"][USER_FEATURES.name]).orderBy(
        "user_id").first()
    forged = _forge_tampered_run(lake, run, USER_FEATURES, _set_for(victim["user_id"], "spend_90d",
                                                                    victim["spend_90d"] + 1.0))

    code, out, errors = portrait_cli(replay_copy.environ, "replay", "--run-id", forged)
    assert (code, out) == (2, "")
    assert errors == [f"error: features of {DAY} recomputed from the recorded input versions differ from the "
                      "published ones: an input table was changed in place or the feature code changed"]


# ------------------------------------------------------------------------------------------------ monitoring


def _monitoring(spark, cfg: Config) -> dict[tuple, tuple]:
    rows = _day(spark, cfg, MONITORING).collect()
    return {(r["check"], r["subject"], r["reference"]): (r["value"], r["threshold"], r["breached"]) for r in rows}


@pytest.mark.slow
def test_monitor_with_fail_on_breach_writes_its_rows_then_exits_2(spark, process_shop, shop_copy, portrait_cli):
    threshold = 1e-9
    before = _run_ids(spark, shop_copy.cfg())
    code, out, errors = portrait_cli(shop_copy.environ, "monitor", MONITORING__PSI_THRESHOLD="1.0e-9",
                                 MONITORING__FAIL_ON_BREACH="true")

    assert (code, out) == (2, "")
    original, written = _monitoring(spark, process_shop.cfg), _monitoring(spark, shop_copy.cfg())
    assert written.keys() == original.keys()
    for key, (value, limit, breached) in written.items():
        assert value == original[key][0], key  # the same checks as the shop's monitor task, other limits
        if key[0] == "volume":
            assert (limit, breached) == original[key][1:], key
        else:
            assert (limit, breached) == (threshold, value is not None and value > threshold), key
    breaches = sorted(f"{c} {s} vs {r}: {v:.3f} > {t}" for (c, s, r), (v, t, b) in written.items() if b)
    assert breaches
    assert len(errors) == 1 and errors[0].startswith(f"error: monitoring of {DAY} breached: ")
    assert sorted(errors[0].removeprefix(f"error: monitoring of {DAY} breached: ").split("; ")) == breaches
    [(job, status, _, message)] = _new_runs(spark, shop_copy.cfg(), before)
    assert (job, status) == ("monitor", "failed") and message == ("MonitoringBreach: " + errors[0][len("error: "):])[:4000]


@pytest.mark.slow
def test_the_monitor_command_prints_its_checks_and_exits_0(spark, process_shop, shop_copy, portrait_cli):
    code, out, errors = portrait_cli(shop_copy.environ, "monitor")

    original = _monitoring(spark, process_shop.cfg)  # the shop's monitor task, same data, same limits
    breached = sum(1 for _, _, b in original.values() if b)
    assert (code, out, errors) == (0, f"monitoring {DAY}: {len(original)} checks, {breached} breached\n", [])
    assert _monitoring(spark, shop_copy.cfg()) == original


# ------------------------------------------------------------------------------------- quality gate, scoring


@pytest.mark.slow
@pytest.mark.parametrize(("job", "args", "tasks"), [
    ("score", (), [("score", "failed")]),
    ("daily", ("--no-generate",), [("daily", "failed"), ("features", "succeeded"), ("ingest", "succeeded"),
                                   ("score", "failed")]),
])
def test_a_failed_quality_gate_exits_3_and_leaves_the_published_portrait(spark, shop_copy, portrait_cli, job, args,
                                                                          tasks):
    cfg = shop_copy.cfg()
    lake = Lakehouse(spark, cfg)
    version, published = lake.version(USER_PORTRAIT), _day(spark, cfg, USER_PORTRAIT).collect()
    before = _run_ids(spark, cfg)
    # churn_score is null in every row (only the purchase model is trained): a limit of 0 fails that check only.
    code, out, errors = portrait_cli(shop_copy.environ, job, *args, PUBLISH__NULL_RATE_OVERRIDES__CHURN_SCORE="0.0")

    message = (f"the portrait of {DAY} failed 1 quality check(s) and was not published (previous data unchanged; "
               "details in the publish_checks table): null_rate churn_score = 1.0000 (max 0.0). Fix the data or "
               "the run, or adjust the publish section of the configuration, then re-run.")
    assert (code, out, errors) == (3, "", [f"error: {message}"])
    assert lake.version(USER_PORTRAIT) == version
    assertDataFrameEqual(_day(spark, cfg, USER_PORTRAIT).collect(), published)
    failed = _day(spark, cfg, PUBLISH_CHECKS).where(~F.col("passed")).collect()
    assert [(r["check"], r["subject"], r["value"], r["threshold"]) for r in failed] == [
        ("null_rate", "churn_score", 1.0, 0.0)]
    runs = _new_runs(spark, cfg, before)
    assert [(j, s) for j, s, _, _ in runs] == tasks
    assert {m for j, s, _, m in runs if s == "failed"} == {f"QualityGateFailed: {message}"}


@pytest.mark.slow
def test_score_with_a_model_uri_scores_with_that_version(spark, shop_copy, portrait_cli):
    cfg = shop_copy.cfg()
    lake = Lakehouse(spark, cfg)
    name, version = tracking.registered_name(cfg), lake.version(USER_PORTRAIT)
    client = _client(cfg)
    first = client.get_model_version(name, "1")
    assert client.get_model_version_by_alias(name, "champion").version != "1"  # the weekly job promoted 2
    rows, before = _day(spark, cfg, USER_PORTRAIT).count(), _run_ids(spark, cfg)
    code, out, errors = portrait_cli(shop_copy.environ, "score", "--model-uri", f"models:/{name}/1")

    assert (code, errors) == (0, [])
    assert out.startswith(f"user_portrait {DAY}: {rows:,} rows scored with models:/{name}/1; BI tables {{")
    assert lake.version(USER_PORTRAIT) > version  # published again
    lineage = _day(spark, cfg, USER_PORTRAIT).select("model_name", "model_version", "model_run_id").distinct()
    assert [tuple(r) for r in lineage.collect()] == [(name, "1", first.run_id)]
    assert _new_runs(spark, cfg, before) == [("score", "succeeded", first.run_id, None)]


# ------------------------------------------------------------------------------------------------- training


def test_training_on_too_little_history_raises_not_enough_history(spark, tmp_path):
    lake = Lakehouse(spark, make_config(tmp_path, **SHOP))  # two snapshots a week apart, 7-day label horizon
    ingest.generate(lake, DAY, users=20, days=5, seed=3)  # events of the five days to DAY only

    with pytest.raises(train.NotEnoughHistoryError) as raised:
        train.run(lake, DAY, git_commit="promises")
    message = ("target 'purchase' has too little history to learn from: no training rows on the snapshot dates "
               "2026-11-06, 2026-11-13 (label horizon 7 days before 2026-11-20); the input tables need events "
               "before 2026-11-06, or lower "
               "model.training_snapshots / model.snapshot_step_days")
    assert str(raised.value) == message
    [run] = io.read_table(spark, lake.cfg, JOB_RUNS).collect()
    assert (run["job"], run["status"], run["error_message"]) == ("train", "failed", f"NotEnoughHistoryError: {message}")


@pytest.mark.slow
def test_the_train_command_registers_a_version_under_the_copy_and_exits_0(spark, shop_copy, portrait_cli):
    cfg = shop_copy.cfg()
    before = _run_ids(spark, cfg)
    code, out, errors = portrait_cli(shop_copy.environ, "train")

    assert (code, errors) == (0, [])
    printed = re.fullmatch(r"trained (\S+): run ([0-9a-f]{32}), model (\S+), test AUC (\d\.\d{4}) on ([\d,]+) rows "
                           r"\(random baseline \d\.\d{4}, RFM baseline \d\.\d{4}\)\n"
                           r"version (\d+): (promoted|kept_champion) \(alias (champion|challenger)\)\n", out)
    assert printed, out
    name, run_id, _, auc, test_rows, version, outcome, alias = printed.groups()
    assert (name, version) == (tracking.registered_name(cfg), "3")  # the shop's runs registered 1 and 2
    assert alias == {"promoted": "champion", "kept_champion": "challenger"}[outcome]
    client = _client(cfg)
    assert client.get_model_version(name, version).run_id == run_id
    assert str(client.get_registered_model(name).aliases[alias]) == version
    logged = client.get_run(run_id)
    assert client.get_experiment(logged.info.experiment_id).name == EXPERIMENT
    assert logged.info.artifact_uri.startswith((shop_copy.root / "mlartifacts").resolve().as_uri() + "/")
    assert (f"{logged.data.metrics['auc_roc']:.4f}", logged.data.params["test_rows"]) == (auc, test_rows.replace(",", ""))
    assert _new_runs(spark, cfg, before) == [("train", "succeeded", run_id, None)]


# --------------------------------------------------------------------------------------- generate, identity


def test_the_generate_command_writes_the_input_tables_and_exits_0(spark, tmp_path, portrait_cli):
    environ = config_environ(tmp_path)
    code, out, errors = portrait_cli(environ, "generate", "--users", "20", "--days", "3", "--seed", "5")

    cfg = load_config(LOCAL_CONF, environ=environ)
    counts = {c.name: io.read_table(spark, cfg, c).count() for c in INPUT_TABLES}
    assert (code, errors) == (0, [])
    assert out == "generated " + ", ".join(f"{name}={rows:,}" for name, rows in counts.items()) + "\n"
    assert counts[USERS.name] == 20 and counts[CLICKSTREAM.name] > 0
    first, last = io.read_table(spark, cfg, CLICKSTREAM).agg(F.min("dt"), F.max("dt")).first()
    assert DAY - dt.timedelta(days=2) <= first <= last == DAY


@pytest.mark.slow
def test_the_identity_command_rebuilds_the_same_graph_and_exits_0(spark, process_shop, shop_copy, portrait_cli):
    code, out, errors = portrait_cli(shop_copy.environ, "identity")

    assert (code, errors) == (0, [])
    printed = re.fullmatch(r"identity identity-\d{8}T\d{6}-[0-9a-f]{8}: ([\d,]+) persons, [\d,]+ anonymous ids "
                           r"stitched, [\d,]+ user ids merged, [\d,]+ ids refused \(over-merge\), [\d,]+ excluded\n",
                           out)
    assert printed, out
    rebuilt = io.read_table(spark, shop_copy.cfg(), IDENTITY_GRAPH)
    # The ingest task built the shop's graph from the same clickstream.
    assertDataFrameEqual(rebuilt, io.read_table(spark, process_shop.cfg, IDENTITY_GRAPH))
    assert int(printed.group(1).replace(",", "")) == rebuilt.select("person_id").distinct().count() > 100


# ----------------------------------------------------------------------------------- no raw ids in MLflow


def _raw_ids(spark, cfg: Config) -> set[str]:
    """Every user id of ``users`` and ``clickstream`` and every device or cookie id of ``clickstream``."""
    frames = [io.read_table(spark, cfg, USERS).select("user_id"),
              io.read_table(spark, cfg, CLICKSTREAM).select("user_id"),
              io.read_table(spark, cfg, CLICKSTREAM).select(F.col("anonymous_id").alias("user_id"))]
    union = frames[0].unionByName(frames[1]).unionByName(frames[2]).where(F.col("user_id").isNotNull()).distinct()
    return {row["user_id"] for row in union.collect()}


def _contents(path: Path) -> list[bytes]:
    """The file's bytes, and for Parquet (compressed: an id may not appear in its bytes) its decoded values."""
    contents = [path.read_bytes()]
    if path.suffix == ".parquet":
        contents.append(repr(pq.read_table(path).to_pylist()).encode())
    return contents


def _ids_in(files: list[Path], ids: set[str]) -> dict[str, set[str]]:
    """File name → the ids found in it, for the files holding any."""
    pattern = re.compile(b"|".join(re.escape(i.encode()) for i in sorted(ids, key=len, reverse=True)))
    found = {}
    for path in files:
        hits = {match.decode() for content in _contents(path) for match in pattern.findall(content)}
        if hits:
            found[path.name] = hits
    return found


@pytest.mark.slow
def test_no_raw_customer_id_is_in_mlflow_store_or_artifacts(spark, process_shop, tmp_path):
    ids = _raw_ids(spark, process_shop.cfg)
    stored = [*(process_shop.root / "mlartifacts").rglob("*"), *process_shop.root.glob("mlflow.db*")]
    files = sorted(path for path in stored if path.is_file())
    assert len(ids) > 150 and len(files) > 50 and any(path.suffix == ".parquet" for path in files)

    assert _ids_in(files, ids) == {}
    # The scan sees an id planted in text and ids in compressed Parquet among the shop's files.
    planted = sorted(ids)[len(ids) // 2]
    (tmp_path / "note.txt").write_text(f"scored for customer {planted}.\n", encoding="utf-8")
    pq.write_table(pa.table({"id": sorted(ids)}), tmp_path / "ids.parquet", compression="snappy")
    assert _ids_in([*files, tmp_path / "note.txt", tmp_path / "ids.parquet"], ids) == {
        "note.txt": {planted}, "ids.parquet": ids}
