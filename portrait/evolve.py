"""Bringing a stored table in line with a contract that changed since the table was written.

Contracts only ever grow or relax (portrait/schemas/): new nullable columns, NOT NULL dropped, CHECK conditions
widened. A table written by an older portrait is changed in place, by metadata commits only; a contract change
that existing rows might violate (a new NOT NULL column) is refused with a message saying to migrate by hand.
"""

from __future__ import annotations

import logging

from pyspark.sql import SparkSession

from portrait.config import Config
from portrait.io import (
    CONSTRAINT_PROPERTY_PREFIX,
    SchemaMismatchError,
    delta_table,
    read_stored,
    sql_name,
    table_exists,
    table_ref,
)
from portrait.schemas import TableContract

log = logging.getLogger(__name__)


def add_missing_columns(spark: SparkSession, cfg: Config, contract: TableContract) -> list[str]:
    """Add to an existing table the contract columns it lacks (a table written by an older portrait, before
    the contract gained them); returns their names. Only nullable columns can be added: older rows hold null."""
    ref = table_ref(cfg, contract)
    if not table_exists(spark, ref):
        return []
    stored = set(read_stored(spark, ref).columns)
    missing = [f for f in contract.schema.fields if f.name not in stored]
    required = [f.name for f in missing if not f.nullable]
    if required:
        raise SchemaMismatchError(f"table '{contract.name}' at {ref} lacks the NOT NULL column(s) {required}, "
                                  "which cannot be added to existing rows; migrate it by hand")
    if missing:
        # Names, types and comments come from the contract (code), not from input: plain literals are safe.
        columns = ", ".join(f"`{f.name}` {f.dataType.simpleString()} COMMENT '{_quoted(contract.comment(f.name))}'"
                            for f in missing)
        spark.sql(f"ALTER TABLE {sql_name(ref)} ADD COLUMNS ({columns})")
    return [f.name for f in missing]


def _quoted(text: str) -> str:
    """``text`` inside a single-quoted SQL string literal."""
    return text.replace("\\", "\\\\").replace("'", "\\'")


def conform(spark: SparkSession, cfg: Config, contract: TableContract) -> list[str]:
    """Both: the missing columns added, then what the contract relaxed; returns every change made."""
    return [*add_missing_columns(spark, cfg, contract), *relax_to_contract(spark, cfg, contract)]


def relax_to_contract(spark: SparkSession, cfg: Config, contract: TableContract) -> list[str]:
    """Bring an existing table in line with a contract that now allows more than the table does: NOT NULL
    dropped from columns the contract made nullable, CHECK constraints whose condition changed replaced (the
    new condition is checked against the stored rows). Returns what changed; nothing for a table that is
    missing or already in line, so a run calls this every time at the cost of reading the table's metadata."""
    ref = table_ref(cfg, contract)
    if not table_exists(spark, ref):
        return []
    table = delta_table(spark, ref)
    stored = {f.name: f for f in table.toDF().schema.fields}
    changed = []
    for field in contract.schema.fields:
        if field.nullable and field.name in stored and not stored[field.name].nullable:
            spark.sql(f"ALTER TABLE {sql_name(ref)} ALTER COLUMN `{field.name}` DROP NOT NULL")
            changed.append(f"{field.name} nullable")
    properties = table.detail().first()["properties"] or {}
    for name, condition in contract.checks:
        current = properties.get(f"{CONSTRAINT_PROPERTY_PREFIX}{name}")
        if current is not None and " ".join(current.split()) != " ".join(condition.split()):
            # Names and conditions come from code: plain SQL is safe.
            spark.sql(f"ALTER TABLE {sql_name(ref)} DROP CONSTRAINT {name}")
            spark.sql(f"ALTER TABLE {sql_name(ref)} ADD CONSTRAINT {name} CHECK ({condition})")
            changed.append(f"constraint {name}")
    if changed:
        log.info("table '%s' brought in line with its contract: %s", contract.name, ", ".join(changed))
    return changed
