"""The lakehouse catalog: the one holder of storage access for every stage.

A :class:`Lakehouse` binds the Spark session to the configured location (a directory of Delta folders, or a
catalog schema) and speaks in table contracts (:mod:`portrait.schemas`): read a contract (whole, one date, a
range of dates, or as of a version), whether it exists, its version, replace a date or a range of dates,
append, merge, delete. Every write of a table with personal columns honours the erasure tombstones. Stages
take a lakehouse and a date; they never build paths, table names or Delta calls themselves. The Delta
mechanics behind it (creation with the contract, atomic ``replaceWhere`` writes, conflict retries, storage
faults) are in :mod:`portrait.io`, those of erasure in :mod:`portrait.erasure_io`.

Example::

    lake = Lakehouse(spark, cfg)
    features = lake.read_day(USER_FEATURES, day)
    lake.replace_day(USER_PORTRAIT, portrait_rows, day)
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from portrait import erasure_io, evolve, io
from portrait.config import Config
from portrait.schemas import TableContract
from portrait.schemas.partitions import between_days, date_literal, on_day

log = logging.getLogger(__name__)


class Lakehouse:
    """Contract tables of one configured lakehouse, read and written through one Spark session."""

    def __init__(self, spark: SparkSession, cfg: Config) -> None:
        self.spark = spark
        self.cfg = cfg

    def with_config(self, cfg: Config) -> Lakehouse:
        """The same session over another configuration (a training target's, a test's copy)."""
        return Lakehouse(self.spark, cfg)

    # ---------------------------------------------------------------------------------------------- reading

    def ref(self, contract: TableContract) -> io.TableRef:
        """Where ``contract``'s table lives (its path or qualified name)."""
        return io.table_ref(self.cfg, contract)

    def exists(self, contract: TableContract) -> bool:
        return io.table_exists(self.spark, self.ref(contract))

    def read(self, contract: TableContract, version: int | None = None) -> DataFrame:
        """The table checked against its contract, with exactly its columns; ``version``: as of that Delta
        version. Raises :class:`portrait.io.TableNotFoundError` naming the table when it does not exist."""
        return io.read_table(self.spark, self.cfg, contract, version=version)

    def read_optional(self, contract: TableContract) -> DataFrame | None:
        """The table, or None when it does not exist (optional inputs such as items and reviews)."""
        return self.read(contract) if self.exists(contract) else None

    def read_day(self, contract: TableContract, day: dt.date, version: int | None = None) -> DataFrame:
        return self.read(contract, version).where(on_day(day))

    def read_days(self, contract: TableContract, days: Iterable[dt.date]) -> DataFrame:
        return self.read(contract).where(F.col("dt").isin(*[date_literal(d) for d in days]))

    def read_range(self, contract: TableContract, start: dt.date, end: dt.date) -> DataFrame:
        return self.read(contract).where(between_days(start, end))

    def read_stored(self, contract: TableContract, version: int | None = None) -> DataFrame:
        """The table exactly as stored, every stored column and no contract check (erasure works on tables
        an older version wrote)."""
        return io.read_stored(self.spark, self.ref(contract), version)

    def version(self, contract: TableContract) -> int | None:
        """The table's current Delta version, or None when it does not exist."""
        return io.table_version(self.spark, self.cfg, contract)

    def versions(self, contracts: Iterable[TableContract]) -> dict[str, int]:
        """Current versions of the tables of ``contracts`` that exist, by table name."""
        found = {c.name: self.version(c) for c in contracts}
        return {name: version for name, version in found.items() if version is not None}

    def rows_per_day(self, contract: TableContract, condition: Column | None = None) -> dict[dt.date, int]:
        """Rows per ``dt`` matching ``condition`` (days without rows are absent; no table: empty)."""
        if not self.exists(contract):
            return {}
        frame = self.read(contract)
        if condition is not None:
            frame = frame.where(condition)
        return {row["dt"]: row["count"] for row in frame.groupBy("dt").count().collect()}  # one row per day

    def day_rows(self, contract: TableContract, day: dt.date) -> int:
        """Rows of the ``dt == day`` partition."""
        return self.read_day(contract, day).count()

    def dates_present(self, contract: TableContract, days: Sequence[dt.date]) -> set[dt.date]:
        """The dates among ``days`` that have rows (no table: none)."""
        if not self.exists(contract) or not days:
            return set()
        rows = self.read_days(contract, days).select("dt").distinct().collect()  # at most len(days) rows
        return {row["dt"] for row in rows}

    def latest_date_before(self, contract: TableContract, day: dt.date) -> dt.date | None:
        """The newest ``dt`` before ``day``, or None (no earlier date, or no table yet)."""
        if not self.exists(contract):
            return None
        return self.read(contract).where(F.col("dt") < date_literal(day)).agg(F.max("dt")).first()[0]

    def rows(self, contract: TableContract, rows: Sequence[tuple]) -> DataFrame:
        """A frame of the contract's schema holding ``rows`` (small, driver-side: audit and check rows)."""
        return self.spark.createDataFrame(list(rows), contract.schema)

    # ---------------------------------------------------------------------------------------------- writing

    def ensure(self, contract: TableContract) -> io.TableRef:
        """Create the table with its contract when it does not exist."""
        return io.ensure_table(self.spark, self.cfg, contract)

    @contextmanager
    def _honouring_erasures(self, contract: TableContract, frame: DataFrame) -> Iterator[DataFrame]:
        """``frame`` without tombstoned persons for the write in the block; after it, the rows of persons
        erased meanwhile are deleted (:class:`portrait.erasure_io.TombstoneGuard`)."""
        if not erasure_io.guarded(contract):
            yield frame
            return
        guard = erasure_io.TombstoneGuard(self.spark, self.cfg, contract)
        yield guard.filter(frame)
        guard.recheck()

    def replace_day(self, contract: TableContract, frame: DataFrame, day: dt.date) -> int:
        """Atomically replace the rows of date ``day``; other dates stay (rows of another date are refused).
        Returns the rows the date holds now.

        The rows are counted while they are written (an observed metric) rather than read back, a query of its
        own after every write. The date is counted again only when the write was not the table's one commit
        meanwhile (a conflict retried, rows of persons erased during the write deleted after it) or when the
        metric does not arrive.
        """
        written = Observation()
        before = self.version(contract)
        with self._honouring_erasures(contract, frame) as rows:
            io.replace_partition(self.spark, self.cfg, contract,
                                 rows.observe(written, F.count(F.lit(1)).alias("rows")), day)
        # A new table's first commit creates it with its contract; the write is the next.
        alone = self.version(contract) == (1 if before is None else before + 1)
        counted = _observed_rows(written) if alone else None
        return self.day_rows(contract, day) if counted is None else counted

    def replace_range(self, contract: TableContract, frame: DataFrame, start: dt.date, end: dt.date) -> None:
        """Atomically replace the rows of ``[start, end]`` in one commit; other dates stay."""
        with self._honouring_erasures(contract, frame) as frame:
            io.replace_date_range(self.spark, self.cfg, contract, frame, start, end)

    def overwrite(self, contract: TableContract, frame: DataFrame) -> None:
        """Replace the whole table in one commit."""
        with self._honouring_erasures(contract, frame) as frame:
            io.overwrite_table(self.spark, self.cfg, contract, frame)

    def append(self, contract: TableContract, frame: DataFrame) -> None:
        with self._honouring_erasures(contract, frame) as frame:
            io.append_rows(self.spark, self.cfg, contract, frame)

    def merge_new(self, contract: TableContract, frame: DataFrame, days: list[dt.date] | None = None) -> int:
        """Insert the rows whose key is not in the table yet; returns how many (see :func:`io.merge_new_rows`)."""
        with self._honouring_erasures(contract, frame) as frame:
            return io.merge_new_rows(self.spark, self.cfg, contract, frame, days)

    def upsert(self, contract: TableContract, frame: DataFrame) -> None:
        """MERGE on the contract's key: matching rows replaced, new keys inserted."""
        with self._honouring_erasures(contract, frame) as frame:
            io.upsert_rows(self.spark, self.cfg, contract, frame)

    def delete_matching(self, contract: TableContract, source: DataFrame, condition: Column,
                        aliases: tuple[str, str]) -> int:
        """Delete the rows matching a row of ``source`` under ``condition`` (``aliases``: the table's and
        ``source``'s names in it); returns how many. No value of ``source`` reaches the table's log."""
        return erasure_io.delete_matching(self.spark, self.cfg, contract, source, condition, aliases)

    # ------------------------------------------------------------------------------------------ maintenance

    def file_count(self, contract: TableContract) -> int:
        return io.table_file_count(self.spark, self.cfg, contract)

    def add_missing_columns(self, contract: TableContract) -> list[str]:
        """Add the nullable contract columns an existing table lacks (written by an older portrait)."""
        return evolve.add_missing_columns(self.spark, self.cfg, contract)

    def conform(self, contract: TableContract) -> list[str]:
        """Bring a table written by an older portrait in line with its contract (:func:`evolve.conform`)."""
        return evolve.conform(self.spark, self.cfg, contract)

    def apply_properties(self, contract: TableContract) -> dict[str, str]:
        return io.apply_table_properties(self.spark, self.cfg, contract)

    def optimize(self, contract: TableContract, zorder_by: Sequence[str] = ()) -> tuple[int, int]:
        return io.optimize_table(self.spark, self.cfg, contract, zorder_by)

    def vacuum(self, contract: TableContract, retention_hours: int) -> bool:
        """VACUUM with ``retention_hours``; False when the table does not exist."""
        return erasure_io.vacuum_with_retention(self.spark, self.cfg, contract, retention_hours)

    def purge(self, contract: TableContract, retention_hours: int) -> bool:
        """Remove from files and log what deletes older than ``retention_hours`` left; False: no table."""
        return erasure_io.purge_table(self.spark, self.cfg, contract, retention_hours)


_METRIC_WAIT_SECONDS = 10.0
_metrics_missing = False  # set once a write's metric did not arrive: the session's writes are counted after


def _observed_rows(observation: Observation) -> int | None:
    """The rows an observed write counted, or None when the metric does not arrive. Spark sets it when the
    write's query finishes, before the write returns; a write path that drops observed metrics would leave
    ``Observation.get`` waiting for ever, so it is waited for in a thread, and once only."""
    global _metrics_missing
    if _metrics_missing:
        return None
    found: list[int] = []
    waiting = threading.Thread(target=lambda: found.append(int(observation.get["rows"])), daemon=True)
    waiting.start()
    waiting.join(_METRIC_WAIT_SECONDS)
    if not found:
        _metrics_missing = True
        log.warning("a Delta write reported no observed row count within %.0f s; this session's writes are "
                    "counted by reading their dates back", _METRIC_WAIT_SECONDS)
        return None
    return found[0]
