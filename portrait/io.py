"""Reading and writing the lakehouse: the only module that touches storage.

Tables live either as folders of a local or object-store directory (``lakehouse.path``) or as tables of a
metastore schema (``lakehouse.catalog``/``lakehouse.schema``). Every read checks the stored schema against
the contract in :mod:`portrait.schemas` and selects exactly the contract's columns; every write creates the
table with its contract (types, NOT NULL, comments, partitioning) first and replaces whole partitions
atomically with ``replaceWhere``, so a re-run of a date never duplicates rows and never touches other dates.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from portrait.config import Config
from portrait.schemas import TableContract


class TableNotFoundError(LookupError):
    """A table the job needs does not exist; the message names it and says how to create it."""


class SchemaMismatchError(ValueError):
    """A stored table does not match its contract; the message names the table and the column."""


@dataclass(frozen=True)
class TableRef:
    """Where one table lives: a Delta path, or a fully qualified metastore name."""

    contract: TableContract
    physical_name: str
    path: str | None
    qualified_name: str | None

    def __str__(self) -> str:
        return self.path or self.qualified_name or self.physical_name


def table_ref(cfg: Config, contract: TableContract) -> TableRef:
    """Resolve a contract to its configured physical location."""
    physical = getattr(cfg.tables, contract.name)
    if cfg.lakehouse.path is not None:
        path = str((Path(cfg.lakehouse.path) / physical).resolve())
        return TableRef(contract, physical, path, None)
    parts = [p for p in (cfg.lakehouse.catalog, cfg.lakehouse.schema_name, physical) if p]
    return TableRef(contract, physical, None, ".".join(f"`{p}`" for p in parts))


def table_exists(spark: SparkSession, ref: TableRef) -> bool:
    if ref.path is not None:
        return DeltaTable.isDeltaTable(spark, ref.path)
    return spark.catalog.tableExists(ref.qualified_name.replace("`", ""))


def _delta_table(spark: SparkSession, ref: TableRef) -> DeltaTable:
    if ref.path is not None:
        return DeltaTable.forPath(spark, ref.path)
    return DeltaTable.forName(spark, ref.qualified_name)


def read_table(spark: SparkSession, cfg: Config, contract: TableContract,
               version: int | None = None) -> DataFrame:
    """Read a contract table, checked against its contract, with exactly the contract's columns.

    ``version`` reads an earlier Delta version (time travel), to replay a past run on the data it saw.

    Raises :class:`TableNotFoundError` when it does not exist and :class:`SchemaMismatchError` when a
    contract column is missing or has another type.
    """
    ref = table_ref(cfg, contract)
    if not table_exists(spark, ref):
        raise TableNotFoundError(
            f"table '{contract.name}' does not exist at {ref}. Create it with `portrait generate` "
            f"(synthetic data) or load your data into it as described in docs/DATA.md."
        )
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", int(version))
    frame = reader.load(ref.path) if ref.path else reader.table(ref.qualified_name)
    check_schema(frame.schema, contract, str(ref))
    return frame.select(*contract.columns)


def check_schema(actual: T.StructType, contract: TableContract, where: str) -> None:
    """Raise :class:`SchemaMismatchError` naming the first contract column that is missing or mistyped."""
    stored = {f.name: f.dataType for f in actual.fields}
    for field in contract.schema.fields:
        if field.name not in stored:
            raise SchemaMismatchError(
                f"table '{contract.name}' at {where} has no column '{field.name}' "
                f"({field.dataType.simpleString()}: {contract.comment(field.name)})"
            )
        if stored[field.name] != field.dataType:
            raise SchemaMismatchError(
                f"table '{contract.name}' at {where}: column '{field.name}' is "
                f"{stored[field.name].simpleString()}, the contract says {field.dataType.simpleString()}"
            )


def ensure_table(spark: SparkSession, cfg: Config, contract: TableContract) -> TableRef:
    """Create the table with its contract (types, NOT NULL, comments, partitions) if it does not exist."""
    ref = table_ref(cfg, contract)
    builder = DeltaTable.createIfNotExists(spark)
    builder = builder.location(ref.path) if ref.path else builder.tableName(ref.qualified_name)
    builder = builder.comment(contract.description)
    for field in contract.schema.fields:
        builder = builder.addColumn(
            field.name, field.dataType, nullable=field.nullable, comment=contract.comment(field.name)
        )
    if contract.partition_by:
        builder = builder.partitionedBy(*contract.partition_by)
    builder.execute()
    return ref


def _conform(frame: DataFrame, contract: TableContract) -> DataFrame:
    """Select the contract's columns in order, cast to the contract's types."""
    missing = [c for c in contract.columns if c not in frame.columns]
    if missing:
        raise SchemaMismatchError(f"cannot write '{contract.name}': the data has no column(s) {missing}")
    return frame.select(*[frame[f.name].cast(f.dataType).alias(f.name) for f in contract.schema.fields])


def _save(writer, ref: TableRef) -> None:
    if ref.path:
        writer.save(ref.path)
    else:
        writer.saveAsTable(ref.qualified_name)


def replace_partition(spark: SparkSession, cfg: Config, contract: TableContract, frame: DataFrame,
                      day: dt.date) -> TableRef:
    """Atomically replace the rows of date ``day`` (column ``dt``) with ``frame``; other dates stay.

    Every row of ``frame`` must have ``dt == day``; Delta rejects the commit otherwise, so a bug cannot
    spill into another date.
    """
    if not isinstance(day, dt.date):
        raise TypeError(f"day must be a datetime.date, got {type(day).__name__}")
    ref = ensure_table(spark, cfg, contract)
    # ``day`` is a date object, so the predicate below cannot carry anything but an ISO date.
    writer = (
        _conform(frame, contract).write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", f"dt = DATE'{day.isoformat()}'")
    )
    _save(writer, ref)
    return ref


def overwrite_table(spark: SparkSession, cfg: Config, contract: TableContract, frame: DataFrame) -> TableRef:
    """Replace a whole table's content in one commit (used for generated data and small dimensions)."""
    ref = ensure_table(spark, cfg, contract)
    writer = _conform(frame, contract).write.format("delta").mode("overwrite")
    _save(writer, ref)
    return ref


def table_version(spark: SparkSession, cfg: Config, contract: TableContract) -> int | None:
    """The current Delta version of a table, or None when it does not exist."""
    ref = table_ref(cfg, contract)
    if not table_exists(spark, ref):
        return None
    return int(_delta_table(spark, ref).history(1).select("version").first()[0])
