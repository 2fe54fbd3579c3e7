"""Erasure: a forgotten person (and every id stitched to it) is gone from every table, then from time travel.

The end-to-end part runs the real stages on a tiny generated shop (150 users x 20 days): identity graph,
features, a registered model, a portrait, quarantine rows, then `run_forget`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
from pathlib import Path
from urllib.parse import unquote

import mlflow
import pytest
from pyspark.errors import AnalysisException
from pyspark.sql import functions as F
from pyspark.sql import types as T

from portrait import erasure, erasure_io, io, privacy
from portrait.lakehouse import Lakehouse
from portrait.model import tracking
from portrait.schemas import (
    ALL_TABLES,
    ERASURE_REQUESTS,
    ERASURE_TOMBSTONES,
    IDENTITY_GRAPH,
    PERSON_ID_COLUMNS,
    QUARANTINE,
    USER_FEATURES,
    USER_PORTRAIT,
    TableContract,
    _col,
)
from portrait.stages import forget, ingest, purge
from tests.conftest import FAST_MODEL, make_config
from tests.privacy_helpers import contract_rows

KEY = "erasure-test-key-0123456789abcdef"
RUN_DATE = dt.date(2026, 11, 20)


# ------------------------------------------------------------------------------------------ pure parts


def test_ids_are_stripped_deduplicated_and_checked():
    assert erasure.normalise_ids([" u1 ", "u2", "u1", ""]) == ["u1", "u2"]
    with pytest.raises(erasure.ErasureInputError, match=r"--user: no id to erase"):
        erasure.normalise_ids(["", "  "])
    with pytest.raises(erasure.ErasureInputError, match=r"value 2: the id contains control characters"):
        erasure.normalise_ids(["u1", "u2\nu3"])
    with pytest.raises(erasure.ErasureInputError, match=r"value 1: the id is 300 characters long"):
        erasure.normalise_ids(["x" * 300])


def test_request_file_skips_comments_and_blank_lines():
    assert erasure.ids_from_lines("# request 17\nu1\n\n  u2  \nu1\n", "--file ids.txt") == ["u1", "u2"]
    with pytest.raises(erasure.ErasureInputError, match=r"--file ids.txt: no id"):
        erasure.ids_from_lines("# nothing\n\n", "--file ids.txt")


def test_every_contract_declares_its_personal_columns():
    """A new table with a person id under another name must say so (person_columns), or erasure misses it."""
    for contract in ALL_TABLES.values():
        for field in contract.schema.fields:
            personal_name = any(word in field.name for word in ("user", "person", "anonymous", "customer"))
            if personal_name and field.dataType == T.StringType():
                assert field.name in contract.id_columns + contract.person_key_columns, (
                    f"{contract.name}.{field.name} is not erased")
    assert IDENTITY_GRAPH.id_columns == ("id", "person_id")
    assert USER_PORTRAIT.id_columns == ("user_id",)
    assert QUARANTINE.person_text_columns == ("raw_row", "detail")
    assert ERASURE_REQUESTS.id_columns == () and ERASURE_REQUESTS.person_key_columns == ()
    assert set(PERSON_ID_COLUMNS) == {"user_id", "anonymous_id", "person_id"}


BI_LIKE = TableContract(
    name="bi_like",
    description="A BI-facing test table.",
    schema=T.StructType([_col("person_key", T.StringType(), "HMAC."), _col("segment", T.StringType(), "s")]),
    bi_facing=True,
)


RAW_LIKE = TableContract(
    name="raw_like",
    description="A free-text test table.",
    schema=T.StructType([_col("quarantine_id", T.StringType(), "k"), _col("raw_row", T.StringType(), "t")]),
    person_columns=(),
    person_text_columns=("raw_row",),
)


def _matched(spark, frame, contract, ids, keys=()):
    request = erasure.request_frame(spark, list(ids), list(keys))
    return sorted(tuple(r) for r in erasure.matching(frame, contract, request).collect())


def test_a_request_matches_ids_person_keys_and_whole_tokens_of_free_text(spark):
    key = KEY.encode()
    pk = privacy.person_key_of("u1", key)
    bi = spark.createDataFrame([(pk, "a"), (privacy.person_key_of("u10", key), "a")], BI_LIKE.schema)
    assert _matched(spark, bi, BI_LIKE, ["u1"], [pk]) == [(pk, "a")]
    raw = spark.createDataFrame(
        [("q1", "u1,77,3,pv,1511544070"), ("q2", "u10,77,3,pv,1511544070"), ("q3", '{"uid": "u1", "x": 2}'),
         ("q4", "99,u1x,pv"), ("q5", "a b|c"), ("q6", "id=a b"), ("q7", None)], RAW_LIKE.schema)
    # u1 as a whole token only (not u10, not u1x); an id with a space is matched as a substring.
    assert [r[0] for r in _matched(spark, raw, RAW_LIKE, ["u1", "a b"])] == ["q1", "q3", "q5", "q6"]


def test_an_injection_attempt_is_only_a_value(spark):
    frame = spark.createDataFrame([("x' OR '1'='1",), ("u1",), ("u2",)], "user_id string")
    assert _matched(spark, frame, USER_FEATURES, ["x' OR '1'='1"]) == [("x' OR '1'='1",)]


def test_stitched_ids_expand_to_the_whole_person(spark):
    graph = spark.createDataFrame(
        [("u1", "user", "u1", 2, 1), ("u5", "user", "u1", 2, 1), ("d1", "anonymous", "u1", 2, 1),
         ("u2", "user", "u2", 1, 1), ("d2", "anonymous", "u2", 1, 1)], IDENTITY_GRAPH.schema)
    expanded = sorted(r[0] for r in erasure.stitched_ids(graph, ["u5"]).collect())
    assert expanded == ["d1", "u1", "u5"]
    assert sorted(r[0] for r in erasure.stitched_ids(graph, ["d2", "zz"]).collect()) == ["d2", "u2", "zz"]


def test_report_names_tables_and_counts_but_no_id():
    report = erasure.ErasureReport("forget-1", 1, 3, ["ab" * 32], "f" * 16, {"clickstream": 12, "orders": 0},
                                   ["purchase_propensity/1"], ["clickstream"], 0, ["users"])
    text = report.render()
    assert "clickstream" in text and "12" in text and "purchase_propensity/1" in text
    assert "users" in text and "retention 0 h" in text and "ab" * 32 not in text


# ---------------------------------------------------------------------------------------- end to end


def _register_version(cfg, snapshot_dates: list[dt.date]) -> str:
    """A registered model version whose training run used ``snapshot_dates`` (no model files are needed)."""
    experiment_id = tracking.use_experiment(cfg)
    client = mlflow.MlflowClient()
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_param("snapshot_dates", ",".join(d.isoformat() for d in snapshot_dates))
    if not client.search_registered_models(f"name = '{cfg.model.name}'"):
        client.create_registered_model(cfg.model.name)
    return str(client.create_model_version(cfg.model.name, f"runs:/{run.info.run_id}/model", run.info.run_id).version)


# Values that satisfy the CHECK constraints of tables written with default values below.
CHECK_VALUES = {"portrait_changes": {"change_kind": "new_user", "previous_dt": RUN_DATE - dt.timedelta(days=1)},
                "identity_merge_log": {"action": "merged"}}


@pytest.fixture(scope="module")
def shop(spark, tmp_path_factory):
    """A tiny generated shop with its identity graph, plus rows of two persons in every other personal table.

    Input tables and the identity graph come from the real stages; the derived tables (features, rollups,
    portrait, changes, BI tables, and any personal table added later) get rows built from their contracts,
    so the erasure test covers every table whatever its columns are.
    """
    mp = pytest.MonkeyPatch()
    mp.setenv(privacy.PSEUDONYM_KEY_ENV, KEY)
    cfg = make_config(tmp_path_factory.mktemp("erasure"), PRIVACY__MIN_GROUP_SIZE="1", **FAST_MODEL)
    ingest.generate(Lakehouse(spark, cfg), end_date=RUN_DATE, users=150, days=20)
    ingest.rebuild_identity(Lakehouse(spark, cfg))
    graph = io.read_table(spark, cfg, IDENTITY_GRAPH)
    # A person with a stitched device: erase it by its user id, its device id must go too.
    person = graph.where(F.col("id_type") == "anonymous").orderBy("person_id").first()["person_id"]
    linked = sorted(r["id"] for r in graph.where(F.col("person_id") == person).collect())
    other = graph.where((F.col("person_id") != person) & (F.col("id_type") == "user")).orderBy("id").first()["id"]
    snapshot = RUN_DATE - dt.timedelta(days=7)
    for contract in erasure.personal_tables(ALL_TABLES.values()):
        if contract.bi_facing or not hasattr(cfg.tables, contract.name):
            continue
        if io.table_exists(spark, io.table_ref(cfg, contract)):
            continue
        day = snapshot if contract.name == USER_FEATURES.name else RUN_DATE
        overrides = {"dt": day, **CHECK_VALUES.get(contract.name, {})}
        if contract.name == QUARANTINE.name:
            overrides = {}
        rows = contract_rows(spark, contract, [person, other, f"{person}0"], day,
                             **{k: v for k, v in overrides.items() if k in contract.columns})
        if contract.name == QUARANTINE.name:  # distinct keys; one row only shares a prefix with the person
            rows = rows.withColumn("quarantine_id", F.sha2(F.col("raw_row"), 256))  # as ingest keys them
        elif contract.partition_by == ("dt",):
            rows = rows.withColumn("dt", F.lit(day))
        io.overwrite_table(spark, cfg, contract, rows)
    _publish_bi_tables(spark, cfg)
    trained_on_person = _register_version(cfg, [snapshot - dt.timedelta(days=7), snapshot])
    trained_before = _register_version(cfg, [RUN_DATE - dt.timedelta(days=60)])
    versions = {c.name: io.table_version(spark, cfg, c) for c in ALL_TABLES.values()
                if hasattr(cfg.tables, c.name) and io.table_version(spark, cfg, c) is not None}
    yield cfg, person, linked, other, (trained_on_person, trained_before), versions
    mp.undo()


def _publish_bi_tables(spark, cfg):
    """portrait_latest and segment_daily from the portrait, with the BI transformations of portrait.publish.bi."""
    from portrait.publish import bi
    from portrait.schemas import PORTRAIT_LATEST, SEGMENT_DAILY

    portrait = io.read_table(spark, cfg, USER_PORTRAIT)
    latest = portrait.transform(bi.newest_per_user).transform(bi.pseudonymised(privacy.pseudonym_key()))
    io.overwrite_table(spark, cfg, PORTRAIT_LATEST, latest)
    segments = (portrait.transform(bi.with_feature_values(io.read_table(spark, cfg, USER_FEATURES)))
                .transform(bi.segment_daily(cfg.privacy.min_group_size)))
    io.overwrite_table(spark, cfg, SEGMENT_DAILY, segments)


def _as_tokens(frame):
    """Every value of every column of ``frame`` (nested ones too) as one array of text tokens per row."""
    text = F.to_json(F.struct(*[F.col(c) for c in frame.columns]))
    return frame.select(F.split(text, r"[^\p{L}\p{N}_.@-]+").alias("tokens"))  # Java regex: not a letter, digit, _ . @ -


@pytest.mark.slow
def test_bi_tables_carry_no_raw_id_in_any_column(spark, shop):
    cfg = shop[0]
    bi_tables = [c for c in ALL_TABLES.values() if c.bi_facing]
    assert bi_tables, "no contract is flagged bi_facing: nothing would be scanned"
    raw_ids = (io.read_table(spark, cfg, IDENTITY_GRAPH).select("id")
               .unionByName(io.read_table(spark, cfg, USER_PORTRAIT).select(F.col("user_id").alias("id")))
               .distinct())
    assert raw_ids.count() >= 150
    for contract in bi_tables:
        assert not contract.id_columns and not contract.person_text_columns, contract.name
        ref = io.table_ref(cfg, contract)
        assert io.table_exists(spark, ref), f"{contract.name} was not written: the scan would skip it"
        stored = io.read_stored(spark, ref)
        assert stored.count() > 0, contract.name
        tokens = _as_tokens(stored).select(F.explode("tokens").alias("id"))
        hits = tokens.join(raw_ids, on="id", how="inner")
        assert hits.count() == 0, f"{contract.name} holds raw ids: {hits.limit(5).collect()}"
    # The scan is able to fail: the same check finds the ids of the restricted portrait.
    portrait_tokens = _as_tokens(io.read_table(spark, cfg, USER_PORTRAIT)).select(F.explode("tokens").alias("id"))
    assert portrait_tokens.join(raw_ids, on="id", how="inner").count() > 0


def _personal_tables_present(spark, cfg):
    return [c for c in erasure.personal_tables(ALL_TABLES.values())
            if hasattr(cfg.tables, c.name) and io.table_exists(spark, io.table_ref(cfg, c))]


# An independent check, written from the promise in docs/SECURITY.md rather than with portrait.erasure: every
# value of every column of every Delta table under the lakehouse — nested structs, array elements, map keys and
# values, person_key and free text alike — split into tokens at each character that is not a letter, digit,
# _ . @ or -; a row mentions a person when one of its tokens is one of the person's ids or person keys.
_NOT_IN_A_TOKEN = re.compile(r"[^\w.@-]+")


def _leaves(value):
    """Every scalar inside ``value`` (a Row, list, tuple or dict: keys and values)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(key)
            yield from _leaves(item)
    elif isinstance(value, (list, tuple)):  # a Row is a tuple
        for item in value:
            yield from _leaves(item)
    else:
        yield value


def _row_tokens(row) -> set[str]:
    return {token for leaf in _leaves(row) if isinstance(leaf, str) for token in _NOT_IN_A_TOKEN.split(leaf)}


def _hmac_keys(ids) -> set[str]:
    """The person keys of ``ids`` under the test key, computed with Python's hmac (not portrait.privacy)."""
    return {hmac.new(KEY.encode(), i.encode("utf-8"), hashlib.sha256).hexdigest() for i in ids}


def _rows_mentioning(frame, groups: dict[str, set[str]]) -> dict[str, int]:
    """Per group of needles, the rows of ``frame`` with one of them as a whole token of any value.

    Spark only narrows the rows down (the row's JSON text contains a needle); Python walks the candidates."""
    needles = set().union(*groups.values())
    text = F.to_json(F.struct(*[F.col(f"`{c}`") for c in frame.columns]))
    narrowed = F.lit(False)
    for needle in sorted(needles):
        narrowed = narrowed | (F.instr(text, json.dumps(needle, ensure_ascii=False)[1:-1]) > 0)
    tokens = [_row_tokens(row) for row in frame.where(narrowed).collect()]
    return {name: sum(1 for t in tokens if t & group) for name, group in groups.items()}


def _delta_tables(lakehouse: Path) -> dict[str, Path]:
    """Every Delta table found under the lakehouse folder (whatever the contracts say), by folder name."""
    return {str(log.parent.relative_to(lakehouse)): log.parent for log in sorted(lakehouse.rglob("_delta_log"))}


def _scan_everything(spark, cfg, person_ids, other_ids) -> dict[str, dict[str, int]]:
    """Per Delta table: rows mentioning the person (by id or person key) and rows mentioning the other person.

    ``erasure_requests`` and ``erasure_tombstones`` are scanned for raw ids only: they keep the person keys by
    design (the audit, and what keeps later writes from bringing the person back)."""
    audits = {Path(io.table_ref(cfg, c).path) for c in (ERASURE_REQUESTS, ERASURE_TOMBSTONES)}
    found = {}
    for name, path in _delta_tables(Path(cfg.lakehouse.path)).items():
        keyed = path not in audits
        groups = {"person": set(person_ids) | (_hmac_keys(person_ids) if keyed else set()),
                  "other": set(other_ids) | (_hmac_keys(other_ids) if keyed else set())}
        found[name] = _rows_mentioning(spark.read.format("delta").load(str(path)), groups)
    return found


def test_the_independent_scan_sees_ids_wherever_they_are(spark):
    frame = spark.createDataFrame(
        [("r1", None, None, "2,u1,x"), ("r2", ["a", "u1"], None, None), ("r3", None, {"u1": 1}, None),
         ("r4", None, {"k": 1}, "u10 u1x xu1 u1-2"), ("r5", None, None, f"key={sorted(_hmac_keys(['u1']))[0]}")],
        "id string, tags array<string>, counts map<string, int>, raw string")
    nested = frame.select(F.struct("*").alias("everything"))
    groups = {"person": {"u1"} | _hmac_keys(["u1"]), "other": {"u10"}}
    assert _rows_mentioning(frame, groups) == _rows_mentioning(nested, groups) == {"person": 4, "other": 1}


def _mentions_of(scanned: dict[str, dict[str, int]], group: str) -> dict[str, int]:
    return {name: hits[group] for name, hits in scanned.items() if hits[group]}


def _files_holding(root: Path, ids) -> dict[str, list[str]]:
    """Every file under ``root`` (data, change data, deletion vectors, log commits, checksums, checkpoints) that
    holds one of ``ids``, with the ids it holds: in its raw bytes as a whole token, or, for a Parquet file
    (whose pages may be compressed), as a token of any decoded value."""
    import pyarrow.parquet as pq

    patterns = {i: re.compile(rb"(?<![\w.@-])" + re.escape(i.encode()) + rb"(?![\w.@-])") for i in ids}
    found = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        hits = {i for i, pattern in patterns.items() if pattern.search(data)}
        if path.suffix == ".parquet":
            hits |= set(ids) & _row_tokens(pq.read_table(path).to_pylist())
        if hits:
            found[str(path.relative_to(root))] = sorted(hits)
    return found


@pytest.mark.slow
def test_forget_removes_the_person_everywhere_then_vacuum_removes_time_travel(spark, shop, monkeypatch):
    cfg, person, linked, other, (trained_on_person, trained_before), versions = shop
    monkeypatch.setenv(privacy.PSEUDONYM_KEY_ENV, KEY)
    assert len(linked) >= 2 and person in linked  # the person's user id and at least one device id
    tables = _personal_tables_present(spark, cfg)
    rows_before = {c.name: io.read_stored(spark, io.table_ref(cfg, c)).count() for c in tables}
    before = _scan_everything(spark, cfg, linked, [other])
    present = _mentions_of(before, "person")
    assert {"clickstream", "orders", "users", "user_features", "user_portrait", "identity_graph",
            "quarantine", "portrait_latest"} <= set(present) <= {c.name for c in tables}
    assert present["identity_graph"] == len(linked) and present["quarantine"] == 1

    lakehouse = Path(cfg.lakehouse.path)
    held = _files_holding(lakehouse, linked)
    assert {path.split("/")[0] for path in held} >= {"clickstream", "identity_graph", "quarantine"}

    report = forget.run(Lakehouse(spark, cfg), [person], vacuum=False)

    assert report.ids_erased == len(linked)
    # The rows deleted are exactly the rows the independent scan found, table by table ...
    assert {name: count for name, count in report.rows_deleted.items() if count} == present
    after = _scan_everything(spark, cfg, linked, [other])
    # ... and afterwards it finds the person nowhere, while the other person's rows are all still there.
    assert _mentions_of(after, "person") == {}
    assert _mentions_of(after, "other") == _mentions_of(before, "other") != {}
    for contract in tables:
        count = io.read_stored(spark, io.table_ref(cfg, contract)).count()
        assert count == rows_before[contract.name] - present.get(contract.name, 0), contract.name
    # The quarantined row of user "<person>0" shares a prefix only: it stays.
    assert io.read_table(spark, cfg, QUARANTINE).count() == 2
    # Old versions still hold the person until VACUUM removes their files.
    old = io.read_stored(spark, io.table_ref(cfg, USER_FEATURES), version=versions["user_features"])
    assert _rows_mentioning(old, {"person": set(linked)})["person"] == present["user_features"]
    _check_models_and_audit(spark, cfg, report, person, linked, trained_on_person, trained_before, present)

    # VACUUM with zero retention: the old versions' files are gone, time travel cannot show the person.
    zero = make_config(Path(cfg.lakehouse.path).parent, PRIVACY__VACUUM_RETENTION_HOURS="0")
    check = "spark.databricks.delta.retentionDurationCheck.enabled"
    assert spark.conf.get(check, None) is None
    again = forget.run(Lakehouse(spark, zero), [person], vacuum=True)
    assert again.total_rows == 0 and set(again.vacuumed) >= {c.name for c in tables}
    assert spark.conf.get(check, None) is None  # the safety check is back on after the call
    _check_time_travel_ends(spark, zero, versions, present, linked, again.vacuumed)
    assert again.purged  # a zero retention: its own VACUUM deleted the files

    # The purge finds the first request due (removed at least zero hours ago) and records it purged.
    assert _states(spark, zero) == {report.request_id: ("removed", False), again.request_id: ("purged", True)}
    done = purge.run(Lakehouse(spark, zero))
    assert (done.purged, done.waiting) == (1, 0) and set(done.tables) >= {c.name for c in tables}
    assert _states(spark, zero) == {report.request_id: ("purged", True), again.request_id: ("purged", True)}
    assert purge.run(Lakehouse(spark, zero)).purged == 0
    # To the bytes: no file under the lakehouse, the tables' logs included, holds any id of the person.
    assert _files_holding(lakehouse, linked) == {}


def _states(spark, cfg) -> dict[str, tuple[str, bool]]:
    """erasure_requests: request id → (state, whether purged_at is set)."""
    return {r["request_id"]: (r["state"], r["purged_at"] is not None)
            for r in io.read_table(spark, cfg, ERASURE_REQUESTS).collect()}


def _check_models_and_audit(spark, cfg, report, person, linked, trained_on_person, trained_before, present):
    # MLflow: the version trained on the person's features is tagged for retraining, the other one is not.
    assert report.models_marked == [f"{cfg.model.name}/{trained_on_person}"]
    mlflow.set_tracking_uri(cfg.mlflow.tracking_uri)
    tags = mlflow.MlflowClient().get_model_version(cfg.model.name, trained_on_person).tags
    assert tags[tracking.RETRAIN_TAG] == "true" and report.request_id in tags[tracking.ERASURE_TAG]
    assert tracking.versions_to_retrain(cfg) == [trained_on_person]
    assert trained_before != trained_on_person
    # The audit row: the person's HMAC key and counts, no raw id anywhere.
    (audit,) = io.read_table(spark, cfg, ERASURE_REQUESTS).collect()
    assert audit["person_keys"] == sorted(_hmac_keys([person]))
    assert audit["rows_deleted"]["clickstream"] == present["clickstream"] and not audit["vacuumed"]
    assert not any(i in str(audit.asDict()) for i in linked)


# Delta's refusal to read a version older than the table's delta.deletedFileRetentionDuration (0 h after the erasure).
RETENTION_REFUSAL = "DELTA_UNSUPPORTED_TIME_TRAVEL_BEYOND_DELETED_FILE_RETENTION_DURATION"
_COMMIT = re.compile(r"^\d{20}\.json$")


def _removed_files(table: Path, after_version: int) -> set[Path]:
    """Data files the commits after ``after_version`` removed from ``table``, read from its Delta log."""
    removed = set()
    for commit in sorted((table / "_delta_log").iterdir()):
        if not _COMMIT.match(commit.name) or int(commit.stem) <= after_version:
            continue
        for line in commit.read_text().splitlines():
            action = json.loads(line)
            if "remove" in action:
                removed.add(table / unquote(action["remove"]["path"]))
    return removed


def _check_time_travel_ends(spark, zero, versions, present, linked, vacuumed):
    """Each table's version from before the erasure: where the person had rows, the files the erasure rewrote
    are deleted and Delta refuses the version; any other version Delta still reads shows nobody erased."""
    refused = []
    for name, old_version in sorted(versions.items()):
        path = io.table_ref(zero, ALL_TABLES[name]).path
        if name in present:
            rewritten = _removed_files(Path(path), old_version)
            assert rewritten and not [f for f in rewritten if f.exists()], f"{name}: the person's files remain"
        try:
            old = spark.read.format("delta").option("versionAsOf", old_version).load(path)
        except AnalysisException as exc:
            assert RETENTION_REFUSAL in str(exc) and name in vacuumed, f"{name}: {exc}"
            refused.append(name)
            continue
        assert name not in present, f"{name}: version {old_version}, which held the person, is still readable"
        assert _rows_mentioning(old, {"person": set(linked) | _hmac_keys(linked)})["person"] == 0, name
    assert set(present) <= set(refused)


# ---------------------------------------------------------------------------------------------- tombstones


def test_tombstones_keep_erased_persons_out_of_later_writes_and_of_a_write_racing_the_erasure(spark, tmp_path,
                                                                                               monkeypatch):
    """A write after the erasure drops the persons' rows; a write that read before it (its guard older than
    the tombstones) and commits after the delete has them deleted again right after its commit."""
    monkeypatch.setenv(privacy.PSEUDONYM_KEY_ENV, KEY)
    cfg = make_config(tmp_path)
    lake = Lakehouse(spark, cfg)
    rows = contract_rows(spark, USER_FEATURES, ["u1", "u2", "u3"], RUN_DATE, dt=RUN_DATE)
    assert lake.replace_day(USER_FEATURES, rows, RUN_DATE) == 3  # the rows the date holds, counted as written
    racing = erasure_io.TombstoneGuard(spark, cfg, USER_FEATURES)  # a run that read before the erasure
    assert racing.version is None

    report = forget.run(lake, ["u2"], vacuum=False)
    assert report.rows_deleted[USER_FEATURES.name] == 1

    def users() -> list[str]:
        return sorted(r["user_id"] for r in io.read_table(spark, cfg, USER_FEATURES).collect())

    assert lake.replace_day(USER_FEATURES, rows, RUN_DATE) == 2  # a later run: its write drops u2
    assert users() == ["u1", "u3"]
    io.replace_partition(spark, cfg, USER_FEATURES, racing.filter(rows), RUN_DATE)  # commits after the delete
    assert users() == ["u1", "u2", "u3"]
    assert racing.recheck() == 1  # what Lakehouse does after every guarded write
    assert users() == ["u1", "u3"]
    # No id entered the table's log on the way: the deletes joined a frame of the ids.
    log = Path(io.table_ref(cfg, USER_FEATURES).path) / "_delta_log"
    assert not re.search(r"\bu2\b", "".join(commit.read_text() for commit in sorted(log.glob("*.json"))))
    tombstones = io.read_table(spark, cfg, ERASURE_TOMBSTONES).collect()
    assert [(t["tombstone_key"], t["request_id"]) for t in tombstones] == [
        (sorted(_hmac_keys(["u2"]))[0], report.request_id)]

    # An erasure of u3 committing while a write through the lakehouse is under way: the rows the write
    # reports are those left after its recheck deleted u3's row again, not the rows it wrote.
    real_replace, erased = io.replace_partition, []

    def erasing_first(*args):
        if not erased:
            erased.append(forget.run(lake, ["u3"], vacuum=False))
        real_replace(*args)

    monkeypatch.setattr(io, "replace_partition", erasing_first)
    assert lake.replace_day(USER_FEATURES, rows, RUN_DATE) == 1
    assert users() == ["u1"] and erased[0].rows_deleted[USER_FEATURES.name] == 1
