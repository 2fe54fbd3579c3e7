"""Table metadata (comments, properties, constraints) and maintenance (OPTIMIZE with Z-order, VACUUM)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pyspark.testing import assertDataFrameEqual

from portrait import cli, io
from portrait.lakehouse import Lakehouse
from portrait.schemas import ALL_TABLES, USER_PORTRAIT
from portrait.stages import operations
from tests.conftest import LOCAL_CONF, config_environ, make_config
from tests.test_quality_gate import make_portrait_rows

D1, D2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)


def _detail(spark, cfg, contract):
    return spark.sql(f"DESCRIBE DETAIL delta.`{io.table_ref(cfg, contract).path}`").first()


@pytest.mark.slow
def test_every_column_of_every_table_has_its_comment_in_the_delta_table(spark, cfg):
    missing = []
    for contract in ALL_TABLES.values():
        ref = io.ensure_table(spark, cfg, contract)
        stored = spark.read.format("delta").load(ref.path).schema
        for field in contract.schema.fields:
            comment = stored[field.name].metadata.get("comment", "")
            if not comment.strip() or comment != contract.comment(field.name):
                missing.append(f"{contract.name}.{field.name}: {comment!r}")
        assert _detail(spark, cfg, contract)["description"] == contract.description
    assert missing == []


@pytest.mark.slow  # several Delta commits
def test_user_portrait_carries_its_properties_and_constraints(spark, cfg):
    day = make_portrait_rows(spark, D1, [{"user_id": "a", "tags": ["t"]}])
    io.replace_partition(spark, cfg, USER_PORTRAIT, day, D1)
    properties = _detail(spark, cfg, USER_PORTRAIT)["properties"]
    assert properties["delta.enableChangeDataFeed"] == "true"
    assert properties[io.OWNER_PROPERTY] == cfg.publish.owner == "portrait-team"
    constraints = {r["key"]: r["value"] for r in spark.sql(
        f"SHOW TBLPROPERTIES delta.`{io.table_ref(cfg, USER_PORTRAIT).path}`").collect()}
    assert "propensity_decile BETWEEN 1 AND 10" in constraints["delta.constraints.valid_scores"]

    out_of_range = make_portrait_rows(spark, D1, [{"user_id": "a", "propensity_decile": 11}])
    with pytest.raises(Exception, match="(?i)valid_scores"):
        io.replace_partition(spark, cfg, USER_PORTRAIT, out_of_range, D1)
    assertDataFrameEqual(io.read_table(spark, cfg, USER_PORTRAIT), day)


def _many_small_appends(spark, cfg, batches: int = 6):
    """user_portrait written in 2 × ``batches`` one-row appends: at least one file per append."""
    for k in range(batches):
        for day in (D1, D2):
            rows = make_portrait_rows(spark, day, [{"user_id": f"u{k}", "tags": [f"t{k}"]}]).coalesce(1)
            io.append_rows(spark, cfg, USER_PORTRAIT, rows)


def _parquet_files(cfg) -> int:
    root = Path(io.table_ref(cfg, USER_PORTRAIT).path)
    return sum(1 for f in root.rglob("*.parquet") if "_delta_log" not in f.parts)  # not checkpoints


@pytest.mark.slow
def test_optimize_compacts_many_small_appends_and_vacuum_removes_the_old_files(spark, tmp_path):
    cfg = make_config(tmp_path, PRIVACY__VACUUM_RETENTION_HOURS="0")
    _many_small_appends(spark, cfg, batches=4)
    before = io.read_table(spark, cfg, USER_PORTRAIT).collect()
    assert io.table_file_count(spark, cfg, USER_PORTRAIT) == 8
    (result,) = operations.maintain(Lakehouse(spark, cfg), ["user_portrait"])
    assert (result.table, result.files_before, result.files_after, result.zorder_by) == (
        "user_portrait", 8, 2, ["person_key"])  # one file per dt partition
    assert result.properties_set == {}       # created by portrait: already complete
    assertDataFrameEqual(io.read_table(spark, cfg, USER_PORTRAIT), before)
    assert _parquet_files(cfg) == 2           # the 8 small files are gone from storage too


@pytest.mark.slow  # several Delta commits
def test_default_retention_keeps_files_time_travel_needs(spark, tmp_path):
    cfg = make_config(tmp_path)
    _many_small_appends(spark, cfg, batches=2)
    (result,) = operations.maintain(Lakehouse(spark, cfg), ["user_portrait"])
    assert (result.files_before, result.files_after) == (4, 2)
    assert _parquet_files(cfg) == 6           # 168 h: the replaced files stay for time travel
    assert io.read_table(spark, cfg, USER_PORTRAIT, version=1).count() == 1  # 0 create (with its constraint), 1 append
    properties = _detail(spark, cfg, USER_PORTRAIT)["properties"]
    assert properties[io.RETENTION_PROPERTY] == "interval 168 hours"


def test_maintain_adds_missing_properties_to_an_existing_table(spark, tmp_path):
    cfg = make_config(tmp_path, PUBLISH__OWNER="growth-team")
    io.ensure_table(spark, cfg, USER_PORTRAIT)
    moved = make_config(tmp_path, PUBLISH__OWNER="crm-team")
    assert io.apply_table_properties(spark, moved, USER_PORTRAIT) == {io.OWNER_PROPERTY: "crm-team"}
    assert io.apply_table_properties(spark, moved, USER_PORTRAIT) == {}
    assert _detail(spark, moved, USER_PORTRAIT)["properties"][io.OWNER_PROPERTY] == "crm-team"


def test_bad_maintenance_requests_are_named(spark, cfg):
    with pytest.raises(ValueError, match=r"unknown table\(s\) \['user_portrayt'\]"):
        operations.maintain(Lakehouse(spark, cfg), ["user_portrayt"])
    io.ensure_table(spark, cfg, USER_PORTRAIT)
    with pytest.raises(ValueError, match=r"cannot Z-order table 'user_portrait' by \['dt'\]"):
        io.optimize_table(spark, cfg, USER_PORTRAIT, ["dt"])


@pytest.mark.slow  # several Delta commits
def test_cli_maintain_and_tags(spark, tmp_path, monkeypatch, capsys):
    for name, value in config_environ(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PORTRAIT_CONF", raising=False)
    monkeypatch.chdir(tmp_path)  # not the repository: nothing may depend on the working directory
    common = ["--conf", str(LOCAL_CONF), "--date", D1.isoformat()]
    cfg = make_config(tmp_path)
    io.replace_partition(spark, cfg, USER_PORTRAIT, make_portrait_rows(spark, D1, [{"user_id": "a"}]), D1)
    assert cli.main(["maintain", *common, "--table", "user_portrait"]) == 0
    assert "user_portrait        Z-ordered by person_key: 1 → 1 files" in capsys.readouterr().out
    assert cli.main(["maintain", *common, "--table", "nope"]) == cli.EXIT_USAGE
    assert "unknown table(s) ['nope']" in capsys.readouterr().err
    assert cli.main(["tags", *common]) == 0
    assert capsys.readouterr().out == (Path(__file__).resolve().parents[1] / "docs" / "TAGS.md").read_text()
