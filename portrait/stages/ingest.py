"""The ingest task: the files landed for a date into the input tables, or synthetic data for a new shop.

With a source (``--format`` and ``--path``, as the bundle's ingest task passes the day's landing folder) the
files are loaded in an order that makes a killed run safe to re-run:

1. read the files, check every file's encoding and header, validate every row (nothing is written);
2. count read / valid / quarantined rows per rule; above ``ingest.max_quarantine_share`` raise
   :class:`QuarantineThresholdError` — nothing is committed;
3. insert-only MERGE of the new clickstream rows (key ``event_id``, restricted to the batch's ``dt``
   partitions), then of the derived order lines, then of the quarantined rows, each one atomic Delta commit;
4. append the run's ``ingest_runs`` row last; then rebuild the identity graph.

Every write inserts only keys that are not there yet, so re-running after a crash adds what was missing and
nothing twice. Without a source the input tables are used as they are; when they do not exist yet, synthetic
data up to the date is generated if allowed (the embedded default of ``make run``), else the run stops
naming the missing table.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import time
import uuid
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from portrait import audit, files
from portrait.generate import generate_tables
from portrait.generate.history import purchase_history
from portrait.ingest import csv_records, formats, validate
from portrait.ingest.identity import IdentityBuild, build_identity
from portrait.ingest.report import (
    IngestError,
    IngestReport,
    QuarantineThresholdError,
    count_rules,
    flagged_rows,
)
from portrait.lakehouse import Lakehouse
from portrait.schemas import (
    CLICKSTREAM,
    IDENTITY_GRAPH,
    IDENTITY_MERGE_LOG,
    INGEST_RUNS,
    INPUT_TABLES,
    ORDERS,
    QUARANTINE,
)
from portrait.stages.base import input_versions, timed

log = logging.getLogger(__name__)

JOB = "ingest"
UTC = dt.timezone.utc
__all__ = ["IngestError", "IngestReport", "QuarantineThresholdError", "Source", "generate", "load", "run"]


@dataclass(frozen=True)
class Source:
    """Files to load: a format (taobao, retailrocket, rees46, generic) and a file, glob or folder."""

    format: str
    path: str


@dataclass
class IngestOutcome:
    """What an ingest task did: loaded files (``report``), generated data (``generated``), or neither."""

    report: IngestReport | None = None
    generated: dict[str, int] | None = None


def inputs_exist(lake: Lakehouse) -> bool:
    return all(lake.exists(contract) for contract in (CLICKSTREAM, ORDERS))


def generate(lake: Lakehouse, end_date: dt.date, users: int | None = None, days: int | None = None,
             seed: int | None = None) -> dict[str, int]:
    """Write synthetic input tables covering the days up to ``end_date``; returns rows per table."""
    settings = lake.cfg.generate
    make = generate_tables if settings.kind == "shop" else purchase_history
    tables = make(users or settings.users, days or settings.days, end_date,
                  settings.seed if seed is None else seed, time_zone=lake.cfg.time_zone)
    rows = {}
    for contract in INPUT_TABLES:
        if contract.name in tables:  # the buyers history has clickstream (empty) and orders only
            arrow_table = tables[contract.name]
            lake.overwrite(contract, lake.spark.createDataFrame(arrow_table))
            rows[contract.name] = arrow_table.num_rows
    return rows


def _check_session_zone(lake: Lakehouse) -> None:
    zone = lake.spark.conf.get("spark.sql.session.timeZone")
    if zone != lake.cfg.time_zone:
        raise IngestError(f"the Spark session time zone is {zone}, the configured time_zone is "
                          f"{lake.cfg.time_zone}; event dates (dt) would be wrong. Get the session with "
                          "portrait.spark.get_spark(cfg).")


def _check_encoding(per_file: list) -> None:
    bad = [r["source_file"] for r in per_file if r["bad_encoding_lines"]]
    if bad:
        raise files.SourceFileError(
            f"{bad[0]}: {sum(r['bad_encoding_lines'] for r in per_file)} line(s) are not valid UTF-8 "
            f"({len(bad)} file(s) affected). Convert the file(s) to UTF-8, e.g. iconv -f GBK -t UTF-8."
        )


def _csv_records(lake: Lakehouse, layout: formats.SourceLayout, paths: list[str], count: int) -> DataFrame:
    return files.read_csv_records(lake.spark, paths, csv_records.record_schema(count), formats.csv_options(layout))


def _text_rows(lake: Lakehouse, layout: formats.SourceLayout, path: str,
               report: IngestReport) -> tuple[DataFrame, formats.ResolvedColumns, formats.SourceLayout]:
    """CSV or JSON-lines files → staged rows. A CSV file with a line that opens a quoted field going on past the
    line is read as whole records (portrait.ingest.csv_records); every other file line by line."""
    spark = lake.spark
    if layout.header and layout.name == "generic":
        # header lines are recognised by their first column name, which the mapping may not use
        first = files.read_csv_header(spark, path, layout.delimiter)[:1]
        layout = dataclasses.replace(layout, columns=tuple(dict.fromkeys([*first, *layout.columns])))
    lines = files.read_text_files(spark, path)
    per_file = files.collect_from_files(lines.transform(formats.file_summary(layout)), path)  # one row per file
    _check_encoding(per_file)
    headers = {r["source_file"]: r["headers"] for r in per_file}
    spanning = sorted(r["source_file"] for r in per_file if r["open_quote_lines"])
    if spanning:  # their header records are looked for among records: a line inside a quoted field is none
        # read as many columns as a header line has (a record of another width is malformed, and slower to read)
        width = next((len(formats.split_header(layout, h[0])) for f in spanning if (h := headers[f])),
                     len(layout.columns))
        summary = _csv_records(lake, layout, spanning, width).transform(csv_records.record_summary(layout, width))
        headers.update((r["source_file"], r["headers"]) for r in files.collect_from_files(summary, path))
    resolved = formats.resolve_columns(layout, list(headers.items()))
    report.files = len(per_file)
    parts = []
    if not spanning or len(spanning) < len(per_file):  # (no file at all: an empty frame, "no data rows")
        by_line = lines.where(~F.col("source_file").isin(*spanning)) if spanning else lines
        parts.append(by_line.transform(formats.stage_text(layout, resolved)))
    if spanning:
        records = _csv_records(lake, layout, spanning, len(resolved.columns))
        parts.append(records.transform(csv_records.stage_records(layout, resolved)))
    return functools.reduce(DataFrame.unionByName, parts), resolved, layout


def _staged_rows(lake: Lakehouse, layout: formats.SourceLayout, path: str,
                 report: IngestReport) -> tuple[DataFrame, formats.SourceLayout]:
    """Read and stage the files, failing early on bad encodings and layouts (no table is touched)."""
    if layout.file_format == "parquet":
        records = files.read_parquet_files(lake.spark, path)
        stage, resolved, layout = formats.stage_parquet(layout, records.schema)
        report.files = records.select("source_file").distinct().count()
        staged = records.transform(stage)
    else:
        staged, resolved, layout = _text_rows(lake, layout, path, report)
    report.ignored_columns = list(resolved.ignored)
    report.missing_optional_columns = list(resolved.missing_optional)
    return staged, layout


def _commit(lake: Lakehouse, report: IngestReport, flagged: DataFrame, events: DataFrame, now: dt.datetime,
            started: float) -> None:
    """Insert the new clickstream rows, order lines and quarantined rows, then the run's ingest_runs row."""
    dates = sorted(r["dt"] for r in events.select("dt").distinct().collect())  # bounded by the date range
    valid_rows = report.rows_read - report.rows_quarantined
    report.rows_accepted = lake.merge_new(CLICKSTREAM, events, dates)
    report.rows_duplicate = valid_rows - report.rows_accepted
    log.info("clickstream: %d new events, %d duplicate", report.rows_accepted, report.rows_duplicate)
    report.order_lines_accepted = lake.merge_new(ORDERS, events.transform(formats.orders_from_purchases()), dates)
    if report.rows_quarantined:
        lake.merge_new(QUARANTINE, flagged.transform(validate.quarantine_rows(report.format, report.run_id, now)))
    if dates:
        report.min_dt, report.max_dt = dates[0], dates[-1]
    report.finished_at = now + dt.timedelta(seconds=time.monotonic() - started)
    lake.append(INGEST_RUNS, lake.spark.createDataFrame([report.as_row()], INGEST_RUNS.schema))
    report.committed = True


def load(lake: Lakehouse, source: Source, now: dt.datetime | None = None, run_id: str | None = None) -> IngestReport:
    """Load ``source`` into clickstream and orders, quarantine bad rows, rebuild identity; returns the report.

    ``now`` is the run time (aware; default now): events after ``now + ingest.max_future_hours`` are
    quarantined. ``run_id`` goes on the ``ingest_runs`` and quarantine rows (default a new one). Raises
    :class:`QuarantineThresholdError` (nothing written) when too many rows are bad,
    :class:`portrait.files.SourceFileError` or :class:`IngestError` for unreadable files or layouts.
    """
    now = (now or dt.datetime.now(UTC)).astimezone(UTC)
    layout = formats.layout_for(source.format, lake.cfg.ingest.generic)
    _check_session_zone(lake)
    report = IngestReport(run_id=run_id or f"{source.format}-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}",
                          format=source.format, path=str(source.path), started_at=now)
    started = time.monotonic()
    with timed(f"ingest {source.format}"):
        staged, layout = _staged_rows(lake, layout, str(source.path), report)
        flagged = flagged_rows(staged, layout, lake.cfg, now)
        events = (flagged.where(F.col("quarantine_rule").isNull()).transform(formats.clickstream_rows(layout))
                  .persist(StorageLevel.MEMORY_AND_DISK))
        try:
            count_rules(flagged, report, lake.cfg, source.path)
            _commit(lake, report, flagged, events, now, started)
        finally:
            events.unpersist()
            flagged.unpersist()
    if lake.cfg.identity.enabled:
        report.identity = rebuild_identity(lake, now)
    return report


def rebuild_identity(lake: Lakehouse, now: dt.datetime | None = None) -> IdentityBuild:
    """Rebuild ``identity_graph`` from the whole clickstream; log decisions not logged before."""
    now = (now or dt.datetime.now(UTC)).astimezone(UTC)
    with timed("identity"):
        build = build_identity(lake.read(CLICKSTREAM), lake.cfg.identity,
                               f"identity-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}", now)
        try:
            lake.overwrite(IDENTITY_GRAPH, build.graph)
            if build.log_rows:
                lake.merge_new(IDENTITY_MERGE_LOG, build.log)
            else:
                lake.ensure(IDENTITY_MERGE_LOG)
        finally:
            build.release()
    return build


def _ensure_inputs(lake: Lakehouse, day: dt.date, generate_if_missing: bool) -> dict[str, int] | None:
    if inputs_exist(lake):
        return None
    if not generate_if_missing:
        lake.read(CLICKSTREAM)  # raises TableNotFoundError naming the table
        lake.read(ORDERS)
    log.info("input tables missing: generating synthetic data up to %s", day)
    with timed("generate"):
        return generate(lake, end_date=day)


def run(lake: Lakehouse, day: dt.date, source: Source | None = None, generate_if_missing: bool = False,
        git_commit: str | None = None, now: dt.datetime | None = None) -> IngestOutcome:
    """The ingest task for ``day``: load ``source`` when given, else make sure the input tables exist
    (generating synthetic data when ``generate_if_missing``); recorded in ``job_runs`` as job ``ingest``."""
    with audit.recorded(lake, JOB, day, git_commit) as run:
        outcome = IngestOutcome()
        if source is not None:
            outcome.report = load(lake, source, now)
            run.rows_in, run.rows_out = outcome.report.rows_read, outcome.report.rows_accepted
        else:
            outcome.generated = _ensure_inputs(lake, day, generate_if_missing)
        run.output_versions = input_versions(lake)
    return outcome
