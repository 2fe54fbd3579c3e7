"""CSV files whose records run over several lines (RFC 4180: a quoted field may hold line breaks).

Most CSV files hold one record per line; they are read as lines (:func:`portrait.ingest.formats.stage_text`),
which Spark splits into many tasks, and a quarantined row keeps its line exactly. A line that opens a quoted
field going on past its end holds an odd number of ``"`` (:func:`portrait.ingest.formats.opens_quoted_line_break`);
a file with such a line is read whole by Spark's CSV reader (``multiLine``, one task per file) with the same
parsing options (:func:`portrait.ingest.formats.csv_options`), into positional string columns ``_c0``, ``_c1``, …
and :data:`~portrait.ingest.formats.CORRUPT_COLUMN`.

The reader gives the text of a record only when it is malformed (another number of fields); the raw row of any
other record is its fields written back as CSV (the same text, except quotes around fields that need none).
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from portrait.ingest.formats import CORRUPT_COLUMN, ResolvedColumns, SourceLayout, csv_options, staged_columns

Transformation = Callable[[DataFrame], DataFrame]


def record_schema(count: int) -> str:
    """The reader's schema: ``count`` positional string columns and the corrupt-record column."""
    return ", ".join([*(f"_c{i} STRING" for i in range(count)), f"{CORRUPT_COLUMN} STRING"])


def _fields(count: int) -> list[Column]:
    return [F.col(f"_c{i}") for i in range(count)]


def record_text(layout: SourceLayout, count: int) -> Column:
    """The record's text: as read when malformed, else its ``count`` fields written as CSV (nulls empty)."""
    options = {**{k: v for k, v in csv_options(layout).items() if k in ("sep", "quote", "escape")},
               "ignoreLeadingWhiteSpace": "false", "ignoreTrailingWhiteSpace": "false"}
    return F.coalesce(F.col(CORRUPT_COLUMN), F.to_csv(F.struct(*_fields(count)), options))


def is_header_record(layout: SourceLayout) -> Column:
    """True for a header record: its first field is one of the format's column names."""
    if not layout.header:
        return F.lit(False)
    return F.lower(F.trim(F.col("_c0"))).isin(*[c.lower() for c in layout.columns])


def record_summary(layout: SourceLayout, count: int) -> Transformation:
    """Per file: the texts of its header records, found among whole records (a line inside a quoted field may
    look like a header line). ``count``: the number of positional columns the records were read with."""

    def transform(records: DataFrame) -> DataFrame:
        header_text = F.when(is_header_record(layout), record_text(layout, count))
        return records.groupBy("source_file").agg(F.array_sort(F.collect_set(header_text)).alias("headers"))

    return transform


def stage_records(layout: SourceLayout, resolved: ResolvedColumns) -> Transformation:
    """Whole CSV records (read with ``record_schema(len(resolved.columns))``) → the staged columns; header
    records and blank lines are dropped.

    A record with another number of fields than the header keeps its text and gets a reason in ``malformed``,
    which says how many lines the record runs over when more than one: a quote that is never closed joins the
    lines after it into one record.
    """
    count = len(resolved.columns)

    def transform(records: DataFrame) -> DataFrame:
        raw = record_text(layout, count)
        lines = F.size(F.split(F.col(CORRUPT_COLUMN), "\n"))
        reason = F.concat(
            F.lit(f"expected {count} fields separated by '{layout.delimiter}'"),
            F.when(lines > 1, F.concat(F.lit("; the record runs over "), lines.cast("string"),
                                       F.lit(" lines (quoted line breaks, or a quote never closed)")))
            .otherwise(F.lit("")))
        data = records.where((F.trim(raw) != "") & ~is_header_record(layout))
        fields = {column: F.col(f"_c{i}") for i, column in enumerate(resolved.columns)}
        malformed = F.when(F.col(CORRUPT_COLUMN).isNotNull(), reason)
        return data.select(*staged_columns(layout, fields, raw, malformed))

    return transform
