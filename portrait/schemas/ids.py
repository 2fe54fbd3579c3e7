"""What an id may hold: the one rule ``portrait ingest`` applies to every id column it loads and ``portrait forget``
to every id it is asked to erase, so that every person ingest stores can also be erased.

An id is at most :data:`MAX_ID_LENGTH` characters long and holds no control character (U+0000–U+001F, U+007F).
Both sides trim spaces (only U+0020, as Spark's ``trim`` does) before checking. The rule exists twice, for
Python values (:func:`id_problem`) and Spark columns (:func:`id_problem_column`), built from the same constants
and giving the same text.
"""

from __future__ import annotations

import re

from pyspark.sql import Column
from pyspark.sql import functions as F

MAX_ID_LENGTH = 256
# One character class read the same way by Python's re and Java's regex (Spark's rlike, regexp_extract).
CONTROL_CHARACTER = r"[\x00-\x1F\x7F]"
_CONTROL = re.compile(CONTROL_CHARACTER)


def clean_id(text: str) -> str:
    """``text`` with the spaces at either end removed, as ingest trims source values (Spark's ``trim``)."""
    return text.strip(" ")


def id_problem(value: str) -> str | None:
    """Why ``value`` cannot be an id (``"contains control characters (U+000A)"``, ``"is 300 characters long,
    more than 256"``), or None when it can."""
    control = _CONTROL.search(value)
    if control:
        return f"contains control characters (U+{ord(control.group()):04X})"
    if len(value) > MAX_ID_LENGTH:
        return f"is {len(value)} characters long, more than {MAX_ID_LENGTH}"
    return None


def id_problem_column(column: Column) -> Column:
    """:func:`id_problem` of a string column: the same text, null for a valid id (and for null)."""
    first_control = F.regexp_extract(column, f"({CONTROL_CHARACTER})", 1)
    return (
        F.when(column.rlike(CONTROL_CHARACTER),
               F.concat(F.lit("contains control characters ("),
                        F.format_string("U+%04X", F.ascii(first_control)), F.lit(")")))
        .when(F.length(column) > MAX_ID_LENGTH,
              F.concat(F.lit("is "), F.length(column).cast("string"),
                       F.lit(f" characters long, more than {MAX_ID_LENGTH}")))
    )
