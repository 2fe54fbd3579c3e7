"""``user_features`` as of day D from the ``user_daily_activity`` rollups of the 90 days to D.

Two aggregations over at most 90 rows per person: one for every summed window measure (conditional sums,
one pass), one for the keyed measures (category and brand interest with time decay, platform, landing
channel, repeat purchases) that need merging per key first. No clickstream row is read here.
Definitions of every column: docs/FEATURES.md.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from portrait.config import FeaturesConfig
from portrait.features.dates import LOOKBACK_DAYS, Transformation
from portrait.schemas import COUNTED_EVENTS, DAYPARTS, USER_FEATURES, WINDOWS_DAYS
from portrait.schemas.partitions import date_literal


def _age() -> Column:
    return F.col("age")


def _in(window: int) -> Column:
    return _age() < window


def _sum_in(window: int, column: str) -> Column:
    return F.coalesce(F.sum(F.when(_in(window), F.col(column))), F.lit(0))


def _ratio(numerator: Column, denominator: Column) -> Column:
    return F.when(denominator > 0, numerator.cast("double") / denominator)


def _window_sums(rows: DataFrame, settings: FeaturesConfig) -> DataFrame:
    counted = []
    for window in WINDOWS_DAYS:
        counted.append(_sum_in(window, "events").alias(f"events_{window}d"))
        counted += [_sum_in(window, name).alias(f"{name}_{window}d") for name in COUNTED_EVENTS.values()]
    active = [F.count(F.when(_in(w) & (F.col("events") > 0), True)).alias(f"active_days_{w}d") for w in (7, 30, 90)]
    paid_day = F.col("paid_orders") > 0
    text_rows = F.collect_list(F.when(_in(settings.text_window_days), F.struct("dt", "tokens")))
    return rows.groupBy("user_id").agg(
        *counted, *active,
        F.max("age").alias("days_since_first_event"),
        F.min("age").alias("days_since_last_event"),
        F.min(F.when(paid_day, _age())).alias("days_since_last_order"),
        F.max(F.when(paid_day, _age())).alias("_first_order_age"),
        F.count(F.when(paid_day, True)).alias("_order_days"),
        _sum_in(30, "paid_orders").alias("orders_30d"),
        _sum_in(30, "paid_amount").cast("double").alias("spend_30d"),
        _sum_in(LOOKBACK_DAYS, "paid_orders").alias("orders_90d"),
        _sum_in(LOOKBACK_DAYS, "paid_amount").cast("double").alias("spend_90d"),
        _sum_in(LOOKBACK_DAYS, "discounted_orders").alias("_discounted_orders_90d"),
        _sum_in(LOOKBACK_DAYS, "orders").alias("_all_orders_90d"),
        (_sum_in(LOOKBACK_DAYS, "refunded_orders") + _sum_in(LOOKBACK_DAYS, "cancelled_orders"))
        .alias("_returned_orders_90d"),
        _sum_in(30, "sessions").alias("sessions_30d"),
        _sum_in(30, "session_seconds").alias("_session_seconds_30d"),
        _sum_in(30, "bounce_sessions").alias("_bounces_30d"),
        _sum_in(30, "search_segments").alias("_search_segments_30d"),
        _sum_in(30, "search_buy_segments").alias("_search_buy_segments_30d"),
        F.coalesce(F.sum(F.when(_in(30) & ~F.col("bot_day"), F.col("events"))), F.lit(0)).alias("_human_events_30d"),
        F.max(F.when(_in(30), F.col("bot_day").cast("int"))).alias("_bot_days_30d"),
        _sum_in(30, "gap_count").alias("_gaps_30d"),
        _sum_in(30, "gap_seconds_sumsq").alias("_gap_sumsq_30d"),
        *[_sum_in(30, f"{part}_events").alias(f"_{part}_30d") for part in DAYPARTS],
        F.coalesce(F.sum(F.when(_in(30) & F.dayofweek("dt").isin(1, 7), F.col("events"))), F.lit(0))
        .alias("_weekend_30d"),
        _sum_in(LOOKBACK_DAYS, "price_percentile_sum").alias("_price_sum_90d"),
        _sum_in(LOOKBACK_DAYS, "price_percentile_count").alias("_price_count_90d"),
        F.sort_array(text_rows, asc=False).alias("_text_days"),
    )


_KEYED_MAPS = (("category_weights", "category"), ("brand_weights", "brand"), ("platform_events", "platform"),
               ("landing_channels", "channel"))


def _keyed_rows(rows: DataFrame, settings: FeaturesConfig) -> DataFrame:
    """(user_id, kind, key, decayed, recent, days): category/brand interest, platform, channel, bought days.

    Every row's map entries and bought categories are exploded natively, as one concatenated array whose
    positions say the kind (the parts' sizes are kept beside it), and the weights are plain columns after
    the explode: a lambda per entry (``transform``) would be interpreted element by element, which on
    large rollups costs as much as the rest of the query (docs/BENCHMARKS.md).
    """
    decay = F.pow(F.lit(0.5), _age() / F.lit(float(settings.affinity_half_life_days)))
    parts = [F.map_entries(F.col(column).cast("map<string,double>")) for column, _ in _KEYED_MAPS]
    parts.append(F.arrays_zip("bought_categories", F.array_repeat(F.lit(1.0), F.size("bought_categories")))
                 .cast("array<struct<key:string,value:double>>"))
    part_ends, end = [], F.lit(0)
    for column, kind in _KEYED_MAPS:
        end = end + F.size(column)
        part_ends.append(end.alias(f"_end_{kind}"))
    exploded = (
        rows.select("user_id", "age", F.concat(*parts).alias("_entries"), *part_ends)
        .select("user_id", "age", *[f"_end_{kind}" for _, kind in _KEYED_MAPS],
                F.posexplode("_entries").alias("_position", "_entry"))
    )
    kind_at_position = F.lit("bought")
    for _, kind in reversed(_KEYED_MAPS):
        kind_at_position = F.when(F.col("_position") < F.col(f"_end_{kind}"), F.lit(kind)).otherwise(kind_at_position)
    entries = exploded.select("user_id", "age", kind_at_position.alias("kind"), F.col("_entry.key").alias("key"),
                              F.col("_entry.value").alias("value"))
    kind, value = F.col("kind"), F.col("value")
    return entries.groupBy("user_id", "kind", "key").agg(
        F.sum(F.when(kind.isin("category", "brand"), value * decay).otherwise(F.lit(0.0))).alias("decayed"),
        F.sum(F.when((kind != "bought") & _in(30), value).otherwise(F.lit(0.0))).alias("recent"),
        F.sum(F.when(kind == "bought", F.lit(1)).otherwise(F.lit(0))).alias("days"),
    )


def _top(kind: str, value: str) -> Column:
    """The key of ``kind`` with the largest ``value`` (> 0); ties go to the larger key."""
    candidates = F.collect_list(F.when((F.col("kind") == kind) & (F.col(value) > 0), F.struct(value, "key")))
    return F.try_element_at(F.sort_array(candidates, asc=False), F.lit(1))["key"]


def _top_k(kind: str, k: int) -> Column:
    # Rounded before ranking: equal interests summed in a different order must still tie (larger key first).
    score = F.round(F.col("decayed"), 6)
    candidates = F.collect_list(F.when((F.col("kind") == kind) & (score > 0), F.struct(score.alias("score"), "key")))
    ranked = F.slice(F.sort_array(candidates, asc=False), 1, k)
    return F.transform(ranked, lambda c: F.struct(c["key"].alias("key"), c["score"].alias("score")))


def _per_user_keys(keyed: DataFrame, settings: FeaturesConfig) -> DataFrame:
    bought = F.col("kind") == "bought"
    return keyed.groupBy("user_id").agg(
        _top("category", "recent").alias("top_category_30d"),
        _top_k("category", settings.top_k).alias("top_categories"),
        _top_k("brand", settings.top_k).alias("top_brands"),
        _top("platform", "recent").alias("preferred_platform"),
        _top("channel", "recent").alias("preferred_channel"),
        F.count(F.when(bought, True)).alias("_bought_categories"),
        F.count(F.when(bought & (F.col("days") >= 2), True)).alias("_repeat_categories"),
    )


def lifecycle_stage(rules) -> Column:
    """The lifecycle rule over ``days_since_first_event`` and ``days_since_last_event``."""
    return (
        F.when(F.col("days_since_first_event") <= rules.new_max_tenure_days, "new")
        .when(F.col("days_since_last_event") <= rules.active_max_idle_days, "active")
        .when(F.col("days_since_last_event") <= rules.sleeping_max_idle_days, "sleeping")
        .otherwise("churned")
    )


def _derived(settings: FeaturesConfig) -> dict[str, Column]:
    events_30d, sessions = F.col("events_30d"), F.col("sessions_30d")
    low_edge, high_edge = settings.price_tier_edges
    price = _ratio(F.col("_price_sum_90d"), F.col("_price_count_90d"))
    gap_mean = _ratio(F.col("_session_seconds_30d"), F.col("_gaps_30d"))  # session time is the sum of gaps
    gap_variance = F.greatest(_ratio(F.col("_gap_sumsq_30d"), F.col("_gaps_30d")) - gap_mean * gap_mean, F.lit(0.0))
    gap_cv = F.when((F.col("_gaps_30d") >= settings.bot_min_gaps) & (gap_mean > 0), F.sqrt(gap_variance) / gap_mean)
    per_active_day = _ratio(events_30d, F.col("active_days_30d"))
    daypart_shares = {f"{part}_share_30d": _ratio(F.col(f"_{part}_30d"), events_30d) for part in DAYPARTS}
    # Ties go to the earlier daypart: greatest() over (count, -index) structs.
    preferred = F.greatest(*[F.struct(F.col(f"_{part}_30d").alias("events"), F.lit(-index).alias("negative_index"))
                             for index, part in enumerate(DAYPARTS)])
    daypart_names = F.array(*[F.lit(part) for part in DAYPARTS])
    # least() skips nulls, so the no-cart case stays null only when guarded outside it.
    cart_to_buy = F.when(F.col("carts_30d") > 0, F.least(_ratio(F.col("buys_30d"), F.col("carts_30d")), F.lit(1.0)))
    tokens = F.flatten(F.transform("_text_days", lambda day: day["tokens"]))
    return {
        "avg_order_value_90d": _ratio(F.col("spend_90d"), F.col("orders_90d")),
        "mean_days_between_orders_90d": F.when(
            F.col("_order_days") >= 2,
            (F.col("_first_order_age") - F.col("days_since_last_order")) / (F.col("_order_days") - 1),
        ),
        "repeat_purchase_rate_90d": _ratio(F.col("_repeat_categories"), F.col("_bought_categories")),
        "discount_order_share_90d": _ratio(F.col("_discounted_orders_90d"), F.col("orders_90d")),
        "refund_rate_90d": _ratio(F.col("_returned_orders_90d"), F.col("_all_orders_90d")),
        "avg_session_minutes_30d": _ratio(F.col("_session_seconds_30d") / 60.0, sessions),
        "events_per_session_30d": _ratio(F.col("_human_events_30d"), sessions),
        "bounce_rate_30d": _ratio(F.col("_bounces_30d"), sessions),
        "view_to_cart_rate_30d": _ratio(F.col("carts_30d"), F.col("views_30d")),
        "cart_to_buy_rate_30d": cart_to_buy,
        "cart_abandonment_rate_30d": 1.0 - cart_to_buy,
        "search_to_buy_rate_30d": _ratio(F.col("_search_buy_segments_30d"), F.col("_search_segments_30d")),
        "price_percentile_90d": price,
        "price_tier": F.when(price < low_edge, "low").when(price < high_edge, "mid").when(price.isNotNull(), "high"),
        **daypart_shares,
        "preferred_daypart": F.when(events_30d > 0,
                                    F.element_at(daypart_names, 1 - preferred.getField("negative_index"))),
        "weekend_share_30d": _ratio(F.col("_weekend_30d"), events_30d),
        "events_per_active_day_30d": per_active_day,
        "inter_event_gap_cv_30d": gap_cv,
        "bot_suspect": (
            F.coalesce(per_active_day > settings.bot_events_per_active_day, F.lit(False))
            | F.coalesce(F.col("_bot_days_30d") == 1, F.lit(False))
            | F.coalesce(gap_cv < settings.bot_max_gap_cv, F.lit(False))
        ),
        "lifecycle_stage": lifecycle_stage(settings.lifecycle),
        "text_document": F.array_join(F.slice(tokens, 1, settings.max_tokens_per_user), " "),
        "top_categories": F.coalesce("top_categories", F.array().cast(USER_FEATURES.schema["top_categories"].dataType)),
        "top_brands": F.coalesce("top_brands", F.array().cast(USER_FEATURES.schema["top_brands"].dataType)),
    }


def features_from_rollups(day: dt.date, settings: FeaturesConfig) -> Transformation:
    """``user_daily_activity`` rows (any dates) → ``user_features`` rows of ``day`` (the contract's columns).

    Uses rollup rows with ``day - 89 <= dt <= day`` only: a person is in the result when they had an event or
    an order in those 90 days.
    """

    def transform(rollups: DataFrame) -> DataFrame:
        day_literal = date_literal(day)
        rows = (
            rollups.where((F.col("dt") <= day_literal) & (F.col("dt") > F.date_sub(day_literal, LOOKBACK_DAYS)))
            .withColumn("age", F.datediff(day_literal, F.col("dt")))
        )
        sums = _window_sums(rows, settings)
        keys = _per_user_keys(_keyed_rows(rows, settings), settings)
        return (
            sums.join(keys, on="user_id", how="left")
            .withColumns(_derived(settings))
            .withColumn("dt", day_literal)
            .select(*[F.col(f.name).cast(f.dataType) for f in USER_FEATURES.schema.fields])
        )

    return transform
