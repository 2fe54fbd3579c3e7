"""``user_daily_activity``: one row per person per day, computed once from that day's events.

Every window feature of ``user_features`` (1/7/30/90 days) is a sum or a merge over these rows
(:mod:`portrait.features.windows`), so a daily run reads one new day of events instead of 90, and a backfill
of N dates computes each day's rollup once.

How a range of days is computed, in one shuffle of the events by (person, day): every part below is a
per-(person, day) computation on that partitioning, and the parts are joined without moving events again.

- Counts, first/last event, dayparts and price percentiles are a plain aggregation per (person, day).
- Sessions need the person-day's events in time order. Each person-day also gets one row holding the person's
  last event of the day before (taken from the counts, which start a day before the range), so a session that
  started before midnight and goes on after it is not counted again on the new day.
  Person-days above ``features.bot_max_events_per_day`` (bots) are counted but kept out of this ordered
  window, so a handful of machine users with millions of events cannot hold one task hostage.
- Interest weights per category and brand, events per platform and sessions per landing channel are one
  exploded (kind, key, value) aggregation, turned into maps.
- Text tokens: search queries and reviews are segmented over distinct strings
  (:func:`portrait.features.text.segment_text`), item titles once per item and broadcast to the events;
  each person-day keeps its newest texts before the parts meet.
- Orders: one row per order first (an order can have many lines), then per person-day.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from portrait.config import FeaturesConfig
from portrait.features.dates import Transformation
from portrait.features.text import TEXT_EVENT_TYPES, segment_text
from portrait.schemas import DAYPARTS, USER_DAILY_ACTIVITY
from portrait.schemas.partitions import between_days, date_literal

_DAYPART_START_HOURS = (0, 6, 12, 18)
_KEY = ("user_id", "dt")
_EVENT_COLUMNS = ("user_id", "dt", "event_time", "event_id", "event_type", "item_id", "category_id", "brand",
                  "platform", "channel", "search_query")


def _empty_strings() -> Column:
    return F.array().cast("array<string>")


def _daypart(hour: Column) -> Column:
    part = F.lit(DAYPARTS[0])
    for name, first_hour in zip(DAYPARTS[1:], _DAYPART_START_HOURS[1:], strict=True):
        part = F.when(hour >= first_hour, F.lit(name)).otherwise(part)
    return part


def _count_type(event_type: str) -> Column:
    return F.count(F.when(F.col("event_type") == event_type, True))


def item_price_percentiles(items: DataFrame) -> DataFrame:
    """``item_id``, ``price_percentile``: the item's price rank within its category, 0 (cheapest) to 1.

    A category with one priced item gives it 0.5, not 0: alone, it is neither cheap nor dear.
    """
    by_category = Window.partitionBy("category_id").orderBy("price")
    priced = items.where(F.col("price").isNotNull() & F.col("category_id").isNotNull())
    return priced.select(
        "item_id",
        F.when(F.count(F.lit(1)).over(Window.partitionBy("category_id")) == 1, F.lit(0.5))
        .otherwise(F.percent_rank().over(by_category)).alias("price_percentile"),
    )


def _event_counts(events: DataFrame, percentiles: DataFrame | None) -> DataFrame:
    priced_types = ("view", "cart", "buy")
    if percentiles is not None:
        events = events.join(F.broadcast(percentiles), on="item_id", how="left")
        in_price = F.col("event_type").isin(*priced_types) & F.col("price_percentile").isNotNull()
        price_sum = F.sum(F.when(in_price, F.col("price_percentile")))
        price_count = F.count(F.when(in_price, True))
    else:
        price_sum, price_count = F.lit(0.0), F.lit(0)
    hour = F.hour("event_time")  # the session time zone is the configured one (portrait.spark)
    dayparts = [F.count(F.when(_daypart(hour) == part, True)).alias(f"{part}_events") for part in DAYPARTS]
    return events.groupBy(*_KEY).agg(
        F.count(F.lit(1)).alias("events"),
        *[_count_type(t).alias(name) for t, name in (("view", "views"), ("search", "searches"), ("cart", "carts"),
                                                      ("remove_cart", "remove_carts"), ("fav", "favs"),
                                                      ("buy", "buys"))],
        F.min("event_time").alias("first_event_time"),
        F.max("event_time").alias("last_event_time"),
        *dayparts,
        F.coalesce(price_sum, F.lit(0.0)).alias("price_percentile_sum"),
        price_count.alias("price_percentile_count"),
    )


def _sessions(events: DataFrame, gap_minutes: int) -> tuple[DataFrame, DataFrame]:
    """Session measures per (person, day) and landing-channel rows.

    ``events`` are one person-day's human events plus, flagged ``continuation``, one row holding the person's
    last event of the day before (to continue sessions over midnight); the window is per (person, day).
    """
    gap_limit = gap_minutes * 60
    in_order = Window.partitionBy(*_KEY).orderBy("event_time", "event_id")
    previous_time, next_time = F.lag("event_time").over(in_order), F.lead("event_time").over(in_order)
    # Microseconds, not unix_seconds: truncating both ends to whole seconds would move session boundaries.
    gap = (F.unix_micros("event_time") - F.unix_micros(previous_time)) / 1e6
    next_gap = (F.unix_micros(next_time) - F.unix_micros("event_time")) / 1e6
    flagged = events.select(
        *_KEY, "event_time", "event_id", "event_type", "channel", "continuation",
        gap.alias("gap"),
        # A bounce is decided within the day: a session whose next event comes after midnight is a bounce of
        # the day it started, so the day's rollup never changes once written.
        (next_gap <= gap_limit).alias("continues_today"),
    ).withColumn("session_start", F.col("gap").isNull() | (F.col("gap") > gap_limit))
    numbered = flagged.withColumn(
        "session_number",
        F.sum(F.col("session_start").cast("int")).over(in_order.rowsBetween(Window.unboundedPreceding, 0)),
    ).where(~F.col("continuation"))
    in_session_gap = F.when(~F.col("session_start"), F.col("gap"))
    per_day = numbered.groupBy(*_KEY).agg(
        F.count(F.when(F.col("session_start"), True)).alias("sessions"),
        F.count(F.when(F.col("session_start") & ~F.coalesce("continues_today", F.lit(False)), True))
        .alias("bounce_sessions"),
        F.coalesce(F.sum(in_session_gap), F.lit(0.0)).alias("session_seconds"),
        F.count(in_session_gap).alias("gap_count"),
        F.coalesce(F.sum(in_session_gap ** 2), F.lit(0.0)).alias("gap_seconds_sumsq"),
    )
    # A session part is the share of one session that falls on one day.
    parts = (
        numbered.groupBy(*_KEY, "session_number")
        .agg(F.max((F.col("event_type") == "search").cast("int")).alias("has_search"),
             F.max((F.col("event_type") == "buy").cast("int")).alias("has_buy"))
        .groupBy(*_KEY)
        .agg(F.sum("has_search").alias("search_segments"),
             F.sum(F.col("has_search") * F.col("has_buy")).alias("search_buy_segments"))
    )
    landing = numbered.where(F.col("session_start") & F.col("channel").isNotNull()).select(
        *_KEY, F.lit("channel").alias("kind"), F.col("channel").alias("key"), F.lit(1.0).alias("value"))
    return per_day.join(parts, on=list(_KEY), how="left"), landing


def _continuations(counts: DataFrame, end: dt.date, bot_max_events: int) -> DataFrame:
    """Per (person, day) up to ``end``: one row holding the person's last event of the day before.

    ``counts`` start a day before the range. Bot days give none: they never take part in sessions.
    """
    return (
        counts.where((F.col("events") <= bot_max_events) & (F.col("dt") < date_literal(end)))
        .select("user_id", F.date_add("dt", 1).alias("dt"), F.col("last_event_time").alias("event_time"),
                F.lit("").alias("event_id"), F.lit(None).cast("string").alias("event_type"),
                F.lit(None).cast("string").alias("channel"), F.lit(True).alias("continuation"))
    )


def _keyed(events: DataFrame, weights: dict[str, float]) -> DataFrame:
    """(person, day, kind, key, value) rows: interest weights per category and brand, events per platform."""
    weight = F.lit(0.0)
    for event_type, value in weights.items():
        weight = F.when(F.col("event_type") == event_type, F.lit(float(value))).otherwise(weight)
    entries = F.array(
        F.struct(F.lit("category").alias("kind"), F.col("category_id").alias("key"), weight.alias("value")),
        F.struct(F.lit("brand").alias("kind"), F.col("brand").alias("key"), weight.alias("value")),
        F.struct(F.lit("platform").alias("kind"), F.col("platform").alias("key"), F.lit(1.0).alias("value")),
    )
    return (
        events.select(*_KEY, F.explode(entries).alias("entry"))
        .select(*_KEY, "entry.kind", "entry.key", "entry.value")
        .where(F.col("key").isNotNull() & (F.col("value") > 0))
    )


def _maps(keyed: DataFrame, landing: DataFrame) -> DataFrame:
    # Each side is summed per key before the union, so only one row per (person, day, key) meets the other side.
    summed = (keyed.groupBy(*_KEY, "kind", "key").agg(F.sum("value").alias("value"))
              .unionByName(landing.groupBy(*_KEY, "kind", "key").agg(F.sum("value").alias("value"))))

    def as_map(kind: str, value_type: str) -> Column:
        entries = F.collect_list(F.when(F.col("kind") == kind, F.struct("key", F.col("value").cast(value_type))))
        return F.map_from_entries(F.array_sort(entries))

    return summed.groupBy(*_KEY).agg(
        as_map("category", "double").alias("category_weights"),
        as_map("brand", "double").alias("brand_weights"),
        as_map("platform", "bigint").alias("platform_events"),
        as_map("channel", "bigint").alias("landing_channels"),
    )


def per_order(orders: DataFrame) -> DataFrame:
    """Order lines → one row per (user_id, order_id): its date, status flags and ``amount`` (paid lines' quantity
    × unit price − discount). The one definition of a paid order and its value (rollups, customer value)."""
    line_amount = F.col("quantity") * F.col("unit_price") - F.col("discount")
    paid_line = F.col("status") == "paid"
    return orders.groupBy("user_id", "order_id").agg(
        F.max("dt").alias("dt"),
        F.max(paid_line.cast("int")).alias("paid"),
        F.max((F.col("status") == "refunded").cast("int")).alias("refunded"),
        F.max((F.col("status") == "cancelled").cast("int")).alias("cancelled"),
        F.sum(F.when(paid_line, line_amount)).alias("amount"),
        F.max((paid_line & (F.col("discount") > 0)).cast("int")).alias("discounted"),
        F.collect_set(F.when(paid_line, F.col("category_id"))).alias("categories"),
    )


def _orders(orders: DataFrame) -> DataFrame:
    return per_order(orders).groupBy(*_KEY).agg(
        F.sum("paid").cast("long").alias("paid_orders"),
        F.coalesce(F.sum("amount"), F.lit(0.0)).alias("paid_amount"),
        F.sum("discounted").cast("long").alias("discounted_orders"),
        F.count(F.lit(1)).alias("orders"),
        F.sum("refunded").cast("long").alias("refunded_orders"),
        F.sum("cancelled").cast("long").alias("cancelled_orders"),
        F.array_sort(F.array_distinct(F.flatten(F.collect_list("categories")))).alias("bought_categories"),
    )


def _newest_texts(texts: DataFrame, cap: int) -> DataFrame:
    """Per (person, day): the newest ``cap`` texts that have tokens, as (event_time, text, text_tokens), newest first.

    Each kept text has at least one token, so these ``cap`` texts hold the day's first ``cap`` tokens.
    """
    with_tokens = F.when(F.size("text_tokens") > 0, F.struct("event_time", "text", "text_tokens"))
    newest_first = F.sort_array(F.collect_list(with_tokens), asc=False)
    return texts.groupBy(*_KEY).agg(F.slice(newest_first, 1, cap).alias("texts"))


def _tokens(events: DataFrame, start: dt.date, end: dt.date, settings: FeaturesConfig,
            items: DataFrame | None, reviews: DataFrame | None) -> DataFrame:
    """Per (person, day): the day's text tokens, newest text first, capped."""
    cap = settings.max_tokens_per_user

    def segmented(texts: DataFrame) -> DataFrame:
        return texts.transform(segment_text("text", "text_tokens", settings.min_token_length))

    searches = events.where((F.col("event_type") == "search") & F.col("search_query").isNotNull()).select(
        *_KEY, "event_time", F.col("search_query").alias("text"))
    parts = [_newest_texts(segmented(searches), cap)]
    if items is not None:
        # Titles are segmented once per item and reach the events through a broadcast join on the item id, so
        # the events never move for their text; each (person, day) is reduced to its newest texts in place.
        titles = segmented(items.select("item_id", F.col("title").alias("text")).where(F.col("text").isNotNull()))
        acted_on = (events.where(F.col("event_type").isin(*TEXT_EVENT_TYPES))
                    .select(*_KEY, "event_time", "item_id")
                    .join(F.broadcast(titles), on="item_id", how="inner").drop("item_id"))
        parts.append(_newest_texts(acted_on, cap))
    if reviews is not None:
        written = (reviews.where(between_days(start, end) & F.col("review_text").isNotNull())
                   .select(*_KEY, F.col("review_time").alias("event_time"), F.col("review_text").alias("text")))
        parts.append(_newest_texts(segmented(written), cap))
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.unionByName(part)
    newest_first = F.sort_array(F.flatten(F.collect_list("texts")), asc=False)
    return merged.groupBy(*_KEY).agg(
        F.slice(F.flatten(F.transform(newest_first, lambda t: t.getField("text_tokens"))), 1, cap).alias("tokens")
    )


def rollup_events(start: dt.date, end: dt.date) -> Transformation:
    """Clickstream → the logged-in events :func:`daily_activity` reads for ``[start, end]``, by (person, day).

    That is the day before ``start`` too (sessions continue over midnight) and only the columns it uses. Every part
    of the rollup reads these rows, so a caller computing rollups caches them (and materialises the cache before
    planning the rollup): the events are then read and shuffled once, and no part of the rollup moves them again.
    """

    def transform(clickstream: DataFrame) -> DataFrame:
        return clickstream.transform(_logged_in_events(start, end)).repartition(*_KEY)

    return transform


def _logged_in_events(start: dt.date, end: dt.date) -> Transformation:
    def transform(clickstream: DataFrame) -> DataFrame:
        wanted = F.col("user_id").isNotNull() & between_days(start - dt.timedelta(days=1), end)
        return clickstream.where(wanted).select(*_EVENT_COLUMNS)

    return transform


def daily_activity(start: dt.date, end: dt.date, settings: FeaturesConfig, orders: DataFrame,
                   items: DataFrame | None = None, reviews: DataFrame | None = None) -> Transformation:
    """Clickstream (or its :func:`rollup_events`) → ``user_daily_activity`` rows of every person-day in the range.

    Reads clickstream rows of ``[start - 1 day, end]`` (the day before only to continue sessions) and
    orders and reviews of ``[start, end]``; a person-day exists when the person had an event, placed an
    order or wrote a review that day. Anonymous events (no ``user_id``) are left out.
    """

    def transform(clickstream: DataFrame) -> DataFrame:
        with_day_before = clickstream.transform(_logged_in_events(start, end))
        percentiles = item_price_percentiles(items) if items is not None else None
        counts_with_day_before = _event_counts(with_day_before, percentiles)
        bot_days = counts_with_day_before.where(F.col("events") > settings.bot_max_events_per_day).select(*_KEY)
        counts = counts_with_day_before.where(F.col("dt") >= date_literal(start))
        events = with_day_before.where(F.col("dt") >= date_literal(start))
        humans = events.join(F.broadcast(bot_days), on=list(_KEY), how="left_anti")
        continuations = _continuations(counts_with_day_before, end, settings.bot_max_events_per_day)
        session_input = (humans.select(*continuations.columns[:-1], F.lit(False).alias("continuation"))
                         .unionByName(continuations))
        sessions, landing = _sessions(session_input, settings.session_gap_minutes)
        maps = _maps(_keyed(events, settings.affinity_weights), landing)
        tokens = _tokens(humans, start, end, settings, items, reviews)
        order_days = _orders(orders.where(between_days(start, end)))
        joined = (
            counts.join(order_days, on=list(_KEY), how="full")
            .join(sessions, on=list(_KEY), how="left")
            .join(maps, on=list(_KEY), how="left")
            .join(tokens, on=list(_KEY), how="full")
        )
        zero = {f.name: 0 for f in USER_DAILY_ACTIVITY.schema.fields
                if f.dataType.typeName() in ("long", "double") and f.name in joined.columns}
        empty_maps = {name: F.coalesce(name, F.create_map().cast(USER_DAILY_ACTIVITY.schema[name].dataType))
                      for name in ("category_weights", "brand_weights", "platform_events", "landing_channels")}
        return (
            joined.fillna(zero)
            .withColumns(empty_maps)
            .withColumn("bought_categories", F.coalesce("bought_categories", _empty_strings()))
            .withColumn("tokens", F.coalesce("tokens", _empty_strings()))
            .withColumn("bot_day", F.col("events") > settings.bot_max_events_per_day)
            .select(*[F.col(f.name).cast(f.dataType) for f in USER_DAILY_ACTIVITY.schema.fields])
        )

    return transform
