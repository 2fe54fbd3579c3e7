"""Operations on what the runs left: replay a past run exactly, and maintain the tables' files."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from portrait.audit import SUCCEEDED
from portrait.features.user_features import build_user_features
from portrait.features.windows import features_from_rollups
from portrait.ingest.identity import stitch_person_id
from portrait.lakehouse import Lakehouse
from portrait.model import tracking
from portrait.schemas import (
    ALL_TABLES,
    CLICKSTREAM,
    CUSTOMER_VALUE,
    IDENTITY_GRAPH,
    INPUT_TABLES,
    ITEMS,
    JOB_RUNS,
    ORDERS,
    REVIEWS,
    USER_DAILY_ACTIVITY,
    USER_FEATURES,
    USER_PORTRAIT,
    USERS,
)
from portrait.stages import score
from portrait.stages.base import timed

log = logging.getLogger(__name__)

# The jobs whose runs published a portrait and recorded what it was computed from: the score task (the
# bundle's and the one ``portrait daily`` runs) and daily runs recorded as a whole.
REPLAYABLE_JOBS = ("score", "daily")


class ReplayError(LookupError):
    """A job run cannot be replayed (unknown run id, not a succeeded scoring or daily run)."""


def _replayable_run(lake: Lakehouse, job_run_id: str):
    run = lake.read(JOB_RUNS).where(
        (F.col("run_id") == job_run_id) & F.col("job").isin(*REPLAYABLE_JOBS) & (F.col("status") == SUCCEEDED)
    ).first()
    if run is None or run["output_versions"].get(USER_PORTRAIT.name) is None:
        raise ReplayError(f"no succeeded daily run with run_id {job_run_id!r} in job_runs (the daily job as a "
                          "whole or its score task)")
    return run


def _recomputed_features(lake: Lakehouse, day: dt.date, versions: dict[str, int],
                         outputs: dict[str, int]) -> DataFrame:
    """The features of ``day`` from the rollups at the version the run recorded (the same rows through the
    same code give the same sums bit for bit); runs recorded before rollups existed: from the inputs."""
    if outputs.get(USER_DAILY_ACTIVITY.name) is not None:
        return lake.read(USER_DAILY_ACTIVITY, version=outputs[USER_DAILY_ACTIVITY.name]).transform(
            features_from_rollups(day, lake.cfg.features))
    clickstream, orders, reviews, identity = (score.input_frame(lake, c, versions)
                                              for c in (CLICKSTREAM, ORDERS, REVIEWS, IDENTITY_GRAPH))
    if identity is not None and lake.cfg.identity.enabled:
        clickstream, orders = (f.transform(stitch_person_id(identity)) for f in (clickstream, orders))
        reviews = None if reviews is None else reviews.transform(stitch_person_id(identity))
    return build_user_features(day, lake.cfg.features, clickstream=clickstream, orders=orders,
                               items=score.input_frame(lake, ITEMS, versions), reviews=reviews)


def _recorded_scorers(lake: Lakehouse, run, day: dt.date) -> tuple[score.Scorer | None, score.Scorer | None,
                                                                    dict[str, score.Scorer]]:
    """The models the run scored with (None: no purchase model scored it), and those of the further purchase
    horizons; the registry version and the other models' runs are read from the published rows (aliases
    move, so the registry today cannot say which version scored that day)."""
    tracking.use_store(lake.cfg)  # the recorded runs are in the configured store
    lineage = lake.read_day(USER_PORTRAIT, day, version=run["output_versions"][USER_PORTRAIT.name]).select(
        "model_version", "churn_model_run_id", "horizon_model_run_ids").first()
    scorer = None
    if run["mlflow_run_id"] is not None:
        model_uri = f"runs:/{run['mlflow_run_id']}/{tracking.MODEL_ARTIFACT}"
        scorer = score.Scorer(tracking.load_model(model_uri), run["mlflow_run_id"],
                              None if lineage is None else lineage["model_version"],
                              tracking.load_explanation(model_uri))
    churn = None
    if lineage is not None and lineage["churn_model_run_id"] is not None:
        churn = score.load_scorer(f"runs:/{lineage['churn_model_run_id']}/{tracking.MODEL_ARTIFACT}")
    horizon_runs = {} if lineage is None else (lineage["horizon_model_run_ids"] or {})
    horizons = {target: score.load_scorer(f"runs:/{run_id}/{tracking.MODEL_ARTIFACT}")
                for target, run_id in sorted(horizon_runs.items())}
    return scorer, churn, horizons


@contextmanager
def replay_portrait(lake: Lakehouse, job_run_id: str) -> Iterator[DataFrame]:
    """Recompute the portrait of a past scoring (or daily) run from the table versions and model it recorded;
    a context manager whose frame is valid inside the ``with`` block (the scored rows are cached until then).

    The recomputed features must equal the ``user_features`` the run published (checked, else
    :class:`ReplayError`); the portrait is then scored from those features with the recorded model run,
    exactly as the run did. ``person_key`` is recomputed with the current pseudonymisation key: after a key
    rotation a replay of an earlier date differs in that column only.
    """
    run = _replayable_run(lake, job_run_id)
    day, versions, outputs = run["run_date"], dict(run["input_versions"]), dict(run["output_versions"])
    recomputed = _recomputed_features(lake, day, versions, outputs)
    published = lake.read_day(USER_FEATURES, day, version=outputs[USER_FEATURES.name])
    if not (recomputed.exceptAll(published).isEmpty() and published.exceptAll(recomputed).isEmpty()):
        raise ReplayError(f"features of {day} recomputed from the recorded input versions differ from the "
                          "published ones: an input table was changed in place or the feature code changed")
    scorer, churn, horizons = _recorded_scorers(lake, run, day)
    inputs = {c.name for c in (*INPUT_TABLES, IDENTITY_GRAPH)}
    recorded_inputs = {name: version for name, version in versions.items() if name in inputs}
    # The value rows as the run wrote them (runs recorded before customer_value existed have none).
    value_version = outputs.get(CUSTOMER_VALUE.name)
    value_rows = None if value_version is None else lake.read_day(CUSTOMER_VALUE, day, version=value_version)
    portrait, scored = score.portrait_frame(lake.cfg, day, published, scorer, churn,
                                            score.input_frame(lake, USERS, versions), recorded_inputs, value_rows,
                                            horizons)
    try:
        yield portrait
    finally:
        scored.unpersist()


def replay_matches(lake: Lakehouse, job_run_id: str) -> tuple[int, int]:
    """Replay a run and compare with its published portrait: (rows that differ either way, rows)."""
    run = _replayable_run(lake, job_run_id)
    published = lake.read_day(USER_PORTRAIT, run["run_date"], version=run["output_versions"][USER_PORTRAIT.name])
    with replay_portrait(lake, job_run_id) as replayed:
        differing = replayed.exceptAll(published).count() + published.exceptAll(replayed).count()
    return differing, published.count()


@dataclass
class MaintenanceResult:
    """What ``portrait maintain`` did to one table."""

    table: str
    files_before: int
    files_after: int
    zorder_by: list[str]
    properties_set: dict[str, str]

    def render(self) -> str:
        order = f"Z-ordered by {', '.join(self.zorder_by)}" if self.zorder_by else "compacted"
        props = f"; set {', '.join(self.properties_set)}" if self.properties_set else ""
        return f"{self.table:<20} {order}: {self.files_before:,} → {self.files_after:,} files{props}"


def maintain(lake: Lakehouse, tables: list[str] | None = None) -> list[MaintenanceResult]:
    """OPTIMIZE (Z-ordered per ``maintenance.zorder_by``) and VACUUM (``privacy.vacuum_retention_hours``).

    ``tables`` are contract names; by default every contract table that exists. Missing table properties
    (owner, Change Data Feed) are added first. Data is unchanged; only files are rewritten and old ones removed.
    """
    cfg = lake.cfg
    unknown = sorted((set(tables or []) | set(cfg.maintenance.zorder_by)) - set(ALL_TABLES))
    if unknown:
        raise ValueError(f"unknown table(s) {unknown} (in --table or maintenance.zorder_by); known: "
                         f"{', '.join(ALL_TABLES)}")
    if tables is None:
        tables = [name for name, contract in ALL_TABLES.items() if lake.exists(contract)]
    results = []
    for name in tables:
        contract, zorder_by = ALL_TABLES[name], list(cfg.maintenance.zorder_by.get(name, []))
        with timed(f"maintain {name}"):
            before = lake.file_count(contract)
            properties_set = lake.apply_properties(contract)
            lake.optimize(contract, zorder_by)
            lake.vacuum(contract, cfg.privacy.vacuum_retention_hours)
            results.append(MaintenanceResult(name, before, lake.file_count(contract), zorder_by, properties_set))
    return results
