"""What the jobs leave behind: the pseudonymisation key in no plan, event log, MLflow record or log line, and
files only their owner can read.

The process-level checks read the process shop (tests/shops.py): the bundle's tasks ran there as processes
with Spark's event logs on, so no run is added for them.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from portrait import privacy
from portrait.cli import main
from portrait.lakehouse import Lakehouse
from portrait.publish import bi
from portrait.schemas import USERS
from tests.conftest import TEST_PSEUDONYM_KEY
from tests.privacy_helpers import contract_rows, portrait_rows

KEY = TEST_PSEUDONYM_KEY.encode()


def key_forms(key: bytes) -> dict[str, bytes]:
    """Every form in which the key, or a value derived from it other than a pseudonym, could be written: the
    key itself, RFC 2104's padded inner and outer keys (what a plan built from ``sha2`` would carry), each as
    raw bytes, hex (both cases), Base64 and a Java/Scala byte-array listing."""
    block = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
    secrets = {"key": key, "inner": bytes(b ^ 0x36 for b in block), "outer": bytes(b ^ 0x5C for b in block)}
    forms = {}
    for name, value in secrets.items():
        forms[f"{name} raw"] = value
        forms[f"{name} hex"] = value.hex().encode()
        forms[f"{name} HEX"] = value.hex().upper().encode()
        forms[f"{name} base64"] = base64.b64encode(value)
        forms[f"{name} bytes"] = ", ".join(str(b - 256 if b > 127 else b) for b in value[:24]).encode()
    return forms


def _found_in(data: bytes, forms: dict[str, bytes]) -> list[str]:
    return [name for name, form in forms.items() if form in data]


def test_the_key_forms_are_found_where_they_are(spark, capsys):
    """The scan itself: a plan that carried the padded key as a literal (as a ``sha2``-built HMAC did) is caught."""
    forms = key_forms(KEY)
    leaky = spark.range(1).select(F.sha2(F.concat(F.lit(forms["inner raw"]), F.lit(b"u1")), 256))
    found = _found_in(_plans(leaky, capsys).encode(), forms)
    assert {"inner hex", "inner HEX"} & set(found), found


def _plans(frame, capsys) -> str:
    """Every plan Spark prints for ``frame``: parsed, analysed, optimised and physical, and the formatted one."""
    frame.explain(mode="extended")
    frame.explain(mode="formatted")
    return capsys.readouterr().out


def test_pseudonymising_plans_carry_no_key_and_the_pseudonyms_are_hmacs(spark, capsys):
    rows = spark.createDataFrame([("u1",), ("用户-2",), (None,)], "user_id string")
    keyed = rows.withColumn("person_key", privacy.person_key(F.col("user_id"), KEY))
    plans = _plans(keyed, capsys)
    assert "person_key" in plans
    assert _found_in(plans.encode(), key_forms(KEY)) == []
    assert {r["user_id"]: r["person_key"] for r in keyed.collect()} == {
        "u1": privacy.person_key_of("u1", KEY), "用户-2": privacy.person_key_of("用户-2", KEY), None: None}


def test_the_bi_step_plan_carries_no_key(spark, capsys):
    portrait = portrait_rows(spark, ["u1", "u2"])
    latest = portrait.transform(bi.pseudonymised(KEY))
    plans = _plans(latest, capsys)
    assert "person_key" in plans
    assert _found_in(plans.encode(), key_forms(KEY)) == []


def _files(root: Path, skip: tuple[str, ...] = ()) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not any(part in skip for part in p.parts)]


@pytest.mark.slow
def test_no_key_in_event_logs_mlflow_tables_or_job_output(process_shop):
    """Every byte the shop's jobs wrote — Spark event logs (every plan of every query), the MLflow store and its
    artifacts (params, config.json, models), the lakehouse with its Delta logs, reports — and everything the
    jobs printed: no form of the key anywhere."""
    forms = key_forms(KEY)
    event_logs = _files(process_shop.event_logs)
    assert event_logs, "the shop's jobs wrote no event log: the scan would prove nothing"
    found = {}
    for path in _files(process_shop.root):
        hits = _found_in(path.read_bytes(), forms)
        if hits:
            found[str(path.relative_to(process_shop.root))] = hits
    for task, run in process_shop.runs.items():
        hits = _found_in((run.stdout + run.stderr).encode(), forms)
        if hits:
            found[f"output of task {task}"] = hits
    assert found == {}


@pytest.mark.slow
def test_files_the_jobs_created_are_the_owners_only(process_shop):
    """Tables (data and Delta logs), the MLflow store and artifacts, reports: no group or other permission bit.
    (Spark's own event logs, a test option here, are left out: Spark sets their mode itself.)"""
    shared = [str(p.relative_to(process_shop.root)) for p in process_shop.root.rglob("*")
              if "spark-events" not in p.parts and stat.S_IMODE(p.stat().st_mode) & 0o077]
    assert shared == []


def test_tables_written_in_process_are_the_owners_only(spark, cfg):
    lake = Lakehouse(spark, cfg)
    lake.overwrite(USERS, contract_rows(spark, USERS, ["u1"]))
    table = Path(cfg.lakehouse.path) / "users"
    modes = {str(p.relative_to(table)): oct(stat.S_IMODE(p.stat().st_mode)) for p in [table, *table.rglob("*")]}
    assert modes and all(int(mode, 8) & 0o077 == 0 for mode in modes.values()), modes


def test_the_cli_makes_everything_it_creates_owner_only():
    before = os.umask(0o022)
    try:
        with pytest.raises(SystemExit):  # a malformed date: refused before anything starts
            main(["daily", "--date", "2026-13-01"])
        assert os.umask(0o022) == 0o077
    finally:
        os.umask(before)


def test_config_artifacts_name_spark_options_but_never_their_values(tmp_path):
    from tests.conftest import make_config

    cfg = make_config(tmp_path, SPARK__OPTIONS='{"spark.hadoop.fs.s3a.secret.key": "s3cr3t-value"}')
    logged = cfg.loggable()
    assert logged["spark"]["options"] == {"spark.hadoop.fs.s3a.secret.key": "<redacted>"}
    assert "s3cr3t-value" not in str(logged)
    assert cfg.spark.options["spark.hadoop.fs.s3a.secret.key"] == "s3cr3t-value"  # the run itself keeps it


def _log_bytes(table: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted((table / "_delta_log").glob("*.json")))


def test_delta_keeps_no_statistics_of_raw_ids(spark, cfg, tmp_path):
    """Delta's per-file statistics live in its log, which an erasure's DELETE does not rewrite: the raw-id
    columns of a personal table stay out of them, while other columns keep theirs. Written without the
    contract's properties, the same rows put the id into the log: the check can fail."""
    from portrait.schemas import ORDERS

    rows = contract_rows(spark, ORDERS, ["raw-id-in-stats"], status="paid", line_number=1, quantity=1,
                         order_id="order-in-stats")
    Lakehouse(spark, cfg).overwrite(ORDERS, rows)
    log = _log_bytes(Path(cfg.lakehouse.path) / "orders")
    assert b"order-in-stats" in log  # an order id is no person's: its statistics stay
    assert b"raw-id-in-stats" not in log
    plain = tmp_path / "plain"
    rows.write.format("delta").save(str(plain))
    assert b"raw-id-in-stats" in _log_bytes(plain)
