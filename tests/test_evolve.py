"""A table written under an older contract is brought in line with the current one (portrait/evolve.py)."""

from __future__ import annotations

import datetime as dt

import pytest
from delta.tables import DeltaTable
from pyspark.errors import PySparkException
from pyspark.sql import types as T

from portrait import evolve, io
from portrait.schemas import TableContract, _col

D1 = dt.date(2026, 11, 1)
# The older contract: a score that had to be there, checked by a condition that rejects null.
OLD = TableContract(
    name="user_features",  # reuses a configured table name; the schema is the test's own
    description="A table whose score became optional.",
    schema=T.StructType([
        _col("user_id", T.StringType(), "Customer id.", False),
        _col("score", T.DoubleType(), "A probability.", False),
        _col("dt", T.DateType(), "Partition date.", False),
    ]),
    partition_by=("dt",),
    checks=(("valid_score", "score BETWEEN 0 AND 1"),),
)
NEW = TableContract(
    name=OLD.name, description=OLD.description,
    schema=T.StructType([
        _col("user_id", T.StringType(), "Customer id.", False),
        _col("score", T.DoubleType(), "A probability; null before a model exists."),
        _col("dt", T.DateType(), "Partition date.", False),
        _col("note", T.StringType(), "Added later."),
    ]),
    partition_by=("dt",),
    checks=(("valid_score", "score IS NULL OR score BETWEEN 0 AND 1"),),
)


def _write(spark, cfg, contract, rows):
    io.replace_partition(spark, cfg, contract, spark.createDataFrame(rows, contract.schema), D1)


def test_an_old_table_takes_null_scores_once_relaxed_and_keeps_rejecting_bad_ones(spark, cfg):
    _write(spark, cfg, OLD, [("u1", 0.4, D1)])
    ref = io.table_ref(cfg, OLD)
    assert evolve.add_missing_columns(spark, cfg, NEW) == ["note"]
    with pytest.raises(PySparkException, match="NOT NULL|null"):  # the old table refuses what NEW allows
        _write(spark, cfg, NEW, [("u2", None, D1, None)])

    assert evolve.relax_to_contract(spark, cfg, NEW) == ["score nullable", "constraint valid_score"]
    version = DeltaTable.forPath(spark, ref.path).history(1).first()["version"]
    assert evolve.relax_to_contract(spark, cfg, NEW) == []  # in line: no further commit
    assert DeltaTable.forPath(spark, ref.path).history(1).first()["version"] == version

    _write(spark, cfg, NEW, [("u1", 0.4, D1, None), ("u2", None, D1, "unscored")])
    stored = {r["user_id"]: (r["score"], r["note"]) for r in io.read_table(spark, cfg, NEW).collect()}
    assert stored == {"u1": (0.4, None), "u2": (None, "unscored")}
    with pytest.raises(PySparkException, match="valid_score"):  # the replaced condition is enforced
        _write(spark, cfg, NEW, [("u3", 1.5, D1, None)])


def test_a_missing_table_needs_nothing(spark, cfg):
    assert evolve.relax_to_contract(spark, cfg, NEW) == []
    assert evolve.add_missing_columns(spark, cfg, NEW) == []
