"""The table contract type, the column helper and the names of person columns."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import types as T


def _col(name: str, data_type: T.DataType, comment: str, nullable: bool = True) -> T.StructField:
    return T.StructField(name, data_type, nullable, metadata={"comment": comment})


# Column names that hold a raw person id wherever they appear (see TableContract.person_columns).
PERSON_ID_COLUMNS: tuple[str, ...] = ("user_id", "anonymous_id", "person_id")
PERSON_KEY_COLUMN = "person_key"


@dataclass(frozen=True)
class TableContract:
    """A Delta table's layout: schema with column comments, partition columns and key."""

    name: str
    description: str
    schema: T.StructType
    partition_by: tuple[str, ...] = ()
    key: tuple[str, ...] = ()
    optional: bool = False
    # Delta CHECK constraints: (name, SQL condition every row must satisfy); part of the table's first commit.
    checks: tuple[tuple[str, str], ...] = ()
    # Delta table properties (name, value) set when the table is created; `portrait maintain` adds missing ones.
    properties: tuple[tuple[str, str], ...] = ()
    # Personal data (docs/SECURITY.md). Columns holding a raw person id (user, device or stitched person id):
    # None derives them from the column names in PERSON_ID_COLUMNS, so a new table with a `user_id` column is
    # covered by `portrait forget` without anything to declare; set a tuple where the names differ.
    person_columns: tuple[str, ...] | None = None
    # Free-text columns that may contain a raw id anywhere in the text (e.g. a quarantined source row).
    person_text_columns: tuple[str, ...] = ()
    # Read by BI tools: must carry no raw id, only `person_key` (HMAC, portrait.privacy); a test scans them.
    bi_facing: bool = False

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.schema.fields]

    @property
    def id_columns(self) -> tuple[str, ...]:
        """Columns holding a raw person id, erased by ``portrait forget``."""
        if self.person_columns is not None:
            return self.person_columns
        return tuple(c for c in self.columns if c in PERSON_ID_COLUMNS)

    @property
    def identifier_columns(self) -> tuple[str, ...]:
        """String columns holding an id of anything (``id`` or ``*_id``: person, device, session, item, order…);
        ingest quarantines a row whose value in one of them breaks the id rule (:mod:`portrait.schemas.ids`)."""
        return tuple(f.name for f in self.schema.fields
                     if isinstance(f.dataType, T.StringType) and (f.name == "id" or f.name.endswith("_id")))

    @property
    def person_key_columns(self) -> tuple[str, ...]:
        """Columns holding the pseudonymised person key (HMAC of a person id)."""
        return tuple(c for c in self.columns if c == PERSON_KEY_COLUMN)

    def comment(self, column: str) -> str:
        return self.schema[column].metadata.get("comment", "")
