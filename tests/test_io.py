"""Table I/O: contracts enforced on read and write, partitions replaced atomically and only their own."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading

import pytest
from delta.tables import DeltaTable
from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

from portrait import evolve, io
from portrait.schemas import USER_FEATURES, TableContract, _col

SMALL = TableContract(
    name="user_features",  # reuses a configured table name; the schema is the test's own
    description="A small test table.",
    schema=T.StructType([
        _col("user_id", T.StringType(), "Customer id.", False),
        _col("value", T.LongType(), "A number."),
        _col("dt", T.DateType(), "Partition date.", False),
    ]),
    partition_by=("dt",),
)
D1, D2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)


def _rows(spark, rows):
    return spark.createDataFrame(rows, SMALL.schema)


def test_replace_partition_is_idempotent_and_leaves_other_dates_alone(spark, cfg):
    io.replace_partition(spark, cfg, SMALL, _rows(spark, [("a", 1, D1), ("b", 2, D1)]), D1)
    io.replace_partition(spark, cfg, SMALL, _rows(spark, [("a", 10, D2)]), D2)
    io.replace_partition(spark, cfg, SMALL, _rows(spark, [("a", 1, D1), ("b", 2, D1)]), D1)
    io.replace_partition(spark, cfg, SMALL, _rows(spark, [("c", 3, D1)]), D1)
    expected = _rows(spark, [("c", 3, D1), ("a", 10, D2)])
    assertDataFrameEqual(io.read_table(spark, cfg, SMALL), expected)


def test_a_row_of_another_date_cannot_be_written_into_a_partition(spark, cfg):
    io.replace_partition(spark, cfg, SMALL, _rows(spark, [("a", 1, D1)]), D1)
    with pytest.raises(Exception, match="(?i)replaceWhere|does not conform|DELTA_REPLACE_WHERE_MISMATCH"):
        io.replace_partition(spark, cfg, SMALL, _rows(spark, [("z", 9, D2)]), D1)
    assertDataFrameEqual(io.read_table(spark, cfg, SMALL), _rows(spark, [("a", 1, D1)]))


def test_day_must_be_a_date_object(spark, cfg):
    with pytest.raises(TypeError, match="datetime.date"):
        io.replace_partition(spark, cfg, SMALL, _rows(spark, [("a", 1, D1)]), "2026-11-01' OR '1'='1")


def test_created_table_carries_comments_not_null_and_partitioning(spark, cfg):
    ref = io.ensure_table(spark, cfg, SMALL)
    stored = spark.read.format("delta").load(ref.path).schema
    assert stored["user_id"].metadata["comment"] == "Customer id."
    assert stored["user_id"].nullable is False and stored["value"].nullable is True
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{ref.path}`").first()
    assert detail["partitionColumns"] == ["dt"]
    assert detail["description"] == "A small test table."


def test_not_null_contract_is_enforced_on_write(spark, cfg):
    with pytest.raises(Exception, match="(?i)null"):
        io.replace_partition(spark, cfg, SMALL, spark.createDataFrame(
            [(None, 1, D1)], "user_id string, value long, dt date"), D1)


def test_missing_table_error_names_the_table_and_the_fix(spark, cfg):
    with pytest.raises(io.TableNotFoundError, match=r"table 'clickstream' does not exist at .*portrait generate"):
        from portrait.schemas import CLICKSTREAM

        io.read_table(spark, cfg, CLICKSTREAM)


def test_schema_mismatch_names_table_and_column(spark, cfg):
    ref = io.table_ref(cfg, USER_FEATURES)
    spark.createDataFrame([("a", "x", D1)], "user_id string, value string, dt date").write.format("delta").save(ref.path)
    with pytest.raises(io.SchemaMismatchError, match=r"column 'value' is string, the contract says bigint"):
        io.read_table(spark, cfg, SMALL)
    with pytest.raises(io.SchemaMismatchError, match=r"has no column 'days_since_first_event'"):
        io.read_table(spark, cfg, USER_FEATURES)


def test_an_old_version_reads_a_nullable_column_added_since_as_null(spark, cfg):
    io.replace_partition(spark, cfg, SMALL, _rows(spark, [("a", 1, D1)]), D1)
    first = io.table_version(spark, cfg, SMALL)
    grown = dataclasses.replace(SMALL, schema=T.StructType(
        [*SMALL.schema.fields[:2], _col("note", T.StringType(), "Added later."), SMALL.schema.fields[2]]))
    evolve.add_missing_columns(spark, cfg, grown)
    [row] = io.read_table(spark, cfg, grown, version=first).collect()
    assert row.asDict() == {"user_id": "a", "value": 1, "note": None, "dt": D1}
    required = dataclasses.replace(grown, schema=T.StructType(
        [*grown.schema.fields[:3], _col("other", T.StringType(), "NOT NULL, never added.", False),
         grown.schema.fields[3]]))
    with pytest.raises(io.SchemaMismatchError, match="no column 'other'"):  # only nullable ones read as null
        io.read_table(spark, cfg, required, version=first)


def test_versions_count_commits_and_time_travel_reads_an_old_version(spark, cfg):
    assert io.table_version(spark, cfg, SMALL) is None
    io.replace_partition(spark, cfg, SMALL, _rows(spark, [("a", 1, D1)]), D1)
    first = io.table_version(spark, cfg, SMALL)
    io.replace_partition(spark, cfg, SMALL, _rows(spark, [("a", 2, D1)]), D1)
    assert io.table_version(spark, cfg, SMALL) == first + 1
    assertDataFrameEqual(io.read_table(spark, cfg, SMALL, version=first), _rows(spark, [("a", 1, D1)]))


def test_the_version_read_from_the_log_is_the_history_s_and_a_write_by_another_writer_is_seen(spark, cfg,
                                                                                             monkeypatch):
    io.replace_partition(spark, cfg, SMALL, _rows(spark, [("a", 1, D1)]), D1)
    path = io.table_ref(cfg, SMALL).path
    # Another writer (a plain Delta write, not through portrait) commits twice after the version was cached.
    assert io.table_version(spark, cfg, SMALL) == 1
    for value in (2, 3):
        _rows(spark, [("a", value, D2)]).write.format("delta").mode("append").save(path)
    history = DeltaTable.forPath(spark, path).history(1).select("version").first()[0]
    assert io.table_version(spark, cfg, SMALL) == io._logged_version(spark, path) == history == 3
    # Where open-source Delta's log class is not there (Databricks' runtime), the history answers.
    monkeypatch.setattr(io, "_logged_version", lambda spark, path: None)
    assert io.table_version(spark, cfg, SMALL) == 3


def test_a_date_is_counted_as_written_and_counted_again_when_the_metric_never_arrives(spark, cfg, monkeypatch):
    from pyspark.sql import Observation

    from portrait import lakehouse

    lake = lakehouse.Lakehouse(spark, cfg)
    monkeypatch.setattr(lake, "day_rows", lambda *args: pytest.fail("the date was read back to be counted"))
    assert lake.replace_day(SMALL, _rows(spark, [("a", 1, D1), ("b", 2, D1)]), D1) == 2
    assert lake.replace_day(SMALL, _rows(spark, [("c", 3, D2)]), D2) == 1  # the date's rows, not the table's
    monkeypatch.delattr(lake, "day_rows")
    # A write path that drops observed metrics: the wait gives up, and the session counts dates from then on.
    monkeypatch.setattr(lakehouse, "_METRIC_WAIT_SECONDS", 0.5)
    monkeypatch.setattr(lakehouse, "_metrics_missing", False)
    monkeypatch.setattr(Observation, "get", property(lambda self: threading.Event().wait()))
    assert lake.replace_day(SMALL, _rows(spark, [("a", 1, D1), ("b", 2, D1), ("d", 4, D1)]), D1) == 3
    assert lakehouse._metrics_missing
    assert lake.replace_day(SMALL, _rows(spark, [("e", 5, D2)]), D2) == 1


CHECKED = TableContract(
    name="user_features",
    description="A small test table with a CHECK constraint.",
    schema=SMALL.schema,
    partition_by=("dt",),
    checks=(("value_positive", "value > 0"),),
)


def test_checks_are_part_of_the_first_commit_and_enforced(spark, cfg):
    """A table is never visible without its CHECK constraints: they are in the commit that creates it."""
    ref = io.ensure_table(spark, cfg, CHECKED)
    assert io.ensure_table(spark, cfg, CHECKED) == ref  # a second creator finds it and changes nothing
    history = spark.sql(f"DESCRIBE HISTORY delta.`{ref.path}`").select("version").collect()
    assert [r["version"] for r in history] == [0]
    constraints = spark.sql(f"SHOW TBLPROPERTIES delta.`{ref.path}`").where("key LIKE 'delta.constraints.%'")
    assert [(r["key"], r["value"]) for r in constraints.collect()] == [("delta.constraints.value_positive", "value > 0")]
    io.replace_partition(spark, cfg, CHECKED, _rows(spark, [("a", 1, D1)]), D1)
    with pytest.raises(Exception, match="value_positive"):
        io.replace_partition(spark, cfg, CHECKED, _rows(spark, [("b", 0, D1)]), D1)
    assertDataFrameEqual(io.read_table(spark, cfg, CHECKED), _rows(spark, [("a", 1, D1)]))


def test_a_second_creator_of_a_catalog_table_finds_the_checks_already_there(spark, cfg):
    """Catalog tables get their constraints by ALTER TABLE after creation; two creators at once both add them."""
    from portrait.schemas import USER_PORTRAIT

    ref = io.ensure_table(spark, cfg, USER_PORTRAIT)
    io._add_checks(spark, ref, USER_PORTRAIT)  # what the second creator does after losing the race
    constraints = spark.sql(f"SHOW TBLPROPERTIES delta.`{ref.path}`").where("key LIKE 'delta.constraints.%'")
    assert [r["key"] for r in constraints.collect()] == ["delta.constraints.valid_scores"]
