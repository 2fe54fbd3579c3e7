"""The ingest stage: files → validated rows → clickstream, orders, quarantine and ingest_runs.

Order of work, so that a killed run can simply be re-run:

1. read the files (through :mod:`portrait.io`), check every file's encoding and header, validate every row;
2. count read / valid / quarantined rows per rule **before writing anything**; when the quarantined share
   exceeds ``ingest.max_quarantine_share`` raise :class:`QuarantineThresholdError` — nothing is committed;
3. insert-only MERGE of the new clickstream rows (key ``event_id``, restricted to the batch's ``dt``
   partitions), then of the derived order lines (key ``order_id, line_number``), then of the quarantined
   rows (key ``quarantine_id``, a content hash), each one atomic Delta commit;
4. append the run's row to ``ingest_runs`` last; then rebuild the identity graph.

Every write inserts only keys that are not there yet, so re-running after a crash at any point adds what
was missing and nothing twice; re-ingesting a file adds nothing (its rows count as duplicates).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
import uuid
from dataclasses import dataclass, field

from pyspark import StorageLevel
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from portrait import io
from portrait.config import Config
from portrait.ingest import formats, validate
from portrait.ingest.identity import IdentityBuild, build_identity
from portrait.schemas import CLICKSTREAM, IDENTITY_GRAPH, IDENTITY_MERGE_LOG, INGEST_RUNS, ORDERS, QUARANTINE

log = logging.getLogger(__name__)
UTC = dt.timezone.utc


class IngestError(ValueError):
    """An ingest that cannot go ahead; the message names the file, column or setting and what to do."""


class QuarantineThresholdError(IngestError):
    """Too many rows broke the rules: the run committed nothing. ``report`` holds the counts."""

    def __init__(self, message: str, report: IngestReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class IngestReport:
    """What an ingest run read, accepted, found duplicate and quarantined (also its ``ingest_runs`` row)."""

    run_id: str
    format: str
    path: str
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    files: int = 0
    rows_read: int = 0
    rows_accepted: int = 0
    rows_duplicate: int = 0
    rows_quarantined: int = 0
    quarantined_by_rule: dict[str, int] = field(default_factory=dict)
    order_lines_accepted: int = 0
    min_dt: dt.date | None = None
    max_dt: dt.date | None = None
    ignored_columns: list[str] = field(default_factory=list)
    missing_optional_columns: list[str] = field(default_factory=list)
    identity: IdentityBuild | None = None
    committed: bool = False

    @property
    def quarantined_share(self) -> float:
        return self.rows_quarantined / self.rows_read if self.rows_read else 0.0

    def render(self) -> str:
        state = "committed" if self.committed else "NOT committed"
        lines = [
            f"ingest run {self.run_id} ({self.format}, {self.files} file(s) at {self.path}): {state}",
            f"  rows read        {self.rows_read:>12,}",
            f"  accepted (new)   {self.rows_accepted:>12,}",
            f"  duplicate        {self.rows_duplicate:>12,}",
            f"  quarantined      {self.rows_quarantined:>12,}  ({self.quarantined_share:.2%})",
        ]
        lines += [f"    {rule:<22} {count:>10,}" for rule, count in sorted(self.quarantined_by_rule.items())]
        lines.append(f"  order lines added {self.order_lines_accepted:>11,}")
        if self.min_dt:
            lines.append(f"  event dates {self.min_dt} .. {self.max_dt} (the next features run rolls these days up "
                         f"again; feature dates from {self.min_dt} already written keep what they saw)")
        if self.ignored_columns:
            lines.append(f"  ignored source columns: {', '.join(self.ignored_columns)}")
        if self.missing_optional_columns:
            lines.append(f"  optional columns missing (loaded as null): {', '.join(self.missing_optional_columns)}")
        if self.identity:
            lines.append("  " + self.identity.render())
        return "\n".join(lines)

    def as_row(self) -> dict:
        return {
            "run_id": self.run_id, "format": self.format, "path": self.path, "files": self.files,
            "started_at": self.started_at, "finished_at": self.finished_at, "rows_read": self.rows_read,
            "rows_accepted": self.rows_accepted, "rows_duplicate": self.rows_duplicate,
            "rows_quarantined": self.rows_quarantined, "quarantined_by_rule": self.quarantined_by_rule,
            "order_lines_accepted": self.order_lines_accepted, "min_dt": self.min_dt, "max_dt": self.max_dt,
            "ignored_columns": self.ignored_columns, "missing_optional_columns": self.missing_optional_columns,
        }


def _check_session_zone(spark: SparkSession, cfg: Config) -> None:
    zone = spark.conf.get("spark.sql.session.timeZone")
    if zone != cfg.time_zone:
        raise IngestError(f"the Spark session time zone is {zone}, the configured time_zone is {cfg.time_zone}; "
                          "event dates (dt) would be wrong. Get the session with portrait.spark.get_spark(cfg).")


def _staged_rows(spark: SparkSession, layout: formats.SourceLayout, path: str,
                 report: IngestReport) -> tuple[DataFrame, formats.SourceLayout]:
    """Read and stage the files, failing early on bad encodings and layouts (no table is touched)."""
    if layout.file_format == "parquet":
        records = io.read_parquet_files(spark, path)
        stage, resolved, layout = formats.stage_parquet(layout, records.schema)
        report.files = records.select("source_file").distinct().count()
        staged = records.transform(stage)
    else:
        if layout.header and layout.name == "generic":
            # header lines are recognised by their first column name, which the mapping may not use
            first = io.read_csv_header(spark, path, layout.delimiter)[:1]
            layout = dataclasses.replace(layout, columns=tuple(dict.fromkeys([*first, *layout.columns])))
        lines = io.read_text_files(spark, path)
        try:
            per_file = lines.transform(formats.file_summary(layout)).collect()  # one row per file
        except PySparkException as exc:
            raise io.SourceFileError(f"cannot read the files at {path}: {str(exc).splitlines()[0]}") from None
        bad = [r["source_file"] for r in per_file if r["bad_encoding_lines"]]
        if bad:
            raise io.SourceFileError(
                f"{bad[0]}: {sum(r['bad_encoding_lines'] for r in per_file)} line(s) are not valid UTF-8 "
                f"({len(bad)} file(s) affected). Convert the file(s) to UTF-8, e.g. iconv -f GBK -t UTF-8."
            )
        resolved = formats.resolve_columns(layout, [(r["source_file"], r["headers"]) for r in per_file])
        report.files = len(per_file)
        staged = lines.transform(formats.stage_text(layout, resolved))
    report.ignored_columns = list(resolved.ignored)
    report.missing_optional_columns = list(resolved.missing_optional)
    return staged, layout


def _flagged_rows(staged: DataFrame, layout: formats.SourceLayout, cfg: Config, now: dt.datetime) -> DataFrame:
    """Parsed rows with ``quarantine_rule`` and ``quarantine_detail`` set on the bad ones (persisted)."""
    earliest = dt.datetime.combine(cfg.ingest.min_event_date, dt.time(), tzinfo=UTC)
    latest = now + dt.timedelta(hours=cfg.ingest.max_future_hours)
    checks = validate.rules(layout, earliest, latest)
    return (
        staged.transform(formats.parse(layout))
        .transform(validate.count_order_users() if layout.source_of("order_id") else lambda f: f.withColumn(
            "order_users", F.lit(None).cast("bigint")))
        .transform(validate.flag_invalid(checks))
        .persist(StorageLevel.MEMORY_AND_DISK)
    )


def _count_rules(flagged: DataFrame, report: IngestReport, cfg: Config, path: str) -> None:
    """Fill the report's row counts per rule; raise when there is nothing to ingest or too much is bad."""
    by_rule = {r["quarantine_rule"]: r["count"] for r in flagged.groupBy("quarantine_rule").count().collect()}
    report.rows_read = sum(by_rule.values())
    report.rows_quarantined = report.rows_read - by_rule.pop(None, 0)
    report.quarantined_by_rule = dict(sorted(by_rule.items()))
    if report.rows_read == 0:
        raise IngestError(f"no data rows in {path} ({report.files} file(s)); nothing to ingest")
    limit = cfg.ingest.max_quarantine_share
    if report.quarantined_share > limit:
        raise QuarantineThresholdError(
            f"{report.rows_quarantined:,} of {report.rows_read:,} rows ({report.quarantined_share:.1%}) broke "
            f"validation rules, above ingest.max_quarantine_share = {limit:.1%}; nothing was written. "
            f"Rules broken: {report.quarantined_by_rule}. Fix the source or raise the threshold.", report)


def _commit(spark: SparkSession, cfg: Config, report: IngestReport, flagged: DataFrame, events: DataFrame,
            now: dt.datetime, started: float) -> None:
    """Insert the new clickstream rows, order lines and quarantined rows, then the run's ingest_runs row."""
    dates = sorted(r["dt"] for r in events.select("dt").distinct().collect())  # bounded by the date range
    valid_rows = report.rows_read - report.rows_quarantined

    report.rows_accepted = io.merge_new_rows(spark, cfg, CLICKSTREAM, events, dates)
    report.rows_duplicate = valid_rows - report.rows_accepted
    log.info("clickstream: %d new events, %d duplicate", report.rows_accepted, report.rows_duplicate)
    orders = events.transform(formats.orders_from_purchases())
    report.order_lines_accepted = io.merge_new_rows(spark, cfg, ORDERS, orders, dates)
    if report.rows_quarantined:
        quarantined = flagged.transform(validate.quarantine_rows(report.format, report.run_id, now))
        io.merge_new_rows(spark, cfg, QUARANTINE, quarantined)
    if dates:
        report.min_dt, report.max_dt = dates[0], dates[-1]
    report.finished_at = now + dt.timedelta(seconds=time.monotonic() - started)
    io.append_rows(spark, cfg, INGEST_RUNS, spark.createDataFrame([report.as_row()], INGEST_RUNS.schema))
    report.committed = True


def ingest_files(spark: SparkSession, cfg: Config, fmt: str, path: str, now: dt.datetime | None = None,
                 run_id: str | None = None) -> IngestReport:
    """Load the file(s) at ``path`` in format ``fmt`` into clickstream and orders; see the module docstring.

    Parameters
    ----------
    fmt:
        ``taobao``, ``retailrocket``, ``rees46`` or ``generic`` (laid out as ``ingest.generic`` says).
    path:
        A file, a glob or a folder of files (local path or any URI Spark reads).
    now:
        The run time (aware); events after ``now + ingest.max_future_hours`` are quarantined. Default: now.
    run_id:
        Id stored on the run's ``ingest_runs`` row and quarantine rows; default a new one.

    Returns the run's :class:`IngestReport`. Raises :class:`QuarantineThresholdError` (nothing written)
    when too many rows are bad, :class:`portrait.io.SourceFileError` or :class:`IngestError` for
    unreadable files or layouts.
    """
    now = (now or dt.datetime.now(UTC)).astimezone(UTC)
    layout = formats.layout_for(fmt, cfg.ingest.generic)
    _check_session_zone(spark, cfg)
    report = IngestReport(run_id=run_id or f"{fmt}-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}", format=fmt,
                          path=str(path), started_at=now)
    started = time.monotonic()
    staged, layout = _staged_rows(spark, layout, str(path), report)
    flagged = _flagged_rows(staged, layout, cfg, now)
    events = (
        flagged.where(F.col("quarantine_rule").isNull())
        .transform(formats.clickstream_rows(layout))
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    try:
        _count_rules(flagged, report, cfg, path)
        _commit(spark, cfg, report, flagged, events, now, started)
    finally:
        events.unpersist()
        flagged.unpersist()
    if cfg.identity.enabled:
        report.identity = run_identity_build(spark, cfg, now)
    return report


def run_identity_build(spark: SparkSession, cfg: Config, now: dt.datetime | None = None) -> IdentityBuild:
    """Rebuild ``identity_graph`` from the whole clickstream; log decisions not logged before."""
    now = (now or dt.datetime.now(UTC)).astimezone(UTC)
    build_id = f"identity-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    clickstream = io.read_table(spark, cfg, CLICKSTREAM)
    build = build_identity(clickstream, cfg.identity, build_id, now)
    try:
        io.overwrite_table(spark, cfg, IDENTITY_GRAPH, build.graph)
        if build.log_rows:
            io.merge_new_rows(spark, cfg, IDENTITY_MERGE_LOG, build.log)
        else:
            io.ensure_table(spark, cfg, IDENTITY_MERGE_LOG)
    finally:
        build.release()
    return build
