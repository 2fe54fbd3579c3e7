"""Erasure ("right to be forgotten"): which rows of which table belong to a person, as Spark conditions.

Pure parts only; :func:`portrait.stages.forget.run` reads, deletes, vacuums and
audits. A table is covered by its contract alone (:mod:`portrait.schemas`):

* ``TableContract.id_columns`` — columns holding a raw person id (``user_id``, ``anonymous_id``,
  ``person_id`` wherever they appear, or the explicit ``person_columns``, e.g. ``id`` of the identity graph);
* ``TableContract.person_key_columns`` — ``person_key``, the HMAC pseudonym of BI tables, matched with the
  person keys of every erased id under the current (and, during a rotation, the previous) key;
* ``TableContract.person_text_columns`` — free text that may mention an id, e.g. the quarantine's
  ``raw_row``. A row is deleted when the id appears there as a whole token (the text split at every
  character that is not a letter, digit, ``_``, ``.``, ``@`` or ``-``); an id containing other characters is
  matched as a plain substring. Both may delete a quarantined row that mentions the same string in another
  field (e.g. an item id equal to the user id): quarantine rows are diagnostics, and deleting one too many
  is the safe side of an erasure.

The ids never become part of a condition either: they travel as the one row of a *request* frame
(:func:`request_frame`: arrays of ids, person keys and text needles) that the table is joined with
(:func:`matching`, :func:`person_match`). A Delta DELETE with literals would write them into the table's log
(``commitInfo.operationParameters.predicate``), which outlives the rows; a MERGE against the request records
only ``array_contains(request.ids, t.user_id)``. Compared as values, an id such as ``x' OR '1'='1`` matches
only a row holding exactly that string.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from portrait.schemas import MAX_ID_LENGTH, TableContract, clean_id, id_problem

# Java regex: the characters that end a token in a free-text column (everything but letters, digits, _ . @ -).
TOKEN_SEPARATOR = r"[^\p{L}\p{N}_.@-]+"
_TOKEN = re.compile(r"^[\w.@-]+$")


class ErasureInputError(ValueError):
    """An erasure request names no id, or an id that cannot be one (empty, control characters, too long)."""


def normalise_ids(values: Iterable[str], source: str = "--user") -> list[str]:
    """The requested ids, trimmed of spaces as ingest trims them and de-duplicated in order; blank values are
    skipped.

    Raises :class:`ErasureInputError` naming ``source`` and the position of a value that breaks the id rule
    ingest also applies (:func:`portrait.schemas.id_problem`: control characters, longer than
    ``MAX_ID_LENGTH``), and when no id is left at all.
    """
    ids: list[str] = []
    for position, raw in enumerate(values, start=1):
        value = clean_id(raw)
        if not value:
            continue
        problem = id_problem(value)
        if problem:
            raise ErasureInputError(f"{source}, value {position}: the id {problem}; give one id per value (per "
                                    f"line in a file), at most {MAX_ID_LENGTH} characters with no control characters")
        if value not in ids:
            ids.append(value)
    if not ids:
        raise ErasureInputError(f"{source}: no id to erase; give --user ID (repeatable) or --file with one id "
                                "per line")
    return ids


def ids_from_lines(text: str, source: str) -> list[str]:
    """Ids of a request file: one per line; blank lines and lines starting with ``#`` are skipped."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    return normalise_ids(lines, source)


def stitched_ids(identity_graph: DataFrame, ids: list[str]) -> DataFrame:
    """Every id of the persons of ``ids``: the ids themselves, their person ids, and every user or anonymous
    id the identity graph links to those persons. One column ``id``, distinct.

    The graph names a person by the smallest user id of its component, so erasing any id of a stitched
    person erases all of them (see docs/SECURITY.md: the identity graph's guards keep shared devices from
    linking different customers).
    """
    requested = F.col("id").isin(*ids) | F.col("person_id").isin(*ids)
    persons = identity_graph.where(requested).select("person_id").distinct()
    linked = identity_graph.join(persons, on="person_id", how="left_semi").select("id")
    given = identity_graph.sparkSession.createDataFrame([(i,) for i in ids], "id string")
    return given.unionByName(persons.select(F.col("person_id").alias("id"))).unionByName(linked).distinct()


TARGET, REQUEST = "t", "erased"  # the aliases a match condition refers to
REQUEST_SCHEMA = "ids array<string>, keys array<string>, tokens array<string>, substrings array<string>"


def request_frame(spark: SparkSession, ids: list[str], person_keys: list[str]) -> DataFrame:
    """The one-row frame a table is matched against: the raw ids, their person keys, and the needles for free
    text (ids that are whole tokens, and the others, matched as substrings)."""
    tokens = [i for i in ids if _TOKEN.match(i)]
    substrings = [i for i in ids if not _TOKEN.match(i)]
    return spark.createDataFrame([(list(ids), list(person_keys), tokens, substrings)], REQUEST_SCHEMA)


def person_match(contract: TableContract) -> Column | None:
    """True where a row of ``contract`` (alias :data:`TARGET`) belongs to a person of the request (alias
    :data:`REQUEST`); None when the table holds no personal column. Refers to no id: see the module docstring."""
    request = F.col(f"{REQUEST}.ids")
    parts = [F.array_contains(request, F.col(f"{TARGET}.`{c}`")) for c in contract.id_columns]
    parts += [F.array_contains(F.col(f"{REQUEST}.keys"), F.col(f"{TARGET}.`{c}`"))
              for c in contract.person_key_columns]
    parts += [_text_mentions(F.col(f"{TARGET}.`{c}`")) for c in contract.person_text_columns]
    if not parts:
        return None
    condition = parts[0]
    for part in parts[1:]:
        condition = condition | part
    return F.coalesce(condition, F.lit(False))


def _text_mentions(text: Column) -> Column:
    """True where ``text`` holds a requested id as a whole token, or one that is not a token as a substring."""
    words = F.split(text, TOKEN_SEPARATOR)
    as_token = F.coalesce(F.arrays_overlap(words, F.col(f"{REQUEST}.tokens")), F.lit(False))
    as_substring = F.exists(F.col(f"{REQUEST}.substrings"), lambda needle: F.instr(text, needle) > 0)
    return as_token | F.coalesce(as_substring, F.lit(False))


def matching(frame: DataFrame, contract: TableContract, request: DataFrame) -> DataFrame:
    """The rows of ``frame`` (a table of ``contract``) that belong to the persons of ``request``."""
    condition = person_match(contract)
    if condition is None:
        return frame.limit(0)
    return frame.alias(TARGET).join(F.broadcast(request.alias(REQUEST)), condition, "left_semi")


def personal_tables(contracts: Iterable[TableContract]) -> list[TableContract]:
    """The contracts with at least one personal column (raw id, person key or free text), by name."""
    return sorted((c for c in contracts if c.id_columns or c.person_key_columns or c.person_text_columns),
                  key=lambda c: c.name)


@dataclass
class ErasureReport:
    """What one ``portrait forget`` removed where; rendered without any raw id."""

    request_id: str
    ids_requested: int
    ids_erased: int
    person_keys: list[str]
    key_fingerprint: str
    rows_deleted: dict[str, int] = field(default_factory=dict)
    models_marked: list[str] = field(default_factory=list)
    vacuumed: list[str] = field(default_factory=list)
    vacuum_retention_hours: int = 0
    missing_tables: list[str] = field(default_factory=list)
    purged: bool = False  # the files of the erased rows are deleted too (VACUUM with a zero retention)

    @property
    def total_rows(self) -> int:
        return sum(self.rows_deleted.values())

    def render(self) -> str:
        lines = [
            f"erasure request {self.request_id}: {self.ids_requested} id(s) requested, {self.ids_erased} erased "
            f"with stitched ids; {self.total_rows:,} row(s) deleted",
            "  rows deleted per table:",
        ]
        lines += [f"    {name:<22} {count:>10,}" for name, count in sorted(self.rows_deleted.items())]
        if self.missing_tables:
            lines.append("  not present (nothing to erase): " + ", ".join(sorted(self.missing_tables)))
        lines.append("  models marked for retraining: " + (", ".join(self.models_marked) or "none"))
        if self.purged:
            lines.append(f"  VACUUM (retention 0 h) on {len(self.vacuumed)} table(s): the files of the deleted rows "
                         "are deleted too; time travel to earlier versions has ended (state: purged)")
        elif self.vacuumed:
            lines.append(f"  VACUUM (retention {self.vacuum_retention_hours} h) on {len(self.vacuumed)} table(s): the "
                         "files of the deleted rows stay until they are older than the retention; `portrait purge` "
                         "then deletes them and records it (state: removed)")
        else:
            lines.append("  VACUUM not run: deleted rows stay readable by time travel until `portrait purge` runs "
                         "after the retention (state: removed)")
        lines.append(f"  audit: erasure_requests row {self.request_id} (person keys, key {self.key_fingerprint})")
        return "\n".join(lines)
