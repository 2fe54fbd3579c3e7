"""The BI outputs of a portrait date: ``portrait_latest``, ``segment_daily``, audience files, the report."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from pyspark.sql import functions as F

from portrait import files, io
from portrait.config import Config
from portrait.lakehouse import Lakehouse
from portrait.model import tracking
from portrait.privacy import pseudonym_key
from portrait.publish.bi import (
    audience,
    missing_tags,
    newest_per_user,
    pseudonymised,
    segment_daily,
    with_feature_values,
)
from portrait.publish.report import (
    REPORT_SEGMENT_KINDS,
    ReportData,
    render_report,
    score_histogram,
    tag_change_counts,
    top_categories,
)
from portrait.schemas import PORTRAIT_CHANGES, PORTRAIT_LATEST, SEGMENT_DAILY, USER_FEATURES, USER_PORTRAIT

log = logging.getLogger(__name__)


class AudienceError(ValueError):
    """An audience cannot be exported: no portrait of the date, an unknown tag, or too few persons."""


def _segment_noise_seed(cfg: Config, day: dt.date) -> int:
    # A different seed per date: the same noise on every date would cancel out in day-over-day differences.
    return cfg.bi.noise_seed + day.toordinal()


def _write_latest(lake: Lakehouse, day: dt.date, today, key: str) -> None:
    """MERGE the persons of ``day`` into ``portrait_latest`` when ``day`` is newer than every row in it (the
    daily run moving forward); otherwise (no table yet, a re-run or a backfill of an earlier date) rebuild it
    from the whole ``user_portrait``, which is right whatever was published before."""
    newest = lake.read(PORTRAIT_LATEST).agg(F.max("dt")).first()[0] if lake.exists(PORTRAIT_LATEST) else None
    if newest is not None and day > newest:
        lake.upsert(PORTRAIT_LATEST, today.transform(pseudonymised(key)))
        return
    log.info("portrait_latest: rebuilt from all of user_portrait (newest date in it: %s, run date %s)", newest, day)
    history = lake.read(USER_PORTRAIT).transform(newest_per_user)
    lake.overwrite(PORTRAIT_LATEST, history.transform(pseudonymised(key)))


def write_tables(lake: Lakehouse, day: dt.date) -> dict[str, int]:
    """Write the BI tables for portrait date ``day``: ``portrait_latest`` and the ``segment_daily`` partition.

    Needs ``PORTRAIT_PSEUDONYM_KEY``. Returns the rows written per table.
    """
    key = pseudonym_key()
    today = lake.read_day(USER_PORTRAIT, day)
    if today.isEmpty():
        raise io.TableNotFoundError(f"user_portrait has no rows for {day}: run `portrait daily --date {day}` "
                                    "(or `portrait score`) before the BI tables")
    for contract in (PORTRAIT_LATEST, SEGMENT_DAILY):  # tables written by an older portrait
        lake.conform(contract)
    _write_latest(lake, day, today, key)
    feature_days = [row[0] for row in today.select("feature_dt").distinct().collect()]  # one date in practice
    segments = today.transform(with_feature_values(lake.read_days(USER_FEATURES, feature_days))).transform(
        segment_daily(lake.cfg.privacy.min_group_size, lake.cfg.privacy.noise_epsilon,
                      _segment_noise_seed(lake.cfg, day)))
    segment_rows = lake.replace_day(SEGMENT_DAILY, segments, day)
    return {PORTRAIT_LATEST.name: lake.read(PORTRAIT_LATEST).count(), SEGMENT_DAILY.name: segment_rows}


def export_audience(lake: Lakehouse, day: dt.date, tags: list[str], min_score: float, output: str,
                    file_format: str = "csv") -> int:
    """Export the persons of ``day`` that carry every tag of ``tags`` and score at least ``min_score``.

    One file at ``output`` (csv or parquet) with ``person_key, score, decile, tags``, best score first; never a
    raw id. Raises :class:`AudienceError`, writing nothing, when the date has no portrait, a tag is on nobody
    that day (a typo or a tag not live), or the audience has fewer than ``privacy.min_group_size`` persons.
    Returns the number of persons exported.
    """
    selection = audience(tags, min_score)  # checks the arguments before Spark does any work
    key, minimum = pseudonym_key(), lake.cfg.privacy.min_group_size
    portrait = lake.read_day(USER_PORTRAIT, day)
    if portrait.isEmpty():
        raise AudienceError(f"user_portrait has no rows for {day}; choose a published date (--date)")
    unknown = missing_tags(tags, portrait)
    if unknown:
        live = sorted(t.code for t in lake.cfg.tags if t.status == "live")
        raise AudienceError(f"tag(s) {', '.join(unknown)} are on no person on {day}. Live tags of the registry: "
                            f"{', '.join(live) or 'none'}")
    persons_frame = portrait.transform(pseudonymised(key)).transform(selection).cache()
    try:
        persons = persons_frame.count()
        if persons < minimum:
            raise AudienceError(f"the audience has {persons} person(s), fewer than privacy.min_group_size="
                                f"{minimum}: not exported. Loosen --min-score or the tags.")
        files.write_single_file(persons_frame, output, file_format)
    finally:
        persons_frame.unpersist()
    return persons


def reports_dir(cfg: Config) -> Path:
    """Where the daily HTML reports go: ``bi.reports_path``, else ``<lakehouse.path>/reports``."""
    if cfg.bi.reports_path is not None:
        return Path(cfg.bi.reports_path)
    if cfg.lakehouse.path is None:
        raise ValueError("set bi.reports_path: the lakehouse is a metastore schema, so there is no folder "
                         "beside the tables to write the daily report to")
    return Path(cfg.lakehouse.path) / "reports"


def _segments(lake: Lakehouse, day: dt.date) -> dict[str, list[tuple[str, int, float | None]]]:
    segments: dict[str, list[tuple[str, int, float | None]]] = {kind: [] for kind in REPORT_SEGMENT_KINDS}
    rows = (lake.read_day(SEGMENT_DAILY, day).where(F.col("segment_kind").isin(*REPORT_SEGMENT_KINDS))
            .orderBy(F.col("users").desc(), "segment").collect())  # a few rows per segment kind
    for row in rows:
        average = row["avg_propensity"]  # null when no model scored the date
        segments[row["segment_kind"]].append((row["segment"], int(row["users"]),
                                              None if average is None else float(average)))
    return segments


def write_report(lake: Lakehouse, day: dt.date) -> Path:
    """Write ``<reports>/portrait_<day>.html`` (segment sizes, score distribution, top interests, tag changes)
    and log it to MLflow. Reads ``segment_daily`` of ``day``, so :func:`write_tables` runs first. Returns
    the report's path."""
    minimum = lake.cfg.privacy.min_group_size
    portrait = lake.read_day(USER_PORTRAIT, day).cache()  # read by four small aggregations
    try:
        headline = portrait.agg(F.count(F.lit(1)).alias("persons"), F.avg("purchase_propensity").alias("avg"),
                                F.max("model_name").alias("model"), F.max("model_run_id").alias("run")).first()
        changes = None
        if lake.exists(PORTRAIT_CHANGES):
            changes = tag_change_counts(lake.read_day(PORTRAIT_CHANGES, day), minimum)
        data = ReportData(
            day=day, persons=int(headline["persons"]),
            avg_propensity=None if headline["avg"] is None else float(headline["avg"]),
            model=(f"{headline['model']} (MLflow run {headline['run']})" if headline["run"] is not None
                   else "none published: no model has learnt enough yet (see the training log)"),
            segments=_segments(lake, day),
            score_histogram=score_histogram(portrait), top_categories=top_categories(portrait, minimum),
            tag_changes=changes, min_group_size=minimum,
        )
    finally:
        portrait.unpersist()
    path = files.write_text_file(reports_dir(lake.cfg) / f"portrait_{day.isoformat()}.html", render_report(data))
    metrics = {"persons": float(data.persons)}
    if data.avg_propensity is not None:
        metrics["avg_propensity"] = data.avg_propensity
    tracking.log_report(lake.cfg, day, path, metrics)
    log.info("daily report written to %s", path)
    return path
