"""Every table's contract: columns, types, nullability, partitioning and column meanings.

This package is the single source for table layouts. ``docs/DATA.md`` documents the same contracts for
people, and a test keeps the two in step. Reads pass these schemas explicitly; writes select exactly
these columns, so a table never drifts by accident.

By table family: ``contract`` (the :class:`TableContract` type), ``inputs`` (clickstream, orders, items,
users, reviews), ``features`` (daily rollups and ``user_features``), ``published`` (``user_portrait``, its
checks and changes, the BI tables), ``ingest`` (quarantine, ingest runs, identity graph) and ``operations``
(job runs, monitoring, erasure requests); ``ids`` holds the rule every id value follows. Import contracts
from ``portrait.schemas``.
"""

from __future__ import annotations

from portrait.schemas.contract import PERSON_ID_COLUMNS, PERSON_KEY_COLUMN, TableContract, _col
from portrait.schemas.features import (
    COUNTED_EVENTS,
    CUSTOMER_VALUE,
    DAYPARTS,
    PURCHASE_HISTORY,
    ROLLUP_INPUTS,
    USER_DAILY_ACTIVITY,
    USER_FEATURES,
    VALUE_PREDICTIONS,
    WINDOWS_DAYS,
)
from portrait.schemas.ids import CONTROL_CHARACTER, MAX_ID_LENGTH, clean_id, id_problem, id_problem_column
from portrait.schemas.ingest import IDENTITY_GRAPH, IDENTITY_MERGE_LOG, INGEST_RUNS, INGEST_TABLES, QUARANTINE
from portrait.schemas.inputs import (
    CLICKSTREAM,
    EVENT_TYPES,
    INPUT_TABLES,
    ITEMS,
    ORDER_STATUSES,
    ORDERS,
    REVIEWS,
    USERS,
)
from portrait.schemas.operations import (
    ERASURE_REQUESTS,
    ERASURE_TOMBSTONES,
    JOB_RUNS,
    MONITORING,
    OPERATIONS_TABLES,
    PRIVACY_TABLES,
)
from portrait.schemas.published import (
    BI_TABLES,
    PORTRAIT_CHANGES,
    PORTRAIT_LATEST,
    PUBLISH_CHECKS,
    PUBLISH_TABLES,
    SEGMENT_DAILY,
    SEGMENT_KINDS,
    USER_PORTRAIT,
)

OUTPUT_TABLES: tuple[TableContract, ...] = (USER_DAILY_ACTIVITY, ROLLUP_INPUTS, USER_FEATURES, CUSTOMER_VALUE,
                                             USER_PORTRAIT)
ALL_TABLES: dict[str, TableContract] = {
    t.name: t for t in INPUT_TABLES + OUTPUT_TABLES + INGEST_TABLES + OPERATIONS_TABLES + PRIVACY_TABLES + PUBLISH_TABLES
    + BI_TABLES
}

__all__ = [
    "ALL_TABLES", "BI_TABLES", "CLICKSTREAM", "CONTROL_CHARACTER", "COUNTED_EVENTS", "CUSTOMER_VALUE", "DAYPARTS", "ERASURE_REQUESTS",
    "ERASURE_TOMBSTONES", "EVENT_TYPES", "IDENTITY_GRAPH", "IDENTITY_MERGE_LOG", "INGEST_RUNS", "INGEST_TABLES", "INPUT_TABLES", "ITEMS",
    "JOB_RUNS", "MAX_ID_LENGTH", "MONITORING", "OPERATIONS_TABLES", "ORDERS", "ORDER_STATUSES", "OUTPUT_TABLES",
    "PERSON_ID_COLUMNS", "PERSON_KEY_COLUMN", "PORTRAIT_CHANGES", "PORTRAIT_LATEST", "PRIVACY_TABLES",
    "PUBLISH_CHECKS", "PUBLISH_TABLES", "QUARANTINE", "REVIEWS", "ROLLUP_INPUTS", "SEGMENT_DAILY", "SEGMENT_KINDS",
    "USERS", "USER_DAILY_ACTIVITY", "USER_FEATURES", "USER_PORTRAIT", "PURCHASE_HISTORY", "VALUE_PREDICTIONS", "WINDOWS_DAYS", "TableContract", "_col",
    "clean_id", "id_problem", "id_problem_column",
]
