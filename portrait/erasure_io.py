"""Delta mechanics of erasure: deletes that leave no id in the log, VACUUM below Delta's safety check, purge.

Storage layer (like :mod:`portrait.io`): which rows belong to a person is :mod:`portrait.erasure`'s business,
when to delete and purge is the forget and purge stages'. What a deleted row leaves behind, and what removes it:

* the data files that held it, still referenced by older versions: VACUUM once they are older than the
  retention (:func:`vacuum_with_retention`); files that only carry a deletion vector marking the row deleted
  (tables with ``delta.enableDeletionVectors``, the default on Databricks) are rewritten first
  (``REORG TABLE … APPLY (PURGE)``);
* the delete's own log entry: :func:`delete_matching` joins the table with a request frame, so the entry holds
  column names, never the ids;
* per-file statistics in the log: personal tables keep none of their id columns
  (``delta.dataSkippingStatsColumns``, :func:`portrait.io.table_properties`);
* log entries written before those two rules (older versions of portrait): they expire with
  ``delta.logRetentionDuration``, which :func:`purge_table` sets to the erasure retention (at least the 7 days
  Delta accepts), and Delta removes them at a checkpoint after that.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from portrait import privacy
from portrait.config import Config
from portrait.faults import ConcurrentWriteError, CorruptTableError, raise_storage_problem, retrying_conflicts
from portrait.io import (
    SchemaMismatchError,
    delta_table,
    read_stored,
    sql_name,
    table_exists,
    table_ref,
    table_version,
    vacuum_table,
)
from portrait.schemas import ERASURE_REQUESTS, ERASURE_TOMBSTONES, TableContract

# Delta refuses a VACUUM retention below this unless its check is switched off (delta.deletedFileRetentionDuration).
DELTA_MIN_SAFE_RETENTION_HOURS = 168
DELETION_VECTORS_PROPERTY = "delta.enableDeletionVectors"
LOG_RETENTION_PROPERTY = "delta.logRetentionDuration"


def delete_matching(spark: SparkSession, cfg: Config, contract: TableContract, source: DataFrame,
                    condition: Column, aliases: tuple[str, str]) -> int:
    """Delete the rows that match a row of ``source`` under ``condition`` in one Delta commit (none when nothing
    matches); returns how many. ``aliases`` names the table and ``source`` in ``condition``.

    A MERGE … WHEN MATCHED DELETE rather than a DELETE with a predicate: Delta keeps the condition's text in
    the table's log for as long as the log lives, so the values to delete (erased ids) travel as the rows of
    ``source`` and the log records only column names. The deleted rows stay in older versions (time travel)
    until :func:`vacuum_with_retention` removes their files. A missing table deletes nothing.
    """
    ref = table_ref(cfg, contract)
    if not table_exists(spark, ref):
        return 0
    target_alias, source_alias = aliases
    source = source.alias(source_alias)
    try:
        # The stored table as it is, not checked against today's contract: an erasure must also work on a
        # table written by an older version whose other columns have changed since.
        matching = (read_stored(spark, ref).alias(target_alias)
                    .join(F.broadcast(source), condition, "left_semi").count())
        if matching:
            retrying_conflicts(lambda: delta_table(spark, ref).alias(target_alias).merge(source, condition)
                               .whenMatchedDelete().execute(), contract)
    except (CorruptTableError, ConcurrentWriteError, SchemaMismatchError):
        raise
    except Exception as exc:
        raise_storage_problem(exc, ref)
        raise
    return matching


def vacuum_with_retention(spark: SparkSession, cfg: Config, contract: TableContract, retention_hours: int) -> bool:
    """VACUUM a table with ``retention_hours``; returns False when the table does not exist.

    A retention below Delta's 168-hour safety check is the configured decision (``privacy.
    vacuum_retention_hours``, tests use 0): the check is switched off on this session for this call only
    and restored afterwards. Short retentions can break readers of old versions and concurrent writers.
    """
    if not table_exists(spark, table_ref(cfg, contract)):
        return False
    check = "spark.databricks.delta.retentionDurationCheck.enabled"
    if retention_hours >= DELTA_MIN_SAFE_RETENTION_HOURS:
        vacuum_table(spark, cfg, contract, retention_hours)
        return True
    previous = spark.conf.get(check, None)
    spark.conf.set(check, "false")
    try:
        vacuum_table(spark, cfg, contract, retention_hours)
    finally:
        if previous is None:
            spark.conf.unset(check)
        else:
            spark.conf.set(check, previous)
    return True


def purge_table(spark: SparkSession, cfg: Config, contract: TableContract, retention_hours: int) -> bool:
    """Remove from the files what deletes older than ``retention_hours`` left behind (see the module docstring):
    rewrite files carrying deletion vectors, VACUUM, and let the log keep entries only that long. False when
    the table does not exist."""
    ref = table_ref(cfg, contract)
    if not table_exists(spark, ref):
        return False
    properties = delta_table(spark, ref).detail().first()["properties"] or {}
    if properties.get(DELETION_VECTORS_PROPERTY, "false").lower() == "true":
        spark.sql(f"REORG TABLE {sql_name(ref)} APPLY (PURGE)")
    vacuum_with_retention(spark, cfg, contract, retention_hours)
    # Delta refuses a log retention below 7 days (and below delta.deletedFileRetentionDuration, which VACUUM has
    # just set to the retention).
    log_retention = f"interval {max(int(retention_hours), DELTA_MIN_SAFE_RETENTION_HOURS)} hours"
    if properties.get(LOG_RETENTION_PROPERTY) != log_retention:
        spark.sql(f"ALTER TABLE {sql_name(ref)} SET TBLPROPERTIES ('{LOG_RETENTION_PROPERTY}' = '{log_retention}')")
    return True


# --------------------------------------------------------------------------- tombstones: no erased person written back

TOMBSTONE_ALIASES = ("t", "tombstoned")


def guarded(contract: TableContract) -> bool:
    """Whether writes of ``contract`` honour tombstones: tables with a raw-id or person-key column (the audit
    tables of erasure itself excepted)."""
    return bool(contract.id_columns or contract.person_key_columns) and contract.name not in (
        ERASURE_TOMBSTONES.name, ERASURE_REQUESTS.name)


class TombstoneGuard:
    """Keeps the persons of every erasure out of one write of ``contract``.

    Made before the write: it notes the tombstone table's version and drops from the frame the rows whose id
    (or person key) has a tombstone under the current key (:meth:`filter`). A ``forget`` that starts after that
    writes its tombstones before its first delete; if it deleted before this write commits, :meth:`recheck`
    (after the commit) sees tombstones newer than the noted version and deletes their rows from the table. So a
    run that read before an erasure cannot leave the person behind, whichever commits first.
    """

    def __init__(self, spark: SparkSession, cfg: Config, contract: TableContract) -> None:
        self.spark, self.cfg, self.contract = spark, cfg, contract
        self.version = table_version(spark, cfg, ERASURE_TOMBSTONES)  # None: nobody was ever erased

    def _keys(self, version: int | None) -> DataFrame | None:
        """The tombstone keys under the current pseudonymisation key at ``version`` (None: no table then)."""
        if version is None:
            return None
        key = privacy.pseudonym_key()
        stored = read_stored(self.spark, table_ref(self.cfg, ERASURE_TOMBSTONES), version)
        return (stored.where(F.col("key_fingerprint") == F.lit(privacy.key_fingerprint(key)))
                .select("tombstone_key").distinct())

    def filter(self, frame: DataFrame) -> DataFrame:
        """``frame`` without the rows of tombstoned persons."""
        keys = self._keys(self.version)
        if keys is None:
            return frame
        key = privacy.pseudonym_key()
        for column in self.contract.person_key_columns:
            frame = frame.join(keys, frame[column] == keys["tombstone_key"], "left_anti")
        for column in self.contract.id_columns:
            hashed = f"__tombstone_{column}"
            frame = (frame.withColumn(hashed, privacy.person_key(F.col(column), key))
                     .join(keys.withColumnRenamed("tombstone_key", hashed), on=hashed, how="left_anti")
                     .drop(hashed))
        return frame

    def recheck(self) -> int:
        """After the write: delete the rows of persons tombstoned since the guard was made; returns how many."""
        now = table_version(self.spark, self.cfg, ERASURE_TOMBSTONES)
        if now is None or now == self.version:
            return 0
        new = self._keys(now)
        seen = self._keys(self.version)
        if seen is not None:
            new = new.join(seen, on="tombstone_key", how="left_anti")
        source = self._tombstoned_values(new)
        if source is None:
            return 0
        columns = [*self.contract.id_columns, *self.contract.person_key_columns]
        target, alias = TOMBSTONE_ALIASES
        condition = F.lit(False)
        for column in columns:
            condition = condition | (F.col(f"{target}.`{column}`") == F.col(f"{alias}.value"))
        return delete_matching(self.spark, self.cfg, self.contract, source, condition, TOMBSTONE_ALIASES)

    def _tombstoned_values(self, keys: DataFrame) -> DataFrame | None:
        """The values (ids, person keys) in the table that the tombstone ``keys`` name, as one column ``value``;
        None when there are none. At most one id per tombstone, so the result is as small as the erasures."""
        ref = table_ref(self.cfg, self.contract)
        if not table_exists(self.spark, ref):
            return None
        stored, key = read_stored(self.spark, ref), privacy.pseudonym_key()
        values = [stored.select(F.col(c).alias("value"), F.col(c).alias("hashed"))
                  for c in self.contract.person_key_columns]
        values += [stored.select(F.col(c).alias("value"), privacy.person_key(F.col(c), key).alias("hashed"))
                   for c in self.contract.id_columns]
        union = values[0]
        for other in values[1:]:
            union = union.unionByName(other)
        found = (union.join(keys.withColumnRenamed("tombstone_key", "hashed"), on="hashed", how="left_semi")
                 .select("value").distinct().collect())  # bounded by the erased ids
        if not found:
            return None
        return self.spark.createDataFrame([(row["value"],) for row in found], "value string")
