"""Source formats: how each kind of file looks and how its columns map onto the clickstream contract.

A :class:`SourceLayout` describes one format: file kind (CSV, JSON lines, Parquet), the source columns,
which clickstream field each feeds, the event-type vocabulary and how times are written. The functions
here are pure transformations from the lines (or records) read by :mod:`portrait.io` to a *staged* frame
with one string column ``src_<field>`` per clickstream field, the untouched ``raw_row``, its
``source_file`` and ``malformed`` (why the row could not be split into fields, or null), and then to typed
values (:func:`parse`). Validation is in :mod:`portrait.ingest.validate`.

Built-in formats (public data sets):

* ``taobao`` — Alibaba Tianchi UserBehavior: CSV without header
  ``user_id,item_id,category_id,behavior_type,timestamp``; pv/buy/cart/fav; Unix seconds.
* ``retailrocket`` — ``events.csv`` with header ``timestamp,visitorid,event,itemid,transactionid``;
  view/addtocart/transaction; Unix milliseconds.
* ``rees46`` — CSV with header ``event_time,event_type,product_id,category_id,category_code,brand,price,
  user_id,user_session``; view/cart/remove_from_cart/purchase; times like ``2019-10-01 00:00:00 UTC``.
* ``generic`` — CSV, JSON lines or Parquet laid out as ``ingest.generic`` in the configuration says.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from portrait.config import GENERIC_TARGET_FIELDS, GenericFormatConfig

Transformation = Callable[[DataFrame], DataFrame]

FORMATS: tuple[str, ...] = ("taobao", "retailrocket", "rees46", "generic")
TIME_UNITS = ("seconds", "millis")
# The column that holds the text of a CSV record or JSON line that could not be split into the expected fields.
CORRUPT_COLUMN = "_corrupt"
# Unix times beyond year 9999 cannot become timestamps; such numbers are out of range, not an overflow.
_MAX_EPOCH_SECONDS = 253_402_300_799


class SourceLayoutError(ValueError):
    """Files do not have the layout the format expects (missing column, missing or differing header)."""


@dataclass(frozen=True)
class SourceLayout:
    """One source format: file kind, source columns and their mapping onto clickstream fields.

    ``mapping`` is clickstream field → source column (``order_id`` and ``quantity`` may be mapped too, for
    the orders derived from purchase events). ``required`` lists the source columns every file must have;
    the other mapped columns are optional and load as null when a file lacks them.
    """

    name: str
    file_format: str
    columns: tuple[str, ...]
    header: bool
    mapping: dict[str, str]
    event_types: dict[str, str]
    time_format: str
    required: tuple[str, ...]
    delimiter: str = ","
    notes: tuple[str, ...] = field(default_factory=tuple)

    def source_of(self, target: str) -> str | None:
        return self.mapping.get(target)

    @property
    def numeric_time(self) -> bool:
        return self.time_format in TIME_UNITS


TAOBAO = SourceLayout(
    name="taobao",
    file_format="csv",
    columns=("user_id", "item_id", "category_id", "behavior_type", "timestamp"),
    header=False,
    mapping={"user_id": "user_id", "item_id": "item_id", "category_id": "category_id",
             "event_type": "behavior_type", "event_time": "timestamp"},
    event_types={"pv": "view", "buy": "buy", "cart": "cart", "fav": "fav"},
    time_format="seconds",
    required=("user_id", "item_id", "category_id", "behavior_type", "timestamp"),
)

RETAILROCKET = SourceLayout(
    name="retailrocket",
    file_format="csv",
    columns=("timestamp", "visitorid", "event", "itemid", "transactionid"),
    header=True,
    mapping={"event_time": "timestamp", "user_id": "visitorid", "event_type": "event", "item_id": "itemid",
             "order_id": "transactionid"},
    event_types={"view": "view", "addtocart": "cart", "transaction": "buy"},
    time_format="millis",
    required=("timestamp", "visitorid", "event", "itemid"),
)

REES46 = SourceLayout(
    name="rees46",
    file_format="csv",
    columns=("event_time", "event_type", "product_id", "category_id", "category_code", "brand", "price",
             "user_id", "user_session"),
    header=True,
    mapping={"event_time": "event_time", "event_type": "event_type", "item_id": "product_id",
             "category_id": "category_id", "brand": "brand", "price": "price", "user_id": "user_id",
             "session_id": "user_session"},
    event_types={"view": "view", "cart": "cart", "remove_from_cart": "remove_cart", "purchase": "buy"},
    time_format="yyyy-MM-dd HH:mm:ss z",
    required=("event_time", "event_type", "product_id", "user_id"),
)


def generic_layout(settings: GenericFormatConfig) -> SourceLayout:
    """The layout of ``--format generic`` from the ``ingest.generic`` configuration."""
    mapping = {target: source for target, source in settings.mapping.items() if source}
    required = tuple(mapping[t] for t in ("event_time", "event_type") if t in mapping)
    columns = tuple(settings.columns) if settings.columns else tuple(dict.fromkeys(mapping.values()))
    if settings.file_format == "csv" and not settings.header and not settings.columns:
        raise ValueError("ingest.generic: a CSV without header needs 'columns' (the column names in order)")
    missing = sorted(set(mapping.values()) - set(columns))
    if settings.columns and missing:
        raise ValueError(f"ingest.generic.mapping names column(s) {missing} that ingest.generic.columns lacks")
    return SourceLayout(
        name="generic",
        file_format=settings.file_format,
        columns=columns,
        header=settings.file_format == "csv" and settings.header,
        mapping=mapping,
        event_types={k.strip().lower(): v for k, v in settings.event_types.items()},
        time_format=settings.time_format,
        required=required,
        delimiter=settings.delimiter,
    )


def layout_for(fmt: str, generic: GenericFormatConfig) -> SourceLayout:
    """The layout of format ``fmt``; raises ``ValueError`` listing the formats for an unknown name."""
    layouts = {"taobao": TAOBAO, "retailrocket": RETAILROCKET, "rees46": REES46}
    if fmt == "generic":
        return generic_layout(generic)
    if fmt not in layouts:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    return layouts[fmt]


# --------------------------------------------------------------------------------------------- text files

def _clean(column: Column) -> Column:
    """Trimmed text, with empty strings as null."""
    return F.nullif(F.trim(column), F.lit(""))


def _first_field(layout: SourceLayout) -> Column:
    first = F.split(F.col("value"), re.escape(layout.delimiter), 2).getItem(0)
    return F.lower(F.trim(F.regexp_replace(first, '"', "")))


def is_header_line(layout: SourceLayout) -> Column:
    """True for a header line: its first field is one of the format's column names."""
    if not layout.header:
        return F.lit(False)
    return _first_field(layout).isin(*[c.lower() for c in layout.columns])


def csv_options(layout: SourceLayout) -> dict[str, str]:
    """How CSV text is parsed (RFC 4180), by the line parser and the record reader alike: fields separated by the
    layout's delimiter, a field may be quoted with ``"`` (then it may hold the delimiter, line breaks, and
    quotes written twice, ``""``); PERMISSIVE: a record with another number of fields than the columns keeps its
    text in :data:`CORRUPT_COLUMN`."""
    return {"sep": layout.delimiter, "quote": '"', "escape": '"', "mode": "PERMISSIVE",
            "columnNameOfCorruptRecord": CORRUPT_COLUMN}


def opens_quoted_line_break(line: Column) -> Column:
    """True for a line with an odd number of ``"``: it opens a quoted field that goes on past the line's end
    (or holds a stray quote). A CSV file without such a line has one record per line."""
    return (F.length(line) - F.length(F.translate(line, '"', ""))) % 2 == 1


def file_summary(layout: SourceLayout) -> Transformation:
    """Per source file: header lines found, lines with bytes that are not UTF-8, data lines, and (CSV) lines
    that open a quoted field going on past the line (``open_quote_lines``: records span lines in that file).

    One small row per file, so the caller can check every file's layout before loading anything.
    """

    def transform(lines: DataFrame) -> DataFrame:
        header = is_header_line(layout)
        open_quote = opens_quoted_line_break(F.col("value")) if layout.file_format == "csv" else F.lit(False)
        return lines.groupBy("source_file").agg(
            F.array_sort(F.collect_set(F.when(header, F.col("value")))).alias("headers"),
            F.count(F.when(~F.is_valid_utf8("value"), True)).alias("bad_encoding_lines"),
            F.count(F.when(~header & (F.trim("value") != ""), True)).alias("data_lines"),
            F.count(F.when(open_quote, True)).alias("open_quote_lines"),
        )

    return transform


@dataclass(frozen=True)
class ResolvedColumns:
    """The columns of the files as found: their order, and the drift from the layout."""

    columns: tuple[str, ...]
    ignored: tuple[str, ...]
    missing_optional: tuple[str, ...]


def split_header(layout: SourceLayout, header: str) -> tuple[str, ...]:
    return tuple(c.strip().strip('"').strip() for c in header.split(layout.delimiter))


def resolve_columns(layout: SourceLayout, file_headers: Sequence[tuple[str, list[str]]]) -> ResolvedColumns:
    """Check the files' headers against the layout and return the columns to parse by.

    ``file_headers`` holds (file, header lines found in it). Every file of a header format needs exactly one
    header and all must be equal. A missing required column is an error naming the file and the column; a
    missing optional column loads as null; a column the layout does not use is ignored. Both are reported.
    """
    if not layout.header:
        return ResolvedColumns(layout.columns, (), ())
    layouts: dict[str, list[str]] = {}
    for file, headers in file_headers:
        if len(headers) != 1:
            found = "no header line" if not headers else f"{len(headers)} header lines"
            raise SourceLayoutError(
                f"{file}: {found}; a {layout.name} file starts with one header line naming its columns "
                f"({layout.delimiter.join(layout.columns)})"
            )
        layouts.setdefault(headers[0], []).append(file)
    if len(layouts) > 1:
        described = "; ".join(f"{files[0]} has '{header}'" for header, files in layouts.items())
        raise SourceLayoutError(f"the files have different headers ({described}); ingest each layout separately")
    header, files = next(iter(layouts.items()))
    columns = split_header(layout, header)
    if len(set(columns)) != len(columns):
        raise SourceLayoutError(f"{files[0]}: the header '{header}' repeats a column name")
    missing = [c for c in layout.required if c not in columns]
    if missing:
        raise SourceLayoutError(
            f"{files[0]}: required column(s) {missing} missing from the header '{header}'; "
            f"a {layout.name} file needs {list(layout.required)}"
        )
    used = set(layout.mapping.values())
    known = () if layout.name == "generic" else layout.columns  # generic: every unmapped column is ignored
    ignored = tuple(c for c in columns if c not in used and c not in known)
    missing_optional = tuple(c for c in dict.fromkeys(layout.mapping.values()) if c not in columns)
    return ResolvedColumns(columns, ignored, missing_optional)


def _ddl(columns: Sequence[str]) -> str:
    return ", ".join(f"`{c.replace('`', '')}` STRING" for c in (*columns, CORRUPT_COLUMN))


def staged_columns(layout: SourceLayout, fields: dict[str, Column], raw: Column, malformed: Column) -> list[Column]:
    """The staged columns: source_file, raw_row, malformed and one src_<field> per clickstream field."""
    out = [F.col("source_file"), raw.alias("raw_row"), malformed.alias("malformed")]
    for target in GENERIC_TARGET_FIELDS:
        source = layout.source_of(target)
        value = fields[source] if source in fields else F.lit(None).cast("string")
        out.append(_clean(value).alias(f"src_{target}"))
    return out


def stage_text(layout: SourceLayout, resolved: ResolvedColumns) -> Transformation:
    """Split text lines (JSON lines, or CSV lines that each hold one record) into the staged columns; header and
    blank lines are dropped. CSV files whose records span lines are staged by
    :func:`portrait.ingest.csv_records.stage_records` instead.

    A CSV line with another number of fields than the header, or a JSON line that is not an object, keeps
    its raw text and gets a reason in ``malformed``.
    """

    def transform(lines: DataFrame) -> DataFrame:
        data = lines.where((F.trim("value") != "") & ~is_header_line(layout))
        if layout.file_format == "json":
            schema = T.StructType([T.StructField(c, T.StringType()) for c in (*resolved.columns, CORRUPT_COLUMN)])
            parsed = F.from_json("value", schema, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT_COLUMN})
            reason = F.lit("not a JSON object")
        else:
            parsed = F.from_csv("value", _ddl(resolved.columns), csv_options(layout))
            reason = F.lit(f"expected {len(resolved.columns)} fields separated by '{layout.delimiter}'")
        split = data.select("source_file", "value", parsed.alias("_f"))
        fields = {c: F.col("_f").getField(c) for c in resolved.columns}
        corrupt = F.col("_f").isNull() | F.col("_f").getField(CORRUPT_COLUMN).isNotNull()
        return split.select(*staged_columns(layout, fields, F.col("value"), F.when(corrupt, reason)))

    return transform


def stage_parquet(layout: SourceLayout,
                  schema: T.StructType) -> tuple[Transformation, ResolvedColumns, SourceLayout]:
    """Staged columns from Parquet records (``schema`` = the files' schema), the column drift, and the layout
    to parse the staged columns with.

    The raw row is the record as JSON. Typed columns become text and are parsed like text files; a
    timestamp column mapped to ``event_time`` is taken as its instant (epoch milliseconds).
    """
    present = {f.name: f for f in schema.fields if f.name != "source_file"}
    missing = [c for c in layout.required if c not in present]
    if missing:
        raise SourceLayoutError(
            f"the Parquet files have no column(s) {missing} (columns: {sorted(present)}); "
            "map them in ingest.generic.mapping"
        )
    used = set(layout.mapping.values())
    resolved = ResolvedColumns(
        columns=tuple(present),
        ignored=tuple(c for c in present if c not in used),
        missing_optional=tuple(c for c in dict.fromkeys(layout.mapping.values()) if c not in present),
    )
    time_source = layout.source_of("event_time") or ""
    timestamp_time = isinstance(present.get(time_source, T.StructField("x", T.StringType())).dataType,
                                (T.TimestampType, T.TimestampNTZType))
    staged_layout = dataclasses.replace(layout, time_format="millis") if timestamp_time else layout

    def transform(records: DataFrame) -> DataFrame:
        originals = [F.col(f"`{f.name}`") for f in schema.fields if f.name != "source_file"]
        fields = {name: F.col(f"`{f.name}`").cast("string") for name, f in present.items()}
        if timestamp_time:
            fields[time_source] = F.unix_millis(F.col(f"`{present[time_source].name}`")).cast("string")
        raw = F.to_json(F.struct(*originals))
        return records.select(*staged_columns(staged_layout, fields, raw, F.lit(None).cast("string")))

    return transform, resolved, staged_layout


# ------------------------------------------------------------------------------------------------ parsing

def parse(layout: SourceLayout) -> Transformation:
    """Typed values from the staged text: event_time, event_type (mapped), price, quantity, …

    Nothing is rejected here: a value that does not parse becomes null next to its raw text, and the
    rules of :mod:`portrait.ingest.validate` compare the two. Added columns: ``event_time``,
    ``time_number`` (the epoch number for numeric time formats), ``event_type`` (null when not in the
    format's vocabulary), ``price``, ``quantity`` and the string fields under their clickstream names.
    """
    vocabulary = F.create_map(*[F.lit(x) for pair in layout.event_types.items() for x in pair])

    def transform(staged: DataFrame) -> DataFrame:
        time_text = F.col("src_event_time")
        if layout.numeric_time:
            number = time_text.try_cast("bigint")
            seconds = number if layout.time_format == "seconds" else F.floor(number / 1000)
            in_range = seconds.between(0, _MAX_EPOCH_SECONDS)
            event_time = F.when(in_range, F.timestamp_seconds(number) if layout.time_format == "seconds"
                                else F.timestamp_millis(number))
        else:
            number = F.lit(None).cast("bigint")
            event_time = F.try_to_timestamp(time_text, F.lit(layout.time_format))
        strings = ("event_id", "user_id", "anonymous_id", "session_id", "item_id", "category_id", "brand",
                   "search_query", "channel", "platform", "order_id")
        return staged.select(
            "*",
            number.alias("time_number"),
            event_time.alias("event_time"),
            vocabulary[F.lower(F.col("src_event_type"))].alias("event_type"),
            F.col("src_price").try_cast("double").alias("price"),
            F.col("src_quantity").try_cast("int").alias("quantity"),
            *[F.col(f"src_{s}").alias(s) for s in strings],
        )

    return transform


def event_key(layout: SourceLayout) -> Column:
    """The event id: the source's own id when it has one, else sha2 over the format and the mapped fields.

    The hash uses the trimmed source text of every mapped field, so the same source row always gets the same
    id (re-ingesting a file adds nothing) and two rows differing in any mapped field get different ids.
    """
    mapped = [t for t in GENERIC_TARGET_FIELDS if t != "event_id" and layout.source_of(t)]
    digest = F.sha2(F.concat_ws("\u001f", F.lit(layout.name),
                                *[F.coalesce(F.col(f"src_{t}"), F.lit("\u0000")) for t in mapped]), 256)
    if layout.source_of("event_id"):
        return F.coalesce(F.col("src_event_id"), digest)
    return digest


# ------------------------------------------------------------------------------- contract rows from events

CLICKSTREAM_FIELDS: tuple[str, ...] = (
    "event_id", "user_id", "anonymous_id", "session_id", "event_time", "event_type", "item_id", "category_id",
    "brand", "price", "search_query", "channel", "platform", "dt",
)


def clickstream_rows(layout: SourceLayout) -> Transformation:
    """Valid parsed rows → clickstream rows, one per event id (repeats within the batch dropped).

    ``dt`` is the event's date in the session time zone (portrait sets it to ``time_zone``). Rows with the
    same hashed id are equal in every mapped field, so any one is kept; among rows sharing a source-given
    id the smallest (by all columns) is kept, so the choice never depends on file order. The purchase
    extras ``order_id`` and ``quantity`` are kept for :func:`orders_from_purchases`.
    """

    def transform(valid: DataFrame) -> DataFrame:
        fields = [*[F.col(c) for c in CLICKSTREAM_FIELDS if c not in ("event_id", "dt")],
                  F.to_date("event_time").alias("dt"), F.col("order_id"), F.col("quantity")]
        if not layout.source_of("event_id"):
            return valid.select(event_key(layout).alias("event_id"), *fields).dropDuplicates(["event_id"])
        rows = valid.select(event_key(layout).alias("event_id"), F.struct(*fields).alias("r"))
        return rows.groupBy("event_id").agg(F.min("r").alias("r")).select("event_id", "r.*")

    return transform


def orders_from_purchases() -> Transformation:
    """Order lines derived from purchase (``buy``) events, for sources without an orders table.

    Rule: an order is the source's order id (RetailRocket ``transactionid``, a mapped generic
    ``order_id``) or else the user's purchases at one instant (order id ``o-`` + sha2 of user id and time,
    24 hex digits). Each purchase event is one line, numbered from 1 by item id then event id; quantity is
    the source's or 1, unit price the event price or 0 when the source has none, discount 0, status paid.
    """

    def transform(events: DataFrame) -> DataFrame:
        buys = events.where((F.col("event_type") == "buy") & F.col("user_id").isNotNull())
        derived = F.concat(F.lit("o-"), F.substring(F.sha2(F.concat_ws(
            "\u001f", "user_id", F.unix_micros("event_time").cast("string")), 256), 1, 24))
        order_id = F.coalesce(F.col("order_id"), derived)
        lines = Window.partitionBy("order_id").orderBy("item_id", "event_id")
        return (
            buys.withColumn("order_id", order_id)
            .select(
                "order_id",
                F.row_number().over(lines).alias("line_number"),
                "user_id",
                F.col("event_time").alias("order_time"),
                F.lit("paid").alias("status"),
                "item_id",
                "category_id",
                F.coalesce(F.col("quantity"), F.lit(1)).alias("quantity"),
                F.coalesce(F.col("price"), F.lit(0.0)).alias("unit_price"),
                F.lit(0.0).alias("discount"),
                "dt",
            )
        )

    return transform
