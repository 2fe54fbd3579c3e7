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
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from portrait.config import Config
from portrait.schemas import TableContract


class TableNotFoundError(LookupError):
    """A table the job needs does not exist; the message names it and says how to create it."""


class SchemaMismatchError(ValueError):
    """A stored table does not match its contract; the message names the table and the column."""


class SourceFileError(ValueError):
    """An input file cannot be found or read; the message names the file or path and what to do."""


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
    """Create the table with its contract (types, NOT NULL, comments, partitions) if it does not exist.

    A table created here also gets the contract's CHECK constraints (``TableContract.checks``).
    """
    ref = table_ref(cfg, contract)
    if table_exists(spark, ref):
        return ref
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
    _add_checks(spark, ref, contract)
    return ref


def _sql_name(ref: TableRef) -> str:
    return f"delta.`{ref.path}`" if ref.path else ref.qualified_name


def _add_checks(spark: SparkSession, ref: TableRef, contract: TableContract) -> None:
    """Add the contract's CHECK constraints to a table just created (names and SQL come from code)."""
    for name, condition in contract.checks:
        spark.sql(f"ALTER TABLE {_sql_name(ref)} ADD CONSTRAINT {name} CHECK ({condition})")


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


def merge_new_rows(spark: SparkSession, cfg: Config, contract: TableContract, frame: DataFrame,
                   days: list[dt.date] | None = None) -> int:
    """Insert the rows of ``frame`` whose key is not in the table yet (insert-only MERGE); returns how many.

    Re-running with the same rows inserts nothing, so a load can be repeated or resumed safely. ``frame``
    must not repeat a key (deduplicate first); keys compare null-safely (null matches null). For a table
    partitioned by ``dt``, pass the dates present in ``frame`` as ``days``: the MERGE then reads only those
    partitions, and a key only matches within its date.
    """
    ref = ensure_table(spark, cfg, contract)
    condition = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in contract.key)
    if days is not None:
        if "dt" not in contract.partition_by:
            raise ValueError(f"table '{contract.name}' is not partitioned by dt; pass days=None")
        if not all(isinstance(d, dt.date) for d in days):
            raise TypeError("days must be datetime.date objects")
        if not days:
            return 0
        listed = ", ".join(f"DATE'{d.isoformat()}'" for d in sorted(set(days)))
        condition = f"t.dt IN ({listed}) AND t.dt = s.dt AND {condition}"
    metrics = (
        _delta_table(spark, ref).alias("t")
        .merge(_conform(frame, contract).alias("s"), condition)
        .whenNotMatchedInsertAll()
        .execute()
        .first()
    )
    return int(metrics["num_inserted_rows"])


def _load_files(spark: SparkSession, path: str, what: str, load) -> DataFrame:
    try:
        return load()
    except AnalysisException as exc:
        reason = str(exc).splitlines()[0]
        raise SourceFileError(f"cannot read {what} at {path}: {reason}. Check the path (a file, a glob or a "
                              f"folder of files) and that this machine can read it.") from None


def read_text_files(spark: SparkSession, path: str) -> DataFrame:
    """The lines of the file(s) at ``path`` (file, glob or folder; .gz allowed), as UTF-8 text.

    Columns: ``value`` (the line, without line break) and ``source_file`` (full URI of its file). Bytes that
    are not UTF-8 arrive unchanged (``is_valid_utf8`` finds them). Raises :class:`SourceFileError` naming
    the path when nothing is there.
    """
    frame = _load_files(spark, path, "text files",
                        lambda: spark.read.format("text").schema("value STRING").load(path))
    return frame.select("value", F.col("_metadata.file_path").alias("source_file"))


def read_csv_header(spark: SparkSession, path: str, delimiter: str) -> list[str]:
    """The column names in the header line of the (first) CSV file at ``path``; only that line is read."""
    reader = spark.read.option("header", "true").option("sep", delimiter).option("inferSchema", "false")
    return _load_files(spark, path, "CSV files", lambda: reader.csv(path)).columns


def read_parquet_files(spark: SparkSession, path: str) -> DataFrame:
    """The records of the Parquet file(s) at ``path`` with ``source_file``; schemas of several files merged.

    Parquet files carry their own schema, so none is imposed here; the caller checks the columns it needs.
    """
    frame = _load_files(spark, path, "Parquet files",
                        lambda: spark.read.option("mergeSchema", "true").parquet(path))
    return frame.select("*", F.col("_metadata.file_path").alias("source_file"))


def append_rows(spark: SparkSession, cfg: Config, contract: TableContract, frame: DataFrame) -> TableRef:
    """Append ``frame`` (conformed to the contract) to the table in one commit."""
    ref = ensure_table(spark, cfg, contract)
    _save(_conform(frame, contract).write.format("delta").mode("append"), ref)
    return ref
