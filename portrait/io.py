"""The Delta mechanics behind the lakehouse catalog (:mod:`portrait.lakehouse`), which is what stages use.

Tables live either as folders of a local or object-store directory (``lakehouse.path``) or as tables of a
metastore schema (``lakehouse.catalog``/``lakehouse.schema``). Every read checks the stored schema against
the contract in :mod:`portrait.schemas` and selects exactly the contract's columns; every write creates the
table with its contract (types, NOT NULL, comments, partitioning) first and replaces whole partitions
atomically with ``replaceWhere``, so a re-run of a date never duplicates rows and never touches other dates.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from delta.tables import DeltaTable
from py4j.protocol import Py4JError
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from portrait.config import Config
from portrait.faults import raise_storage_problem, retrying_conflicts
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


def delta_table(spark: SparkSession, ref: TableRef) -> DeltaTable:
    if ref.path is not None:
        return DeltaTable.forPath(spark, ref.path)
    return DeltaTable.forName(spark, ref.qualified_name)


def read_table(spark: SparkSession, cfg: Config, contract: TableContract,
               version: int | None = None) -> DataFrame:
    """Read a contract table, checked against its contract, with exactly the contract's columns.

    ``version`` reads an earlier Delta version (time travel), to replay a past run on the data it saw; a
    nullable column the contract gained since is null there.

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
    try:
        frame = reader.load(ref.path) if ref.path else reader.table(ref.qualified_name)
    except Exception as exc:
        raise_storage_problem(exc, ref)
        raise
    if version is not None:
        # A version written before a nullable column was added to the contract (portrait/evolve.py) had none.
        added = [f for f in contract.schema.fields if f.nullable and f.name not in frame.columns]
        frame = frame.select("*", *[F.lit(None).cast(f.dataType).alias(f.name) for f in added])
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


CONSTRAINT_PROPERTY_PREFIX = "delta.constraints."


def ensure_table(spark: SparkSession, cfg: Config, contract: TableContract) -> TableRef:
    """Create the table with its contract (types, NOT NULL, comments, partitions) if it does not exist.

    A table created here also gets the contract's CHECK constraints (``TableContract.checks``) and table
    properties (``TableContract.properties`` and ``portrait.owner`` from ``publish.owner``); a table at a path
    gets them all in its first commit.
    """
    ref = table_ref(cfg, contract)
    if table_exists(spark, ref):
        return ref
    builder = DeltaTable.createIfNotExists(spark)
    builder = builder.location(ref.path) if ref.path else builder.tableName(ref.qualified_name)
    builder = builder.comment(contract.description)
    for name, value in table_properties(cfg, contract).items():
        builder = builder.property(name, value)
    if ref.path:
        # The Delta protocol keeps a CHECK constraint as the table property `delta.constraints.<name>`; set at
        # creation, delta-spark enforces it like one added by ALTER TABLE … ADD CONSTRAINT, without a commit and
        # a scan per constraint, and no reader sees the table without it. A catalog (a Databricks workspace)
        # may refuse constraint properties in CREATE: catalog tables get the documented ALTER TABLE below.
        for name, condition in contract.checks:
            builder = builder.property(f"{CONSTRAINT_PROPERTY_PREFIX}{name}", condition)
    for field in contract.schema.fields:
        builder = builder.addColumn(
            field.name, field.dataType, nullable=field.nullable, comment=contract.comment(field.name)
        )
    if contract.partition_by:
        builder = builder.partitionedBy(*contract.partition_by)
    try:
        builder.execute()
    except Exception as exc:
        raise_storage_problem(exc, ref)
        if any(code in str(exc) for code in _CREATION_RACE_ERRORS) and _created_meanwhile(spark, ref):
            return ref  # another run of the same job created it first, with the same contract
        raise
    if not ref.path:
        _add_checks(spark, ref, contract)
    return ref


# What Delta raises when two writers create the same table at once and the other one is half-way: its
# _delta_log folder exists but holds no commit yet.
_CREATION_RACE_ERRORS = ("DELTA_CREATE_TABLE_WITH_NON_EMPTY_LOCATION", "DELTA_TABLE_NOT_FOUND")


def _created_meanwhile(spark: SparkSession, ref: TableRef, seconds: float = 10.0) -> bool:
    """Whether the table at ``ref`` exists now or within ``seconds``; False for a folder that stays a
    non-Delta folder (the original error is then the right one to raise)."""
    deadline = time.monotonic() + seconds
    while not table_exists(spark, ref):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    return True


def sql_name(ref: TableRef) -> str:
    return f"delta.`{ref.path}`" if ref.path else ref.qualified_name


def _add_checks(spark: SparkSession, ref: TableRef, contract: TableContract) -> None:
    """Add the contract's CHECK constraints to a catalog table just created (names and SQL come from code)."""
    for name, condition in contract.checks:
        try:
            spark.sql(f"ALTER TABLE {sql_name(ref)} ADD CONSTRAINT {name} CHECK ({condition})")
        except AnalysisException as exc:
            # Two jobs creating the table at once both add its constraints: the second finds them there.
            if "CONSTRAINT_ALREADY_EXISTS" not in str(exc) and "already exists" not in str(exc):
                raise


def _conform(frame: DataFrame, contract: TableContract) -> DataFrame:
    """Select the contract's columns in order, cast to the contract's types."""
    missing = [c for c in contract.columns if c not in frame.columns]
    if missing:
        raise SchemaMismatchError(f"cannot write '{contract.name}': the data has no column(s) {missing}")
    return frame.select(*[frame[f.name].cast(f.dataType).alias(f.name) for f in contract.schema.fields])


def _save(writer, ref: TableRef) -> None:
    try:
        if ref.path:
            writer.save(ref.path)
        else:
            writer.saveAsTable(ref.qualified_name)
    except Exception as exc:
        raise_storage_problem(exc, ref)
        raise


def replace_partition(spark: SparkSession, cfg: Config, contract: TableContract, frame: DataFrame,
                      day: dt.date) -> TableRef:
    """Atomically replace the rows of date ``day`` (column ``dt``) with ``frame``; other dates stay.

    Every row of ``frame`` must have ``dt == day``; Delta rejects the commit otherwise, so a bug cannot
    spill into another date.
    """
    return replace_date_range(spark, cfg, contract, frame, day, day)


def replace_date_range(spark: SparkSession, cfg: Config, contract: TableContract, frame: DataFrame,
                       start: dt.date, end: dt.date) -> TableRef:
    """Atomically replace the rows with ``start <= dt <= end`` by ``frame`` in one commit; other dates stay.

    Every row of ``frame`` must lie in the range; Delta rejects the commit otherwise.
    """
    for name, value in (("start", start), ("end", end)):
        # datetime.datetime is a date too, but its ISO form would not be a date literal.
        if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
            raise TypeError(f"{name} must be a datetime.date, got {type(value).__name__}")
    if end < start:
        raise ValueError(f"date range {start}..{end} ends before it starts")
    ref = retrying_conflicts(lambda: ensure_table(spark, cfg, contract), contract)
    # Both bounds are date objects, so the predicate below cannot carry anything but ISO dates.
    writer = (
        _conform(frame, contract).write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", f"dt >= DATE'{start.isoformat()}' AND dt <= DATE'{end.isoformat()}'")
    )
    # A concurrent run of the same dates: replacing the range again after its commit is still exactly one
    # copy of the rows (the last writer wins), so a conflict is retried rather than failed.
    retrying_conflicts(lambda: _save(writer, ref), contract)
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
    version = _logged_version(spark, ref.path) if ref.path is not None else None
    if version is None:
        version = int(delta_table(spark, ref).history(1).select("version").first()[0])
    return version


def _logged_version(spark: SparkSession, path: str) -> int | None:
    """The newest version in the table's transaction log, read without a Spark job (``history(1)`` starts one
    per call, and a daily run asks for versions dozens of times). It goes through open-source Delta's
    ``DeltaLog``, which Databricks' runtime does not ship under that name: there, None (use ``history``)."""
    jvm = spark.sparkContext._jvm
    try:
        log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, path)
        empty = jvm.scala.Option.empty()
        return int(log.update(False, empty, empty).version())
    except (Py4JError, TypeError):
        return None


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
        delta_table(spark, ref).alias("t")
        .merge(_conform(frame, contract).alias("s"), condition)
        .whenNotMatchedInsertAll()
        .execute()
        .first()
    )
    return int(metrics["num_inserted_rows"])


def append_rows(spark: SparkSession, cfg: Config, contract: TableContract, frame: DataFrame) -> TableRef:
    """Append ``frame`` (conformed to the contract) to the table in one commit."""
    ref = ensure_table(spark, cfg, contract)
    _save(_conform(frame, contract).write.format("delta").mode("append"), ref)
    return ref


# --------------------------------------------------------------------------- properties and maintenance

OWNER_PROPERTY = "portrait.owner"
STATS_COLUMNS_PROPERTY = "delta.dataSkippingStatsColumns"
_STATS_TYPES = (T.NumericType, T.StringType, T.DateType, T.TimestampType, T.TimestampNTZType)  # skippable


def table_properties(cfg: Config, contract: TableContract) -> dict[str, str]:
    """The Delta table properties a contract table carries: the contract's own, its owner, and for a table with
    personal columns the columns Delta may keep statistics of (every other non-partition column)."""
    properties = {**dict(contract.properties), OWNER_PROPERTY: cfg.publish.owner}
    personal = {*contract.id_columns, *contract.person_text_columns}
    if personal:
        # Delta writes per-file minimum and maximum values into its log, which a DELETE does not rewrite: a raw
        # id, or text that may hold one, would outlive the person's erasure there.
        kept = [f.name for f in contract.schema.fields if f.name not in (*personal, *contract.partition_by)
                and isinstance(f.dataType, _STATS_TYPES)]
        properties[STATS_COLUMNS_PROPERTY] = ",".join(kept)
    return properties


def _existing(spark: SparkSession, cfg: Config, contract: TableContract) -> TableRef:
    ref = table_ref(cfg, contract)
    if not table_exists(spark, ref):
        raise TableNotFoundError(f"table '{contract.name}' does not exist at {ref}; nothing to maintain")
    return ref


def apply_table_properties(spark: SparkSession, cfg: Config, contract: TableContract) -> dict[str, str]:
    """Set the properties of :func:`table_properties` that an existing table lacks; returns those set."""
    ref = _existing(spark, cfg, contract)
    current = delta_table(spark, ref).detail().first()["properties"] or {}
    missing = {k: v for k, v in table_properties(cfg, contract).items() if current.get(k) != v}
    if missing:
        # Names come from code and the owner is validated by the config (no quotes), so plain literals are safe.
        listed = ", ".join(f"'{k}' = '{v}'" for k, v in missing.items())
        spark.sql(f"ALTER TABLE {sql_name(ref)} SET TBLPROPERTIES ({listed})")
    return missing


def table_file_count(spark: SparkSession, cfg: Config, contract: TableContract) -> int:
    """Number of data files in the table's current version (Delta ``numFiles``)."""
    return int(delta_table(spark, _existing(spark, cfg, contract)).detail().first()["numFiles"])


def optimize_table(spark: SparkSession, cfg: Config, contract: TableContract,
                   zorder_by: Sequence[str] = ()) -> tuple[int, int]:
    """OPTIMIZE: compact small files, Z-ordered by ``zorder_by`` when given; returns (files removed, added).

    Rewrites files only (one commit, data unchanged); readers keep reading throughout.
    """
    unusable = [c for c in zorder_by if c not in contract.columns or c in contract.partition_by]
    if unusable:
        raise ValueError(f"cannot Z-order table '{contract.name}' by {unusable}: Z-order columns must be "
                         f"non-partition columns of the contract ({', '.join(contract.columns)}); "
                         "check maintenance.zorder_by")
    optimizer = delta_table(spark, _existing(spark, cfg, contract)).optimize()
    result = optimizer.executeZOrderBy(*zorder_by) if zorder_by else optimizer.executeCompaction()
    metrics = result.first()["metrics"]
    return int(metrics["numFilesRemoved"]), int(metrics["numFilesAdded"])


RETENTION_PROPERTY = "delta.deletedFileRetentionDuration"


def vacuum_table(spark: SparkSession, cfg: Config, contract: TableContract, retention_hours: int) -> None:
    """VACUUM: delete files no longer referenced by versions younger than ``retention_hours``.

    Time travel to versions older than that stops working. Delta 4 ignores a VACUUM retention argument other
    than 0 and uses the table property ``delta.deletedFileRetentionDuration``, so the retention is set there
    (when it differs) and VACUUM runs with it.
    """
    if retention_hours < 0:
        raise ValueError(f"retention_hours must be >= 0, got {retention_hours}")
    ref = _existing(spark, cfg, contract)
    table = delta_table(spark, ref)
    wanted = f"interval {int(retention_hours)} hours"
    if (table.detail().first()["properties"] or {}).get(RETENTION_PROPERTY) != wanted:
        spark.sql(f"ALTER TABLE {sql_name(ref)} SET TBLPROPERTIES ('{RETENTION_PROPERTY}' = '{wanted}')")
    table.vacuum()


# --------------------------------------------------------------------------- stored tables, as they are

def read_stored(spark: SparkSession, ref: TableRef, version: int | None = None) -> DataFrame:
    """A table exactly as stored (every stored column, no contract check): for erasure and its checks."""
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", int(version))
    try:
        return reader.load(ref.path) if ref.path else reader.table(ref.qualified_name)
    except Exception as exc:
        raise_storage_problem(exc, ref)
        raise


# --------------------------------------------------------------------------- BI: upserts, exports, SQL catalog

def upsert_rows(spark: SparkSession, cfg: Config, contract: TableContract, frame: DataFrame) -> None:
    """MERGE ``frame`` into the table on the contract's key: matching rows are replaced, new keys inserted.

    ``frame`` must hold at most one row per key. Rows of the table whose key is not in ``frame`` stay.
    """
    ref = ensure_table(spark, cfg, contract)
    condition = " AND ".join(f"t.`{k}` = s.`{k}`" for k in contract.key)
    (delta_table(spark, ref).alias("t")
     .merge(_conform(frame, contract).alias("s"), condition)
     .whenMatchedUpdateAll()
     .whenNotMatchedInsertAll()
     .execute())


def register_tables(spark: SparkSession, cfg: Config, database: str,
                    contracts: Sequence[TableContract]) -> list[str]:
    """Register the existing Delta tables of ``contracts`` in the session's metastore under ``database``.

    Each becomes ``database.<contract name>`` pointing at its lakehouse folder (``USING DELTA LOCATION``), so
    SQL clients see the current data and schema of the folder; a table registered earlier at another location
    is re-pointed. Tables that do not exist yet are skipped. Returns the names registered.
    """
    if cfg.lakehouse.path is None:
        raise ValueError("registering tables needs lakehouse.path (a directory lakehouse); tables of a "
                         "metastore schema are already registered there")
    spark.sql(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    registered = []
    for contract in contracts:
        ref = table_ref(cfg, contract)
        if not table_exists(spark, ref):
            continue
        name = f"`{database}`.`{contract.name}`"
        location = ref.path.replace("'", "\\'")
        if spark.catalog.tableExists(f"{database}.{contract.name}"):
            stored = spark.sql(f"DESCRIBE TABLE EXTENDED {name}").where("col_name = 'Location'").first()
            if stored is not None and stored[1].removeprefix("file:").rstrip("/") == ref.path.rstrip("/"):
                registered.append(contract.name)
                continue
            spark.sql(f"DROP TABLE {name}")  # an external table: only the metastore entry goes
        spark.sql(f"CREATE TABLE {name} USING DELTA LOCATION '{location}'")
        registered.append(contract.name)
    return registered


def register_view_without(spark: SparkSession, cfg: Config, database: str, view: str, contract: TableContract,
                          hidden: Sequence[str]) -> bool:
    """Register ``database.view``: every column of ``contract``'s Delta folder except ``hidden``, read at query
    time (a view, no copy). False when the table does not exist yet."""
    ref = table_ref(cfg, contract)
    if cfg.lakehouse.path is None or not table_exists(spark, ref):
        return False
    columns = ", ".join(f"`{c}`" for c in contract.columns if c not in hidden)
    path = ref.path.replace("`", "``")
    spark.sql(f"CREATE OR REPLACE VIEW `{database}`.`{view}` AS SELECT {columns} FROM delta.`{path}`")
    return True
