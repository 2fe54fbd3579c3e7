"""The forget task: erase persons from every table the project writes (``portrait forget``).

Which rows belong to a person is decided by the tables' contracts (:mod:`portrait.erasure`); this stage reads
the identity graph, marks models for retraining, deletes, vacuums and writes the ``erasure_requests`` row.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from pyspark.sql import functions as F

from portrait import erasure, privacy
from portrait.lakehouse import Lakehouse
from portrait.model import tracking
from portrait.schemas import (
    ALL_TABLES,
    CLICKSTREAM,
    ERASURE_REQUESTS,
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


def _erased_ids(lake: Lakehouse, ids: list[str]) -> list[str]:
    """The requested ids and every id stitched to the same persons (bounded: ``identity.max_ids_per_person``
    ids each)."""
    erased = set(ids)
    if lake.exists(IDENTITY_GRAPH):
        erased |= {row["id"] for row in erasure.stitched_ids(lake.read_stored(IDENTITY_GRAPH), ids).collect()}
    return sorted(erased)


def _tables(lake: Lakehouse) -> list[TableContract]:
    """Every configured table with a personal column; the identity tables last, so a re-run after a crash
    still finds the stitched ids to expand."""
    tables = [c for c in erasure.personal_tables(ALL_TABLES.values())
              if c.name != ERASURE_REQUESTS.name and hasattr(lake.cfg.tables, c.name)]
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


def _delete(lake: Lakehouse, tables: list[TableContract], report: erasure.ErasureReport, erased_ids: list[str],
            person_keys: list[str]) -> None:
    with timed("forget: input rows per day"):
        removed = {c.name: lake.rows_per_day(c, erasure.erasure_condition(c, erased_ids, person_keys))
                   for c in (CLICKSTREAM, ORDERS, REVIEWS)}
    for contract in tables:
        if not lake.exists(contract):
            report.missing_tables.append(contract.name)
            continue
        with timed(f"forget: {contract.name}"):
            report.rows_deleted[contract.name] = lake.delete(
                contract, erasure.erasure_condition(contract, erased_ids, person_keys))
    with timed("forget: rollup input counts"):
        rollups.record_erased_inputs(lake, removed)


def run(lake: Lakehouse, ids: list[str], vacuum: bool = True, now: dt.datetime | None = None) -> erasure.ErasureReport:
    """Erase persons from every table the project writes; returns the :class:`portrait.erasure.ErasureReport`.

    ``ids`` (user or device ids) are expanded with the identity graph to every id of the same persons. In
    order: (1) the pseudonymisation key is read (BI tables hold HMAC person keys; the audit row stores them);
    (2) registered model versions trained on feature dates where the persons had rows are tagged for
    retraining in MLflow — an unreachable server stops here, before anything is deleted; (3) every table
    whose contract has a personal column gets one Delta DELETE of the persons' rows; (4) VACUUM with
    ``privacy.vacuum_retention_hours`` when ``vacuum``; (5) one ``erasure_requests`` row.
    Each step is idempotent: after a crash, re-running the same request finishes it.
    """
    started = now or dt.datetime.now(dt.timezone.utc)
    ids = erasure.normalise_ids(ids)
    keys = privacy.pseudonym_keys()
    request_id = f"forget-{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    with timed("forget: stitched ids"):
        erased_ids = _erased_ids(lake, ids)
        person_keys = sorted({privacy.person_key_of(i, key) for i in erased_ids for key in keys})
    tables = _tables(lake)
    with timed("forget: models to retrain"):
        marked = _mark_models(lake, erased_ids, request_id)
    report = erasure.ErasureReport(
        request_id=request_id, ids_requested=len(ids), ids_erased=len(erased_ids),
        person_keys=sorted({privacy.person_key_of(i, keys[0]) for i in ids}),
        key_fingerprint=privacy.key_fingerprint(keys[0]), models_marked=marked,
        vacuum_retention_hours=lake.cfg.privacy.vacuum_retention_hours,
    )
    _delete(lake, tables, report, erased_ids, person_keys)
    if vacuum:
        for contract in tables:
            with timed(f"forget: vacuum {contract.name}"):
                if lake.vacuum(contract, lake.cfg.privacy.vacuum_retention_hours):
                    report.vacuumed.append(contract.name)
    audit_row = (request_id, report.person_keys, report.key_fingerprint, report.ids_requested, report.ids_erased,
                 dict(report.rows_deleted), report.models_marked, bool(report.vacuumed),
                 report.vacuum_retention_hours, started, dt.datetime.now(dt.timezone.utc))
    lake.append(ERASURE_REQUESTS, lake.rows(ERASURE_REQUESTS, [audit_row]))
    log.info("forget %s: %d row(s) deleted in %d table(s)", request_id, report.total_rows, len(report.rows_deleted))
    return report
