"""``user_features`` of one date computed by DuckDB SQL straight from the raw Delta input tables.

The baseline of the feature-stage benchmark: the same definitions as portrait's Spark path
(``portrait/features/rollups.py`` then ``portrait/features/windows.py``, docs/FEATURES.md), computed by
DuckDB from the same Parquet files, so the comparison is engine against engine, not definition against
definition. The SQL keeps portrait's two levels: per person-day aggregates (the rollup), then one
aggregation per person over the 90 days (the windows). A single-node reference implementation of the same
definitions, written for the benchmark and not under test: no test compares its output with Spark's
``user_features`` or with the pandas oracle ``tests/reference_features.py``.

How it runs, on the caller's connection (threads and memory are the caller's settings), leaving nothing
behind (no temporary table; the token table is unregistered):

1. Text vocabulary: the distinct texts of non-bot person-days in the text window (search queries, titles
   of items viewed, carted, favourited or bought, review texts), selected in SQL from a narrow read of
   those days' files (five columns), segmented once in Python with portrait's own ``_segment_series``
   (jieba) and registered as an Arrow table text -> (tokens joined by U+001F, token count).
2. One query for the features, returned as Arrow with the ``USER_FEATURES`` columns in order:
   - ``ev``: the one scan of the clickstream: the live files (``delta_files``) of the 90 days to D, pruned
     by their hive ``dt=`` directories, only the columns the features use, the event time as UTC
     microseconds and the local daypart (materialized once, read by every step below);
   - ``daily``: the per person-day rollup of the events (rollups.py ``_event_counts``): counts per type,
     dayparts, price-percentile sums and the bot-day flag; then the window sums over it (ages 0..w-1);
   - sessions: one window (lag/lead) over the non-bot events of the 30 days plus the day before, so a
     session over midnight continues and counts on its start day; session numbers (for session parts with
     a search) are a running count over the session starts and search/buy events only;
   - interest: decayed category/brand weights summed straight from the events (Σ w·0.5^(age/half-life) per
     key: the rollup's per-day maps add nothing to this sum but a pass), top-k by (rounded score, key);
   - orders: per order (its latest line's day), per person-day, per person;
   - text: per day newest text first (ties: larger text), capped at ``max_tokens_per_user``; days newest
     first, capped again; only the days that can still contribute are aggregated;
   - the derived ratios, tiers, flags and lifecycle.

Local time: hours are computed as UTC microseconds plus the zone's UTC offset, the offsets (and DST changes)
over the days read taken from Python's zoneinfo (IANA rules, as ICU and Java use): exact, and cheaper than
a per-row ICU conversion (checked equal to DuckDB's ICU ``timezone()`` for zones with DST and half-hour
offsets).

If ``<lakehouse>/identity_graph`` exists, ``user_id`` becomes the stitched person id as in
``portrait.ingest.identity.stitch_person_id`` (portrait's default ``identity.enabled``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import uuid

import duckdb
import pandas as pd
import pyarrow as pa

from portrait.config import FeaturesConfig
from portrait.features.dates import LOOKBACK_DAYS
from portrait.features.text import TEXT_EVENT_TYPES, _segment_series
from portrait.schemas import COUNTED_EVENTS, DAYPARTS, USER_FEATURES, WINDOWS_DAYS

_PARTITION = re.compile(r"(?:^|/)dt=(\d{4}-\d{2}-\d{2})(?:/|$)")
_PRICED_TYPES = ("view", "cart", "buy")
_SEPARATOR = "\x1f"
_SESSION_DAYS = 30  # every session measure is a 30-day one (windows.py)


def delta_files(table_path: str) -> list[str]:
    """Live Parquet files of a Delta table (``deltalake.DeltaTable(table_path).file_uris()``)."""
    from deltalake import DeltaTable

    return [uri[len("file://"):] if uri.startswith("file://") else uri
            for uri in DeltaTable(table_path).file_uris()]


def _is_delta(path: str) -> bool:
    return os.path.isdir(os.path.join(path, "_delta_log"))


def _files_between(files: list[str], start: dt.date, end: dt.date) -> list[str]:
    """Files whose hive ``dt=`` directory lies in ``[start, end]`` (files without one are kept)."""
    kept = []
    for path in files:
        match = _PARTITION.search(path)
        if match is None or start <= dt.date.fromisoformat(match.group(1)) <= end:
            kept.append(path)
    return kept


def _quote(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _date(day: dt.date) -> str:
    return f"DATE '{day.isoformat()}'"


def _scan(files: list[str], partitioned: bool, empty: str) -> str:
    """A ``read_parquet`` over ``files``; ``empty`` (a typed, row-less SELECT) when there is none."""
    if not files:
        return f"({empty})"
    listed = ", ".join(_quote(f) for f in files)
    hive = "true" if partitioned else "false"
    return f"read_parquet([{listed}], hive_partitioning = {hive}, union_by_name = true)"


def _ratio(numerator: str, denominator: str) -> str:
    return f"CASE WHEN ({denominator}) > 0 THEN ({numerator})::DOUBLE / ({denominator}) END"


def _weight_case(weights: dict[str, float]) -> str:
    whens = " ".join(f"WHEN {_quote(t)} THEN {float(v)!r}" for t, v in weights.items())
    return f"(CASE event_type {whens} ELSE 0.0 END)" if whens else "0.0"


def _duck_type(data_type) -> str:
    name = data_type.typeName()
    simple = {"string": "VARCHAR", "integer": "INTEGER", "long": "BIGINT", "double": "DOUBLE",
              "boolean": "BOOLEAN", "date": "DATE"}
    if name in simple:
        return simple[name]
    if name == "array":
        return _duck_type(data_type.elementType) + "[]"
    if name == "struct":
        return "STRUCT(" + ", ".join(f"{f.name} {_duck_type(f.dataType)}" for f in data_type.fields) + ")"
    raise TypeError(f"no DuckDB type for {data_type}")


def _utc_offsets(time_zone: str, first: dt.date, last: dt.date) -> list[tuple[int | None, int]]:
    """The zone's UTC offsets around ``[first, last]``: (UTC second the offset starts, offset seconds).

    The first piece starts at None (before everything). Offset changes (DST) are found on a 15-minute grid
    and placed to the second, from the IANA rules of Python's zoneinfo (the rules ICU and Java use too).
    """
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(time_zone)

    def offset(second: int) -> int:
        return int(dt.datetime.fromtimestamp(second, zone).utcoffset().total_seconds())

    begin = int(dt.datetime.combine(first - dt.timedelta(days=2), dt.time(), dt.timezone.utc).timestamp())
    end = int(dt.datetime.combine(last + dt.timedelta(days=3), dt.time(), dt.timezone.utc).timestamp())
    pieces: list[tuple[int | None, int]] = [(None, offset(begin))]
    previous = begin
    for second in range(begin + 900, end + 1, 900):
        if offset(second) != pieces[-1][1]:
            low, high = previous, second  # offset(low) is the old one, offset(high) the new one
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if offset(middle) == pieces[-1][1] else (low, middle)
            pieces.append((high, offset(high)))
        previous = second
    return pieces


def _local_hour_sql(us: str, time_zone: str, first: dt.date, last: dt.date) -> str:
    """SQL for the local hour in ``time_zone`` of the UTC instant ``us`` (microseconds) on ``[first, last]``.

    Explicit conversion with the zone's offsets over the days read (DST included), as plain integer
    arithmetic: no per-row time zone library call (ICU costs more than the whole scan).
    """
    pieces = _utc_offsets(time_zone, first, last)
    offset = str(pieces[0][1] * 1_000_000)
    if len(pieces) > 1:
        whens = " ".join(f"WHEN ({us}) < {start * 1_000_000} THEN {pieces[k][1] * 1_000_000}"
                         for k, (start, _) in enumerate(pieces[1:]))
        offset = f"(CASE {whens} ELSE {pieces[-1][1] * 1_000_000} END)"
    return f"((({us}) + {offset}) // 3600000000 % 24)"


def duckdb_user_features(con: duckdb.DuckDBPyConnection, lakehouse: str, day: dt.date,
                         settings: FeaturesConfig, time_zone: str) -> pa.Table:
    """``user_features`` of ``day`` computed by DuckDB SQL straight from the raw input tables.

    One row per person with an event, an order or a review (with text) in the 90 days to ``day``; the
    columns of ``portrait.schemas.USER_FEATURES`` in their order, with the values portrait computes.
    """
    start = day - dt.timedelta(days=LOOKBACK_DAYS - 1)
    context_age = _SESSION_DAYS  # the day before the 30-day session window, to continue sessions
    text_days = settings.text_window_days
    gap_limit = float(settings.session_gap_minutes * 60)
    top_k, max_tokens = settings.top_k, settings.max_tokens_per_user
    day_sql, start_sql = _date(day), _date(start)

    def table(name: str) -> str | None:
        path = os.path.join(lakehouse, name)
        return path if _is_delta(path) else None

    tokens_name = f"_pf_tokens_{uuid.uuid4().hex[:8]}"

    click_path = table("clickstream")
    if click_path is None:
        raise FileNotFoundError(f"no Delta table {lakehouse}/clickstream")
    click_files = delta_files(click_path)

    def clickstream(files: list[str]) -> str:
        return _scan(files, True,
                     "SELECT NULL::VARCHAR event_id, NULL::VARCHAR user_id, NULL::VARCHAR anonymous_id, "
                     "NULL::TIMESTAMP event_time, NULL::VARCHAR event_type, NULL::VARCHAR item_id, "
                     "NULL::VARCHAR category_id, NULL::VARCHAR brand, NULL::VARCHAR search_query, "
                     "NULL::VARCHAR channel, NULL::VARCHAR platform, NULL::DATE dt WHERE false")
    orders_path = table("orders")
    orders = _scan(_files_between(delta_files(orders_path), start, day) if orders_path else [], True,
                   "SELECT NULL::VARCHAR order_id, NULL::VARCHAR user_id, NULL::VARCHAR status, "
                   "NULL::VARCHAR category_id, NULL::INTEGER quantity, NULL::DOUBLE unit_price, "
                   "NULL::DOUBLE discount, NULL::DATE dt WHERE false")
    items_path, reviews_path, graph_path = table("items"), table("reviews"), table("identity_graph")
    items = _scan(delta_files(items_path) if items_path else [], False,
                  "SELECT NULL::VARCHAR item_id, NULL::VARCHAR title, NULL::VARCHAR category_id, "
                  "NULL::DOUBLE price WHERE false")
    reviews = _scan(_files_between(delta_files(reviews_path), start, day) if reviews_path else [], True,
                    "SELECT NULL::VARCHAR user_id, NULL::TIMESTAMP review_time, NULL::VARCHAR review_text, "
                    "NULL::DATE dt WHERE false")

    # Stitched person id (portrait.ingest.identity.stitch_person_id) when an identity graph exists.
    if graph_path:
        graph = _scan(delta_files(graph_path), False, "SELECT NULL::VARCHAR id, NULL::VARCHAR id_type, "
                      "NULL::VARCHAR person_id WHERE false")
        graph_cte = (f"g_user AS (SELECT id, any_value(person_id) AS person_id FROM {graph} "
                     f"WHERE id_type = 'user' GROUP BY id), "
                     f"g_device AS (SELECT id, any_value(person_id) AS person_id FROM {graph} "
                     f"WHERE id_type = 'anonymous' GROUP BY id)")

        def click_source(files: list[str]) -> str:
            return (f"(SELECT c.* REPLACE (coalesce(gu.person_id, c.user_id, gd.person_id) AS user_id) "
                    f"FROM {clickstream(files)} c LEFT JOIN g_user gu ON c.user_id = gu.id "
                    f"LEFT JOIN g_device gd ON c.anonymous_id = gd.id)")

        def stitched(source: str) -> str:
            return (f"(SELECT s.* REPLACE (coalesce(gu.person_id, s.user_id) AS user_id) FROM {source} s "
                    f"LEFT JOIN g_user gu ON s.user_id = gu.id)")
        orders_from, reviews_from = stitched(orders), stitched(reviews)
    else:
        graph_cte, click_source, orders_from, reviews_from = "", clickstream, orders, reviews

    # Instants as UTC microseconds whatever the Parquet type (Spark's INT96 reads as a naive UTC
    # TIMESTAMP, an adjusted-to-UTC TIMESTAMP as TIMESTAMPTZ; epoch_us is the instant for both).
    local_hour = _local_hour_sql("epoch_us(event_time)", time_zone, start, day)
    text_types = tuple(TEXT_EVENT_TYPES)
    reviews_in_window = f"""
        SELECT user_id, dt::DATE AS dt, ({day_sql} - dt::DATE)::INTEGER AS age,
               epoch_us(review_time) AS t, review_text
        FROM {reviews_from} WHERE dt::DATE BETWEEN {start_sql} AND {day_sql} AND review_text IS NOT NULL"""
    graph_prefix = f"{graph_cte}," if graph_path else ""
    try:
        # 1. The text vocabulary: distinct texts of non-bot person-days in the text window (a narrow read of
        #    five columns of those days' files), segmented once in Python with portrait's jieba segmentation.
        text_start = day - dt.timedelta(days=text_days - 1)
        text_clicks = click_source(_files_between(click_files, text_start, day))
        texts = con.execute(f"""
            WITH {graph_prefix}
            window_events AS (
                SELECT user_id, dt::DATE AS dt, event_type, item_id, search_query FROM {text_clicks}
                WHERE user_id IS NOT NULL AND dt::DATE BETWEEN {_date(text_start)} AND {day_sql}
            ),
            human AS (
                SELECT * FROM window_events ANTI JOIN (
                    SELECT user_id, dt FROM window_events GROUP BY user_id, dt
                    HAVING count(*) > {int(settings.bot_max_events_per_day)}) USING (user_id, dt)
            )
            SELECT DISTINCT text FROM (
                SELECT search_query AS text FROM human WHERE event_type = 'search' AND search_query IS NOT NULL
                UNION ALL
                SELECT i.title FROM (SELECT DISTINCT item_id FROM human WHERE event_type IN {text_types!r}) e
                JOIN {items} i USING (item_id) WHERE i.title IS NOT NULL
                UNION ALL
                SELECT review_text FROM ({reviews_in_window}) WHERE age < {text_days}
            )
        """).fetchall()
        distinct_texts = [row[0] for row in texts]
        segmented = list(_segment_series(pd.Series(distinct_texts, dtype=object), settings.min_token_length))
        # Documents are built as strings: a text's tokens joined by a separator no token holds (jieba splits
        # it off and it is not a word character), capped by token count, turned into spaces at the end.
        if any(_SEPARATOR in token for tokens in segmented for token in tokens):
            raise ValueError("a token contains the internal separator U+001F")
        con.register(tokens_name, pa.table({
            "text": pa.array(distinct_texts, type=pa.string()),
            "doc": pa.array([_SEPARATOR.join(tokens) for tokens in segmented], type=pa.string()),
            "n": pa.array([len(tokens) for tokens in segmented], type=pa.int64()),
        }))

        # 2. One query for the features, with the one scan of the clickstream's 90 days (``ev``).
        price_percentiles = f"""
            SELECT item_id,
                   CASE WHEN count(*) OVER (PARTITION BY category_id) = 1 THEN 0.5
                        ELSE percent_rank() OVER (PARTITION BY category_id ORDER BY price) END AS pp
            FROM {items} WHERE price IS NOT NULL AND category_id IS NOT NULL"""
        type_counts = ", ".join(f"count_if(event_type = {_quote(t)}) AS {name}" for t, name in COUNTED_EVENTS.items())
        daypart_counts = ", ".join(f"count_if(daypart = {i}) AS {part}" for i, part in enumerate(DAYPARTS))
        priced = f"event_type IN {tuple(_PRICED_TYPES)!r} AND p.pp IS NOT NULL"
        window_sums = []
        for w in WINDOWS_DAYS:
            window_sums.append(f"coalesce(sum(events) FILTER (WHERE age < {w}), 0) AS events_{w}d")
            window_sums += [f"coalesce(sum({name}) FILTER (WHERE age < {w}), 0) AS {name}_{w}d"
                            for name in COUNTED_EVENTS.values()]
        window_sums += [f"count(*) FILTER (WHERE age < {w} AND events > 0) AS active_days_{w}d" for w in (7, 30, 90)]
        window_sums += [f"coalesce(sum({part}) FILTER (WHERE age < 30), 0) AS {part}_30" for part in DAYPARTS]
        weight = _weight_case(settings.affinity_weights)
        half_life = float(settings.affinity_half_life_days)
        low_edge, high_edge = settings.price_tier_edges
        rules = settings.lifecycle
        events_30d = "coalesce(a.events_30d, 0)"
        price = _ratio("a.price_sum", "a.price_count")
        gap_mean = _ratio("s.session_seconds", "s.gaps")
        gap_variance = f"coalesce({_ratio('s.gap_sumsq', 's.gaps')} - ({gap_mean}) * ({gap_mean}), 0.0)"
        gap_cv = (f"CASE WHEN coalesce(s.gaps, 0) >= {int(settings.bot_min_gaps)} AND ({gap_mean}) > 0 "
                  f"THEN sqrt(greatest({gap_variance}, 0.0)) / ({gap_mean}) END")
        per_active_day = _ratio(events_30d, "a.active_days_30d")
        cart_to_buy = "CASE WHEN a.carts_30d > 0 THEN least(a.buys_30d::DOUBLE / a.carts_30d, 1.0) END"
        n, m, af, e = (f"a.{part}_30" for part in DAYPARTS)
        preferred_daypart = (f"CASE WHEN NOT ({events_30d} > 0) THEN NULL "
                             f"WHEN {n} >= {m} AND {n} >= {af} AND {n} >= {e} THEN {_quote(DAYPARTS[0])} "
                             f"WHEN {m} >= {af} AND {m} >= {e} THEN {_quote(DAYPARTS[1])} "
                             f"WHEN {af} >= {e} THEN {_quote(DAYPARTS[2])} ELSE {_quote(DAYPARTS[3])} END")
        count_columns = [f"events_{w}d" for w in WINDOWS_DAYS] + [
            f"{name}_{w}d" for w in WINDOWS_DAYS for name in COUNTED_EVENTS.values()] + [
            f"active_days_{w}d" for w in (7, 30, 90)]
        derived = {
            "user_id": "p.user_id",
            "days_since_first_event": "p.first_age",
            "days_since_last_event": "p.last_age",
            "days_since_last_order": "o.days_since_last_order",
            "orders_30d": "coalesce(o.orders_30d, 0)",
            "spend_30d": "coalesce(o.spend_30d, 0.0)",
            "orders_90d": "coalesce(o.orders_90d, 0)",
            "spend_90d": "coalesce(o.spend_90d, 0.0)",
            "avg_order_value_90d": _ratio("o.spend_90d", "o.orders_90d"),
            "mean_days_between_orders_90d": ("CASE WHEN o.order_days >= 2 THEN (o.first_order_age - "
                                             "o.days_since_last_order)::DOUBLE / (o.order_days - 1) END"),
            "repeat_purchase_rate_90d": _ratio("b.repeat_categories", "b.bought_categories"),
            "discount_order_share_90d": _ratio("o.discounted_orders", "o.orders_90d"),
            "refund_rate_90d": _ratio("o.returned_orders", "o.all_orders"),
            **{c: f"coalesce(a.{c}, 0)" for c in count_columns},
            "sessions_30d": "coalesce(s.sessions, 0)",
            "avg_session_minutes_30d": _ratio("s.session_seconds / 60.0", "s.sessions"),
            "events_per_session_30d": _ratio("coalesce(a.human_events_30d, 0)", "s.sessions"),
            "bounce_rate_30d": _ratio("s.bounces", "s.sessions"),
            "view_to_cart_rate_30d": _ratio("a.carts_30d", "a.views_30d"),
            "cart_to_buy_rate_30d": cart_to_buy,
            "cart_abandonment_rate_30d": f"1.0 - {cart_to_buy}",
            "search_to_buy_rate_30d": _ratio("sp.search_buy_segments", "sp.search_segments"),
            "top_category_30d": "ck.top_recent",
            "top_categories": "coalesce(ck.top_k, [])",
            "top_brands": "coalesce(bk.top_k, [])",
            "price_percentile_90d": price,
            "price_tier": (f"CASE WHEN {price} < {float(low_edge)!r} THEN 'low' WHEN {price} < {float(high_edge)!r} "
                           f"THEN 'mid' WHEN {price} IS NOT NULL THEN 'high' END"),
            **{f"{part}_share_30d": _ratio(f"a.{part}_30", events_30d) for part in DAYPARTS},
            "preferred_daypart": preferred_daypart,
            "weekend_share_30d": _ratio("a.weekend_30d", events_30d),
            "preferred_platform": "pk.top_recent",
            "preferred_channel": "lc.top_channel",
            "events_per_active_day_30d": per_active_day,
            "inter_event_gap_cv_30d": gap_cv,
            "bot_suspect": (f"coalesce(({per_active_day}) > {float(settings.bot_events_per_active_day)!r}, false) "
                            f"OR coalesce(a.bot_days_30d, false) "
                            f"OR coalesce(({gap_cv}) < {float(settings.bot_max_gap_cv)!r}, false)"),
            "lifecycle_stage": (f"CASE WHEN p.first_age <= {rules.new_max_tenure_days} THEN 'new' "
                                f"WHEN p.last_age <= {rules.active_max_idle_days} THEN 'active' "
                                f"WHEN p.last_age <= {rules.sleeping_max_idle_days} THEN 'sleeping' "
                                f"ELSE 'churned' END"),
            "text_document": "coalesce(tx.text_document, '')",
            "dt": day_sql,
        }
        missing = [f.name for f in USER_FEATURES.schema.fields if f.name not in derived]
        if missing:
            raise RuntimeError(f"columns without a DuckDB definition: {missing}")
        select_list = ",\n                ".join(
            f"CAST({derived[f.name]} AS {_duck_type(f.dataType)}) AS {f.name}" for f in USER_FEATURES.schema.fields)

        def keyed_top(source: str) -> str:
            """Per person: top_k keys by rounded decayed score and the key with the largest 30-day weight.

            ``max_by``/``arg_max`` over (value, key) structs: the largest value first, ties to the larger key,
            as portrait's ``sort_array(..., asc=False)`` over (value, key) structs.
            """
            return f"""
                SELECT user_id,
                       max_by({{'key': key, 'score': score}}, {{'score': score, 'key': key}}, {top_k})
                           FILTER (WHERE score > 0) AS top_k,
                       arg_max(key, {{'recent': recent, 'key': key}}) FILTER (WHERE recent > 0) AS top_recent
                FROM (SELECT user_id, key, round(decayed, 6) AS score, recent FROM {source})
                GROUP BY user_id"""

        query = f"""
        WITH {graph_prefix}
        -- The events of the 90 days: logged-in (or stitched) ones, used columns, local daypart.
        ev AS MATERIALIZED (
            SELECT user_id, dt::DATE AS dt, ({day_sql} - dt::DATE)::INTEGER AS age,
                   epoch_us(event_time) AS t, event_id, event_type, item_id, category_id, brand,
                   search_query, channel, platform, least({local_hour} // 6, 3)::TINYINT AS daypart
            FROM {click_source(_files_between(click_files, start, day))}
            WHERE user_id IS NOT NULL AND dt::DATE BETWEEN {start_sql} AND {day_sql}
        ),
        -- The per person-day rollup of events (rollups.py _event_counts) and the bot-day flag.
        daily AS MATERIALIZED (
            SELECT user_id, dt, any_value(age) AS age, count(*) AS events, {type_counts}, {daypart_counts},
                   coalesce(sum(p.pp) FILTER (WHERE {priced}), 0.0) AS price_sum,
                   count(*) FILTER (WHERE {priced}) AS price_count,
                   count(*) > {int(settings.bot_max_events_per_day)} AS bot_day
            FROM ev e LEFT JOIN ({price_percentiles}) p USING (item_id)
            GROUP BY user_id, dt
        ),
        -- Bot days are counted but take no part in sessions and text.
        human AS MATERIALIZED (
            SELECT * FROM ev ANTI JOIN (SELECT user_id, dt FROM daily WHERE bot_day) USING (user_id, dt)
        ),
        -- Sessions: the non-bot events of the 30 days and the day before, in time order.
        ordered AS (
            SELECT user_id, dt, age, t, event_id, event_type, channel,
                   (t - lag(t) OVER w) / 1e6 AS gap,
                   coalesce(lead(dt) OVER w = dt AND (lead(t) OVER w - t) / 1e6 <= {gap_limit!r}, false)
                       AS continues_today
            FROM human WHERE age <= {context_age}
            WINDOW w AS (PARTITION BY user_id ORDER BY t, event_id)
        ),
        flagged AS (SELECT *, gap IS NULL OR gap > {gap_limit!r} AS session_start FROM ordered),
        in_window AS (SELECT * FROM flagged WHERE age < {_SESSION_DAYS}),
        -- Session numbers, for session parts (a session's events on one day) with a search: only session
        -- starts and search/buy events matter, so the running count runs over those rows only.
        numbered AS (
            SELECT user_id, dt, age, event_type,
                   sum(session_start::INTEGER) OVER (
                       PARTITION BY user_id ORDER BY t, event_id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
                   ) AS session_number
            FROM flagged WHERE session_start OR event_type IN ('search', 'buy')
        ),
        s AS (
            SELECT user_id, count_if(session_start) AS sessions,
                   count_if(session_start AND NOT continues_today) AS bounces,
                   coalesce(sum(gap) FILTER (WHERE NOT session_start), 0.0) AS session_seconds,
                   count(gap) FILTER (WHERE NOT session_start) AS gaps,
                   coalesce(sum(gap * gap) FILTER (WHERE NOT session_start), 0.0) AS gap_sumsq
            FROM in_window GROUP BY user_id
        ),
        sp AS (
            SELECT user_id, count_if(has_search) AS search_segments,
                   count_if(has_search AND has_buy) AS search_buy_segments
            FROM (SELECT user_id, dt, session_number, bool_or(event_type = 'search') AS has_search,
                         bool_or(event_type = 'buy') AS has_buy
                  FROM numbered WHERE age < {_SESSION_DAYS} GROUP BY user_id, dt, session_number)
            GROUP BY user_id
        ),
        lc AS (
            SELECT user_id, arg_max(channel, {{'sessions': sessions, 'channel': channel}}) AS top_channel
            FROM (SELECT user_id, channel, count(*) AS sessions FROM in_window
                  WHERE session_start AND channel IS NOT NULL GROUP BY user_id, channel)
            GROUP BY user_id
        ),
        -- Interest per key: Σ weight·0.5^(age/half-life) over 90 days, and the undecayed 30-day weight.
        category_keys AS (SELECT user_id, key, sum(w * pow(0.5, age / {half_life!r})) AS decayed,
                                 coalesce(sum(w) FILTER (WHERE age < 30), 0.0) AS recent
                          FROM (SELECT user_id, age, category_id AS key, {weight} AS w FROM ev)
                          WHERE key IS NOT NULL AND w > 0 GROUP BY user_id, key),
        brand_keys AS (SELECT user_id, key, sum(w * pow(0.5, age / {half_life!r})) AS decayed,
                                 coalesce(sum(w) FILTER (WHERE age < 30), 0.0) AS recent
                          FROM (SELECT user_id, age, brand AS key, {weight} AS w FROM ev)
                          WHERE key IS NOT NULL AND w > 0 GROUP BY user_id, key),
        platform_keys AS (SELECT user_id, platform AS key, 0.0 AS decayed, count(*)::DOUBLE AS recent FROM ev
                          WHERE platform IS NOT NULL AND age < 30 GROUP BY user_id, platform),
        ck AS ({keyed_top('category_keys')}),
        bk AS ({keyed_top('brand_keys')}),
        pk AS ({keyed_top('platform_keys')}),
        -- Orders: one row per order (dt of its latest line), then per person-day, then per person.
        lines AS (SELECT user_id, order_id, status, category_id, quantity, unit_price, discount, dt::DATE AS dt
                  FROM {orders_from} WHERE dt::DATE BETWEEN {start_sql} AND {day_sql}),
        per_order AS (
            SELECT user_id, order_id, max(dt) AS dt, bool_or(status = 'paid') AS paid,
                   bool_or(status = 'refunded') AS refunded, bool_or(status = 'cancelled') AS cancelled,
                   sum(quantity * unit_price - discount) FILTER (WHERE status = 'paid') AS amount,
                   bool_or(status = 'paid' AND discount > 0) AS discounted
            FROM lines GROUP BY user_id, order_id
        ),
        order_days AS (
            SELECT user_id, ({day_sql} - dt)::INTEGER AS age, sum(paid::INTEGER) AS paid_orders,
                   coalesce(sum(amount), 0.0) AS paid_amount, sum(discounted::INTEGER) AS discounted_orders,
                   count(*) AS orders, sum(refunded::INTEGER) + sum(cancelled::INTEGER) AS returned
            FROM per_order GROUP BY user_id, dt
        ),
        o AS (
            SELECT user_id, min(age) AS last_age, max(age) AS first_age,
                   min(age) FILTER (WHERE paid_orders > 0) AS days_since_last_order,
                   max(age) FILTER (WHERE paid_orders > 0) AS first_order_age,
                   count(*) FILTER (WHERE paid_orders > 0) AS order_days,
                   coalesce(sum(paid_orders) FILTER (WHERE age < 30), 0) AS orders_30d,
                   coalesce(sum(paid_amount) FILTER (WHERE age < 30), 0.0) AS spend_30d,
                   sum(paid_orders) AS orders_90d, sum(paid_amount) AS spend_90d,
                   sum(discounted_orders) AS discounted_orders, sum(orders) AS all_orders,
                   sum(returned) AS returned_orders
            FROM order_days GROUP BY user_id
        ),
        b AS (
            SELECT user_id, count(*) AS bought_categories, count_if(days >= 2) AS repeat_categories
            FROM (SELECT l.user_id, l.category_id, count(DISTINCT po.dt) AS days
                  FROM lines l JOIN per_order po USING (user_id, order_id)
                  WHERE l.status = 'paid' AND l.category_id IS NOT NULL GROUP BY l.user_id, l.category_id)
            GROUP BY user_id
        ),
        -- Reviews (with text) make a person-day too.
        rv AS ({reviews_in_window}),
        r AS (SELECT user_id, min(age) AS last_age, max(age) AS first_age FROM rv GROUP BY user_id),
        -- Text: newest text first within a day, capped; days newest first, capped again.
        texts AS (
            SELECT user_id, dt, t, search_query AS text FROM human
            WHERE age < {text_days} AND event_type = 'search' AND search_query IS NOT NULL
            UNION ALL
            SELECT h.user_id, h.dt, h.t, i.title FROM human h JOIN {items} i USING (item_id)
            WHERE h.age < {text_days} AND h.event_type IN {text_types!r} AND i.title IS NOT NULL
            UNION ALL
            SELECT user_id, dt, t, review_text FROM rv WHERE age < {text_days}
        ),
        texts_n AS (SELECT x.user_id, x.dt, x.t, x.text, k.doc, k.n
                    FROM texts x JOIN {tokens_name} k USING (text) WHERE k.n > 0),
        -- Days newest first: a day whose newer days already hold max_tokens_per_user tokens adds nothing.
        needed_days AS (
            SELECT user_id, dt FROM (
                SELECT user_id, dt, coalesce(sum(n) OVER (
                           PARTITION BY user_id ORDER BY dt DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
                       ), 0) AS before
                FROM (SELECT user_id, dt, least(sum(n), {max_tokens}) AS n FROM texts_n GROUP BY user_id, dt))
            WHERE before < {max_tokens}
        ),
        text_days AS (
            -- Newest text first (ties: larger text), as portrait's sort_array over (time, text, tokens) desc.
            SELECT user_id, dt, sum(n) AS n, string_agg(doc, chr(31) ORDER BY t DESC, text DESC) AS doc
            FROM texts_n SEMI JOIN needed_days USING (user_id, dt) GROUP BY user_id, dt
        ),
        capped_days AS (
            SELECT user_id, dt, least(n, {max_tokens}) AS n,
                   CASE WHEN n > {max_tokens} THEN array_to_string(string_split(doc, chr(31))[1:{max_tokens}], chr(31))
                        ELSE doc END AS doc
            FROM text_days
        ),
        tx AS (
            SELECT user_id, replace(CASE WHEN n > {max_tokens}
                                         THEN array_to_string(string_split(doc, chr(31))[1:{max_tokens}], chr(31))
                                         ELSE doc END, chr(31), ' ') AS text_document
            FROM (SELECT user_id, sum(n) AS n, string_agg(doc, chr(31) ORDER BY dt DESC) AS doc
                  FROM capped_days GROUP BY user_id)
        ),
        -- Window sums over the person-day rollup.
        a AS (
            SELECT user_id, min(age) AS last_age, max(age) AS first_age,
                   {", ".join(window_sums)},
                   coalesce(sum(events) FILTER (WHERE age < 30 AND NOT bot_day), 0) AS human_events_30d,
                   bool_or(bot_day) FILTER (WHERE age < 30) AS bot_days_30d,
                   coalesce(sum(events) FILTER (WHERE age < 30 AND isodow(dt) IN (6, 7)), 0) AS weekend_30d,
                   sum(price_sum) AS price_sum, sum(price_count) AS price_count
            FROM daily GROUP BY user_id
        ),
        p AS (
            SELECT user_id, min(last_age) AS last_age, max(first_age) AS first_age FROM (
                SELECT user_id, last_age, first_age FROM a UNION ALL
                SELECT user_id, last_age, first_age FROM o UNION ALL
                SELECT user_id, last_age, first_age FROM r)
            GROUP BY user_id
        )
        SELECT
                {select_list}
        FROM p
        LEFT JOIN a USING (user_id) LEFT JOIN o USING (user_id) LEFT JOIN b USING (user_id)
        LEFT JOIN s USING (user_id) LEFT JOIN sp USING (user_id) LEFT JOIN lc USING (user_id)
        LEFT JOIN ck USING (user_id) LEFT JOIN bk USING (user_id) LEFT JOIN pk USING (user_id)
        LEFT JOIN tx USING (user_id)
        ORDER BY p.user_id
        """
        result = con.sql(query)
        return result.to_arrow_table() if hasattr(result, "to_arrow_table") else result.arrow()
    finally:
        with contextlib.suppress(Exception):  # not registered when an earlier step failed
            con.unregister(tokens_name)
