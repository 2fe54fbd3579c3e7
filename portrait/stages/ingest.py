"""The ingest task: the files landed for a date into the input tables, or synthetic data for a new shop.

With a source (``--format`` and ``--path``, as the bundle's ingest task passes the day's landing folder) the
files are validated, deduplicated and merged into ``clickstream`` and ``orders``, bad rows quarantined and
the identity graph rebuilt (:mod:`portrait.ingest.load`). Without one the input tables are used as they
are; when they do not exist yet, synthetic data up to the date is generated if allowed (the embedded
default of ``make run``), else the run stops naming the missing table.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from portrait import audit
from portrait.generate import generate_tables
from portrait.ingest.identity import IdentityBuild
from portrait.ingest.load import IngestReport, ingest_files, run_identity_build
from portrait.lakehouse import Lakehouse
from portrait.schemas import CLICKSTREAM, INPUT_TABLES, ORDERS
from portrait.stages.base import input_versions, timed

log = logging.getLogger(__name__)

JOB = "ingest"


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
    tables = generate_tables(users=users or settings.users, days=days or settings.days, end_date=end_date,
                             seed=settings.seed if seed is None else seed, time_zone=lake.cfg.time_zone)
    rows = {}
    for contract in INPUT_TABLES:
        arrow_table = tables[contract.name]
        lake.overwrite(contract, lake.spark.createDataFrame(arrow_table))
        rows[contract.name] = arrow_table.num_rows
    return rows


def load(lake: Lakehouse, source: Source, now: dt.datetime | None = None) -> IngestReport:
    """Load ``source`` into clickstream/orders, quarantine bad rows, rebuild identity; returns the report."""
    with timed(f"ingest {source.format}"):
        return ingest_files(lake.spark, lake.cfg, source.format, source.path, now=now)


def rebuild_identity(lake: Lakehouse, now: dt.datetime | None = None) -> IdentityBuild:
    """Rebuild the identity graph from the whole clickstream; returns the build's counts."""
    with timed("identity"):
        return run_identity_build(lake.spark, lake.cfg, now)


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
