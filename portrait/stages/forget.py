"""The forget task: erase persons from every table the project writes (``portrait forget``).

Which rows belong to a person is decided by the tables' contracts (:mod:`portrait.erasure`); this stage reads
the identity graph, marks models for retraining, deletes, vacuums and writes the ``erasure_requests`` row.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from portrait import erasure, privacy
from portrait.lakehouse import Lakehouse
from portrait.model import tracking
from portrait.schemas import (
    ALL_TABLES,
    CLICKSTREAM,
    ERASURE_REQUESTS,
    ERASURE_TOMBSTONES,
    IDENTITY_GRAPH,
    IDENTITY_MERGE_LOG,
    ORDERS,
    REVIEWS,
    USER_FEATURES,
    TableContract,
)
from portrait.stages import rollups
from portrait.stages.base import timed
from portrait.stages.train import target_config

log = logging.getLogger(__name__)

# erasure_requests.state
REMOVED, PURGED = "removed", "purged"


def _erased_ids(lake: Lakehouse, ids: list[str]) -> list[str]:
    """The requested ids and every id stitched to the same persons (bounded: ``identity.max_ids_per_person``
    ids each)."""
    erased = set(ids)
    if lake.exists(IDENTITY_GRAPH):
        erased |= {row["id"] for row in erasure.stitched_ids(lake.read_stored(IDENTITY_GRAPH), ids).collect()}
    return sorted(erased)


def erasable_tables(lake: Lakehouse) -> list[TableContract]:
    """Every configured table with a personal column; the identity tables last, so a re-run after a crash
    still finds the stitched ids to expand."""
    tables = [c for c in erasure.personal_tables(ALL_TABLES.values())
              if c.name not in (ERASURE_REQUESTS.name, ERASURE_TOMBSTONES.name) and hasattr(lake.cfg.tables, c.name)]
    tables.sort(key=lambda c: c.name in (IDENTITY_GRAPH.name, IDENTITY_MERGE_LOG.name))
    return tables


def _mark_models(lake: Lakehouse, erased_ids: list[str], request_id: str) -> list[str]:
    """Tag the registered model versions trained on feature dates where the persons had rows."""
    if not lake.exists(USER_FEATURES):
        return []
    dates = (lake.read_stored(USER_FEATURES).where(F.col("user_id").isin(*erased_ids))
             .select("dt").distinct().collect())  # at most one row per feature date
    feature_dates = {row["dt"].isoformat() for row in dates}
    if not feature_dates:
        return []
    names = [tracking.registered_name(target_config(lake.cfg, t)) for t in lake.cfg.model.targets]
    return tracking.mark_for_retraining(lake.cfg, names, feature_dates, request_id)


def _write_tombstones(lake: Lakehouse, erased_ids: list[str], keys: list[bytes], request_id: str,
                      created: dt.datetime) -> None:
    """Before the first delete: from now on every write drops these persons' rows (portrait.erasure_io)."""
    rows = [(privacy.person_key_of(i, key), privacy.key_fingerprint(key), request_id, created)
            for i in erased_ids for key in keys]
    lake.merge_new(ERASURE_TOMBSTONES, lake.rows(ERASURE_TOMBSTONES, rows))


def _rows_per_day(lake: Lakehouse, contract: TableContract, request: DataFrame) -> dict[dt.date, int]:
    if not lake.exists(contract):
        return {}
    rows = erasure.matching(lake.read(contract), contract, request)
    return {row["dt"]: row["count"] for row in rows.groupBy("dt").count().collect()}  # one row per day


def _delete(lake: Lakehouse, tables: list[TableContract], report: erasure.ErasureReport,
            request: DataFrame) -> None:
    with timed("forget: input rows per day"):
        removed = {c.name: _rows_per_day(lake, c, request) for c in (CLICKSTREAM, ORDERS, REVIEWS)}
    for contract in tables:
        if not lake.exists(contract):
            report.missing_tables.append(contract.name)
            continue
        with timed(f"forget: {contract.name}"):
            report.rows_deleted[contract.name] = lake.delete_matching(
                contract, request, erasure.person_match(contract), (erasure.TARGET, erasure.REQUEST))
    with timed("forget: rollup input counts"):
        rollups.record_erased_inputs(lake, removed)


def run(lake: Lakehouse, ids: list[str], vacuum: bool = True, now: dt.datetime | None = None) -> erasure.ErasureReport:
    """Erase persons from every table the project writes; returns the :class:`portrait.erasure.ErasureReport`.

    ``ids`` (user or device ids) are expanded with the identity graph to every id of the same persons. In
    order: (1) the pseudonymisation key is read (BI tables hold HMAC person keys; the audit row stores them)
    and every id gets a tombstone, which every later write honours (also a run in flight);
    (2) registered model versions trained on feature dates where the persons had rows are tagged for
    retraining in MLflow — an unreachable server stops here, before anything is deleted; (3) every table
    whose contract has a personal column gets one Delta MERGE deleting the persons' rows (against a frame of
    the ids, so no id enters the table's log); (4) VACUUM with ``privacy.vacuum_retention_hours`` when
    ``vacuum``; (5) one ``erasure_requests`` row, state ``purged`` when a zero retention has already deleted
    the files, else ``removed`` until ``portrait purge`` (:mod:`portrait.stages.purge`) runs after the retention.
    Each step is idempotent: after a crash, re-running the same request finishes it.
    """
    started = now or dt.datetime.now(dt.timezone.utc)
    ids = erasure.normalise_ids(ids)
    keys = privacy.pseudonym_keys()
    request_id = f"forget-{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    with timed("forget: stitched ids"):
        erased_ids = _erased_ids(lake, ids)
        person_keys = sorted({privacy.person_key_of(i, key) for i in erased_ids for key in keys})
    tables = erasable_tables(lake)
    with timed("forget: tombstones"):
        _write_tombstones(lake, erased_ids, keys, request_id, started)
    with timed("forget: models to retrain"):
        marked = _mark_models(lake, erased_ids, request_id)
    report = erasure.ErasureReport(
        request_id=request_id, ids_requested=len(ids), ids_erased=len(erased_ids),
        person_keys=sorted({privacy.person_key_of(i, keys[0]) for i in ids}),
        key_fingerprint=privacy.key_fingerprint(keys[0]), models_marked=marked,
        vacuum_retention_hours=lake.cfg.privacy.vacuum_retention_hours,
    )
    _delete(lake, tables, report, erasure.request_frame(lake.spark, erased_ids, person_keys))
    if vacuum:
        for contract in tables:
            with timed(f"forget: vacuum {contract.name}"):
                if lake.vacuum(contract, lake.cfg.privacy.vacuum_retention_hours):
                    report.vacuumed.append(contract.name)
    finished = dt.datetime.now(dt.timezone.utc)
    # With a zero retention VACUUM has just deleted the files of the erased rows; otherwise `portrait purge`
    # deletes them once they are older than the retention.
    purged = bool(report.vacuumed) and report.vacuum_retention_hours == 0
    audit_row = (request_id, report.person_keys, report.key_fingerprint, report.ids_requested, report.ids_erased,
                 dict(report.rows_deleted), report.models_marked, bool(report.vacuumed),
                 report.vacuum_retention_hours, started, finished, PURGED if purged else REMOVED,
                 finished if purged else None)
    lake.add_missing_columns(ERASURE_REQUESTS)
    lake.append(ERASURE_REQUESTS, lake.rows(ERASURE_REQUESTS, [audit_row]))
    report.purged = purged
    log.info("forget %s: %d row(s) deleted in %d table(s)", request_id, report.total_rows, len(report.rows_deleted))
    return report
