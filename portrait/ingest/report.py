"""What an ingest run found, as pure parts: the report, the flagged rows and the quarantine threshold.

:mod:`portrait.stages.ingest` reads the files, calls these and commits; the order of its work makes a
killed run safe to re-run.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from portrait.config import Config
from portrait.ingest import formats, validate
from portrait.ingest.identity import IdentityBuild

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


def flagged_rows(staged: DataFrame, layout: formats.SourceLayout, cfg: Config, now: dt.datetime) -> DataFrame:
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


def count_rules(flagged: DataFrame, report: IngestReport, cfg: Config, path: str) -> None:
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


