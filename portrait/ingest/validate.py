"""Validation of ingested rows: named rules over Spark columns, the first broken rule quarantines a row.

Each :class:`Rule` is a name, a Column that is true when a row breaks it, and a Column that says what was
wrong (naming the source column and value). :func:`flag_invalid` adds ``quarantine_rule`` and
``quarantine_detail`` (null for good rows), so one pass over the data validates and splits it.

Rules, in the order they are checked (a row is quarantined for the first one it breaks):

=====================  ===========================================================================
malformed_row          a CSV line with another number of fields than the header; a JSON line that is
                       not an object
missing_required       an empty required field: event time, event type, user id (or, for generic
                       sources, user id or anonymous id), item id (except searches), user id of a purchase
invalid_id             an id (any ``*_id`` column of clickstream and orders: user, anonymous, session, item,
                       category, order, event) that ``portrait forget`` could not name: control characters
                       or more than ``MAX_ID_LENGTH`` characters (:mod:`portrait.schemas.ids`)
unparseable_number     a Unix time, price or quantity that is not a number
unparseable_time       a time text that does not match the format's pattern
unknown_event_type     an event type outside the format's vocabulary
time_out_of_range      before ``ingest.min_event_date`` or after run time + ``ingest.max_future_hours``
negative_price         price below zero
quantity_not_positive  quantity below one
inconsistent_order     an order id on a non-purchase event, a purchase without the order id the source
                       should carry, or one order id with several users
=====================  ===========================================================================
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from portrait.config import GENERIC_TARGET_FIELDS
from portrait.ingest.formats import SourceLayout
from portrait.schemas import CLICKSTREAM, ORDERS, id_problem_column

Transformation = Callable[[DataFrame], DataFrame]

RULES: tuple[str, ...] = (
    "malformed_row", "missing_required", "invalid_id", "unparseable_number", "unparseable_time", "unknown_event_type",
    "time_out_of_range", "negative_price", "quantity_not_positive", "inconsistent_order",
)


@dataclass(frozen=True)
class Rule:
    """A validation rule: ``broken`` is true for a row that breaks it, ``detail`` says how."""

    name: str
    broken: Column
    detail: Column


Check = tuple[Column, Column]  # (true when the row breaks it, what was wrong)

# The loaded fields holding an id: every id column of the tables ingest writes, by the contracts.
ID_FIELDS: tuple[str, ...] = tuple(
    f for f in GENERIC_TARGET_FIELDS if f in {*CLICKSTREAM.identifier_columns, *ORDERS.identifier_columns})


def _quoted(column: str) -> Column:
    return F.concat(F.lit("'"), F.col(column), F.lit("'"))


def _first_of(checks: list[Check]) -> tuple[Column, Column]:
    broken = F.lit(False)
    for condition, _ in checks:
        broken = broken | F.coalesce(condition, F.lit(False))
    detail = F.coalesce(*[F.when(condition, message) for condition, message in checks], F.lit(None))
    return broken, detail


def _empty(target: str) -> Column:
    return F.col(f"src_{target}").isNull()


def _message(layout: SourceLayout, target: str, text: str) -> Column:
    return F.lit(f"column '{layout.source_of(target)}' {text}")


def _bad_value(layout: SourceLayout, target: str, column: str, text: str) -> Column:
    """"column '<source column>' value '<value of column>'" followed by ``text``."""
    return F.concat(_message(layout, target, "value "), _quoted(column), F.lit(text))


def _missing_checks(layout: SourceLayout) -> list[Check]:
    src = layout.source_of
    is_search = F.col("event_type") == "search"
    missing = [(_empty(t), _message(layout, t, "is empty")) for t in ("event_time", "event_type") if src(t)]
    if src("user_id") and src("anonymous_id"):
        missing.append((_empty("user_id") & _empty("anonymous_id"),
                        F.lit(f"columns '{src('user_id')}' and '{src('anonymous_id')}' are both empty")))
    elif src("user_id"):
        missing.append((_empty("user_id"), _message(layout, "user_id", "is empty")))
    else:
        missing.append((_empty("anonymous_id"), _message(layout, "anonymous_id", "is empty")))
    if src("item_id"):
        missing.append((_empty("item_id") & ~F.coalesce(is_search, F.lit(False)),
                        _message(layout, "item_id", "is empty (required except for searches)")))
    else:
        missing.append((~F.coalesce(is_search, F.lit(False)), F.lit("no item column mapped: only searches load")))
    if src("user_id") and src("anonymous_id"):
        missing.append(((F.col("event_type") == "buy") & _empty("user_id"),
                        _message(layout, "user_id", "is empty on a purchase")))
    return missing


def _id_checks(layout: SourceLayout) -> list[Check]:
    """One check per mapped id field: the id rule ``portrait forget`` applies (the value is in ``raw_row``)."""
    checks = []
    for target in ID_FIELDS:
        if layout.source_of(target):
            problem = id_problem_column(F.col(target))
            checks.append((problem.isNotNull(), F.concat(_message(layout, target, "holds an id that "), problem)))
    return checks


def _number_checks(layout: SourceLayout) -> list[Check]:
    numbers = []
    if layout.numeric_time:
        numbers.append((~_empty("event_time") & F.col("time_number").isNull(),
                        _bad_value(layout, "event_time", "src_event_time",
                                   f" is not a whole number of {layout.time_format}")))
    if layout.source_of("price"):
        bad_price = F.col("price").isNull() | F.isnan("price") | (F.abs("price") == float("inf"))
        numbers.append((~_empty("price") & bad_price, _bad_value(layout, "price", "src_price", " is not a number")))
    if layout.source_of("quantity"):
        numbers.append((~_empty("quantity") & F.col("quantity").isNull(),
                        _bad_value(layout, "quantity", "src_quantity", " is not a whole number")))
    return numbers


def _time_text_checks(layout: SourceLayout) -> list[Check]:
    if layout.numeric_time:
        return []
    return [(~_empty("event_time") & F.col("event_time").isNull(),
             _bad_value(layout, "event_time", "src_event_time",
                        f" does not match the pattern '{layout.time_format}'"))]


def _range_checks(layout: SourceLayout, earliest: dt.datetime, latest: dt.datetime) -> list[Check]:
    window = f"[{earliest.isoformat()}, {latest.isoformat()}]"
    return [
        (F.col("event_time").isNull(),
         _bad_value(layout, "event_time", "src_event_time", " is not a plausible time")),
        ((F.col("event_time") < F.lit(earliest)) | (F.col("event_time") > F.lit(latest)),
         F.concat(F.lit("event time "), F.date_format("event_time", "yyyy-MM-dd HH:mm:ssXXX"),
                  F.lit(f" is outside the plausible range {window} (ingest.min_event_date, max_future_hours)"))),
    ]


def _order_checks(layout: SourceLayout) -> list[Check]:
    if not layout.source_of("order_id"):
        return []
    is_buy = F.col("event_type") == "buy"
    return [
        (F.col("order_id").isNotNull() & ~is_buy,
         _bad_value(layout, "order_id", "order_id", " on a non-purchase event")),
        (is_buy & F.col("order_id").isNull(), _message(layout, "order_id", "is empty on a purchase")),
        (F.col("order_users") > 1,
         F.concat(_message(layout, "order_id", "value "), _quoted("order_id"), F.lit(" belongs to "),
                  F.col("order_users").cast("string"), F.lit(" different users"))),
    ]


def rules(layout: SourceLayout, earliest: dt.datetime, latest: dt.datetime) -> list[Rule]:
    """The rules for ``layout``'s rows, with event times allowed in [``earliest``, ``latest``] (aware, UTC)."""
    if earliest.tzinfo is None or latest.tzinfo is None:
        raise ValueError("earliest and latest must be timezone-aware datetimes (UTC)")
    src = layout.source_of
    known = ", ".join(layout.event_types)
    unknown_type = (F.col("event_type").isNull(),
                    _bad_value(layout, "event_type", "src_event_type", f" is not one of {known}"))
    negative_price = (F.col("price") < 0, _bad_value(layout, "price", "src_price", " is negative"))
    quantity_below_one = (F.col("quantity") < 1, _bad_value(layout, "quantity", "src_quantity", " is below 1"))
    built = []
    for name, checks in (
        ("malformed_row", [(F.col("malformed").isNotNull(), F.col("malformed"))]),
        ("missing_required", _missing_checks(layout)),
        ("invalid_id", _id_checks(layout)),
        ("unparseable_number", _number_checks(layout)),
        ("unparseable_time", _time_text_checks(layout)),
        ("unknown_event_type", [unknown_type]),
        ("time_out_of_range", _range_checks(layout, earliest, latest)),
        ("negative_price", [negative_price] if src("price") else []),
        ("quantity_not_positive", [quantity_below_one] if src("quantity") else []),
        ("inconsistent_order", _order_checks(layout)),
    ):
        if checks:
            broken, detail = _first_of(checks)
            built.append(Rule(name, broken, detail))
    return built


def count_order_users() -> Transformation:
    """Add ``order_users``: distinct users of the purchases with the row's order id in the batch."""

    def transform(rows: DataFrame) -> DataFrame:
        per_order = (
            rows.where(F.col("order_id").isNotNull() & F.col("user_id").isNotNull() & (F.col("event_type") == "buy"))
            .groupBy("order_id")
            .agg(F.count_distinct("user_id").alias("order_users"))
        )
        return rows.join(per_order, on="order_id", how="left")

    return transform


def flag_invalid(checks: list[Rule]) -> Transformation:
    """Add ``quarantine_rule`` (the first rule the row breaks, else null) and ``quarantine_detail``."""

    def transform(rows: DataFrame) -> DataFrame:
        rule = F.coalesce(*[F.when(r.broken, F.lit(r.name)) for r in checks], F.lit(None).cast("string"))
        detail = F.coalesce(*[F.when(r.broken, F.coalesce(r.detail, F.lit(r.name))) for r in checks],
                            F.lit(None).cast("string"))
        return rows.withColumns({"quarantine_rule": rule, "quarantine_detail": detail})

    return transform


def quarantine_rows(fmt: str, run_id: str, at: dt.datetime) -> Transformation:
    """Rows of the ``quarantine`` contract from flagged bad rows, one per distinct (file, raw row).

    The key ``quarantine_id`` depends on the content only, so quarantining the same file again adds nothing.
    """

    def transform(flagged: DataFrame) -> DataFrame:
        keyed = flagged.where(F.col("quarantine_rule").isNotNull()).select(
            F.sha2(F.concat_ws("\u001f", F.lit(fmt), "source_file", "raw_row"), 256).alias("quarantine_id"),
            F.struct(
                F.col("source_file"), F.col("raw_row"), F.col("quarantine_rule").alias("rule"),
                F.col("quarantine_detail").alias("detail"),
            ).alias("row"),
        )
        return keyed.groupBy("quarantine_id").agg(F.min("row").alias("row")).select(
            "quarantine_id",
            F.lit(run_id).alias("ingest_run_id"),
            F.lit(fmt).alias("format"),
            "row.source_file", "row.raw_row", "row.rule", "row.detail",
            F.lit(at).cast("timestamp").alias("quarantined_at"),
        )

    return transform
