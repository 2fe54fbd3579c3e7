"""The data scientist's baseline: ``user_features`` with pandas and the propensity model with scikit-learn.

The performance benchmark compares portrait's Spark feature and training stages with the way a data
scientist usually starts: read the Delta tables into pandas, compute the same feature definitions
(docs/FEATURES.md) with vectorised pandas (groupby/agg, sort + diff/shift for sessions, merges), and fit
the textbook scikit-learn pipeline of ``bench/model_vs_sklearn.py`` (variant ``defaults``).

A single-node reference implementation of the same definitions, written for the benchmark and not under
test: no test compares its output with Spark's ``user_features``. Nor is it the test oracle:
``tests/reference_features.py`` computes the same columns event by event and is slow on purpose. This module
computes them at pandas speed, in one process, in memory: everything the 90 days to the feature date hold is
loaded at once.

- :func:`read_table`: a Delta table as pandas (``dt`` as ``datetime64``, timestamps as UTC ``datetime64``).
- :func:`pandas_user_features`: the ``user_features`` rows of one date from the raw input tables.
- :func:`pandas_labels`: the purchase label of :func:`portrait.model.training.label_purchases`.
- :func:`sklearn_propensity`: fit and evaluate the scikit-learn propensity pipeline.

Dates: every ``dt`` is ``datetime64`` (midnight); the ``day`` arguments accept a ``datetime.date`` or
anything ``pandas.Timestamp`` takes. Event times are UTC instants; hours of day are read in ``time_zone``.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from portrait.config import FeaturesConfig, ModelConfig
from portrait.features.dates import LOOKBACK_DAYS
from portrait.features.text import TEXT_EVENT_TYPES, _segment_series
from portrait.schemas import COUNTED_EVENTS, DAYPARTS, USER_FEATURES, WINDOWS_DAYS

_REPO = Path(__file__).resolve().parents[1]
_PRICED_TYPES = ("view", "cart", "buy")
# The columns the features read, per input table: pass them to read_table to load nothing else
# (clickstream's anonymous_id is needed only with an identity graph).
INPUT_COLUMNS: dict[str, list[str]] = {
    "clickstream": ["event_id", "user_id", "anonymous_id", "event_time", "event_type", "item_id", "category_id",
                    "brand", "search_query", "channel", "platform", "dt"],
    "orders": ["order_id", "user_id", "status", "category_id", "quantity", "unit_price", "discount", "dt"],
    "items": ["item_id", "title", "category_id", "price"],
    "reviews": ["user_id", "review_time", "review_text", "dt"],
    "identity_graph": ["id", "id_type", "person_id"],
}
_EVENT_COLUMNS = [c for c in INPUT_COLUMNS["clickstream"] if c != "anonymous_id"]


# --------------------------------------------------------------------------------------------- reading
def read_table(lakehouse: str, name: str, columns: list[str] | None = None,
               dates: tuple[dt.date, dt.date] | None = None) -> pd.DataFrame:
    """The Delta table ``name`` under ``lakehouse`` as pandas (``columns``: only these).

    ``dt`` (and any other date column) comes back as ``datetime64`` rather than ``datetime.date`` objects,
    so date arithmetic stays vectorised; timestamps stay UTC-aware ``datetime64[us, UTC]``. ``dates``
    (first, last), for a table partitioned by ``dt``: read only those partitions — the features of D need
    clickstream from D-90 and orders and reviews from D-89 (see :func:`input_dates`).
    """
    import deltalake

    table = deltalake.DeltaTable(str(Path(lakehouse) / name))
    if dates is None:
        arrow = table.to_pyarrow_table(columns=columns)
    else:
        import pyarrow as pa
        import pyarrow.dataset as ds

        first, last = (pa.scalar(d, type=pa.date32()) for d in dates)
        arrow = table.to_pyarrow_dataset().to_table(
            columns=columns, filter=(ds.field("dt") >= first) & (ds.field("dt") <= last))
    return arrow.to_pandas(date_as_object=False)


def input_dates(first_day: dt.date, last_day: dt.date) -> tuple[dt.date, dt.date]:
    """The ``dt`` range of input rows the features of ``first_day`` … ``last_day`` read (for read_table)."""
    return first_day - dt.timedelta(days=LOOKBACK_DAYS), last_day


def _as_day(day) -> pd.Timestamp:
    return pd.Timestamp(day).normalize()


def _ages(dates: pd.Series, day: pd.Timestamp) -> pd.Series:
    """Whole days from ``dates`` to ``day`` (0 on the day itself)."""
    return (day - dates).dt.days


# ------------------------------------------------------------------------------------------ identity
def _stitch(frame: pd.DataFrame, graph: pd.DataFrame | None) -> pd.DataFrame:
    """user_id → stitched person id (and anonymous events of a stitched device), as portrait's stitching."""
    if graph is None or frame.empty:
        return frame
    users = graph.loc[graph["id_type"] == "user"].drop_duplicates("id").set_index("id")["person_id"]
    person = frame["user_id"].map(users).fillna(frame["user_id"])
    if "anonymous_id" in frame.columns:
        devices = graph.loc[graph["id_type"] == "anonymous"].drop_duplicates("id").set_index("id")["person_id"]
        person = person.fillna(frame["anonymous_id"].map(devices))
    return frame.assign(user_id=person)


# --------------------------------------------------------------------------------------------- helpers
def _top_key(frame: pd.DataFrame, key: str, value: str) -> pd.Series:
    """Per user_id: the ``key`` with the largest positive ``value``; ties go to the larger key."""
    positive = frame.loc[frame[value] > 0, ["user_id", key, value]]
    best = positive.sort_values(["user_id", value, key], ascending=[True, False, False], kind="mergesort")
    return best.drop_duplicates("user_id").set_index("user_id")[key]


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    numerator, denominator = numerator.astype("float64"), denominator.astype("float64")
    return (numerator / denominator).where(denominator > 0)


def _round_half_up(values: pd.Series, digits: int) -> pd.Series:
    """Spark's ``round(double, digits)``: HALF_UP on the value's shortest decimal representation.

    ``numpy.round`` rounds the binary value half-to-even after scaling, which differs on exact halves such
    as 0.0000005; the decimal route is exact and runs once per (person, key), not per event.
    """
    from decimal import ROUND_HALF_UP, Decimal

    quantum = Decimal(1).scaleb(-digits)
    return values.map(lambda v: float(Decimal(repr(v)).quantize(quantum, rounding=ROUND_HALF_UP)))


def _scored_top_k(frame: pd.DataFrame, key: str, k: int) -> pd.Series:
    """Per user_id: the top-k ``key`` values by rounded decayed score, as lists of {key, score}."""
    scored = frame.groupby(["user_id", key], sort=False, observed=True)["decayed"].sum().reset_index()
    scored["score"] = _round_half_up(scored["decayed"], 6)
    scored = scored.loc[scored["score"] > 0]
    scored = scored.sort_values(["user_id", "score", key], ascending=[True, False, False], kind="mergesort")
    scored = scored.loc[scored.groupby("user_id", sort=False).cumcount() < k]
    entries = [{"key": name, "score": score} for name, score in zip(scored[key], scored["score"], strict=True)]
    return pd.Series(entries, index=scored["user_id"].to_numpy(), dtype=object).groupby(level=0, sort=False).agg(list)


# ----------------------------------------------------------------------------------------------- parts
def _order_features(orders: pd.DataFrame, day: pd.Timestamp) -> pd.DataFrame:
    """RFM and value columns (plus helpers) per user from the order lines of the 90 days to ``day``."""
    lines = orders.loc[:, ["user_id", "order_id", "status", "category_id", "quantity", "unit_price", "discount", "dt"]]
    paid_line = lines["status"].eq("paid")
    lines = lines.assign(
        paid=paid_line,
        refunded=lines["status"].eq("refunded"),
        cancelled=lines["status"].eq("cancelled"),
        amount=(lines["quantity"] * lines["unit_price"] - lines["discount"]).where(paid_line),
        discounted=paid_line & (lines["discount"] > 0),
    )
    per_order = lines.groupby(["user_id", "order_id"], sort=False).agg(
        dt=("dt", "max"), paid=("paid", "any"), refunded=("refunded", "any"), cancelled=("cancelled", "any"),
        amount=("amount", "sum"), discounted=("discounted", "any"),
    ).reset_index()
    per_order["age"] = _ages(per_order["dt"], day)
    paid = per_order.loc[per_order["paid"]]
    recent = paid.loc[paid["age"] < 30]
    out = pd.DataFrame({
        "orders_30d": recent.groupby("user_id").size(),
        "spend_30d": recent.groupby("user_id")["amount"].sum(),
        "orders_90d": paid.groupby("user_id").size(),
        "spend_90d": paid.groupby("user_id")["amount"].sum(),
        "days_since_last_order": paid.groupby("user_id")["age"].min(),
        "_first_order_age": paid.groupby("user_id")["age"].max(),
        "_order_days": paid.groupby("user_id")["age"].nunique(),
        "_discounted_orders_90d": paid.groupby("user_id")["discounted"].sum(),
        "_all_orders_90d": per_order.groupby("user_id").size(),
        "_returned_orders_90d": per_order.groupby("user_id")[["refunded", "cancelled"]].sum().sum(axis=1),
    })
    # Bought categories: categories of paid lines, on how many distinct (order) days each.
    bought = lines.loc[paid_line & lines["category_id"].notna(), ["user_id", "order_id", "category_id"]]
    bought = bought.merge(per_order[["user_id", "order_id", "dt"]], on=["user_id", "order_id"])
    days_per_category = bought.groupby(["user_id", "category_id"])["dt"].nunique()
    out["_bought_categories"] = days_per_category.groupby(level="user_id").size()
    out["_repeat_categories"] = (days_per_category >= 2).groupby(level="user_id").sum()
    return out


def _price_percentiles(items: pd.DataFrame) -> pd.Series:
    """item_id → the catalogue price's percent rank within its category (a category's only item: 0.5)."""
    priced = items.loc[items["price"].notna() & items["category_id"].notna(), ["item_id", "category_id", "price"]]
    by_category = priced.groupby("category_id")["price"]
    size = by_category.transform("size")
    rank = by_category.rank(method="min")
    percentile = ((rank - 1) / (size - 1)).where(size > 1, 0.5)
    return pd.Series(percentile.to_numpy(), index=priced["item_id"].to_numpy())


def _session_features(humans: pd.DataFrame, gap_limit: float) -> pd.DataFrame:
    """Session columns per user from human (non-bot-day) events of the 30 days to D and the day before.

    Sort by (user, time, event id), diff for the gap to the previous event: a gap above the limit (or a
    person's first event) starts a session; a session runs over midnight and counts on its start day.
    """
    ordered = humans.sort_values(["user_id", "event_time", "event_id"], kind="mergesort", ignore_index=True)
    user = ordered["user_id"]
    same_user_before = user.eq(user.shift())
    same_user_after = user.eq(user.shift(-1))
    micros = ordered["event_time"].dt.as_unit("us").astype("int64").to_numpy()  # UTC instants in µs
    gap = pd.Series(np.diff(micros, prepend=micros[:1]) / 1e6).where(same_user_before)
    next_gap = gap.shift(-1).where(same_user_after)
    start = gap.isna() | (gap > gap_limit)
    continues_today = same_user_after & ordered["dt"].eq(ordered["dt"].shift(-1)) & (next_gap <= gap_limit)
    session = start.cumsum()
    frame = pd.DataFrame({
        "user_id": user, "dt": ordered["dt"], "age": ordered["age"], "session": session,
        "start": start, "bounce": start & ~continues_today,
        "in_gap": gap.where(~start), "channel": ordered["channel"],
        "search": ordered["event_type"].eq("search"), "buy": ordered["event_type"].eq("buy"),
    })
    frame = frame.loc[frame["age"] < 30]  # the day before the window only continued sessions
    frame["in_gap_sq"] = frame["in_gap"] ** 2
    per_user = frame.groupby("user_id").agg(
        sessions_30d=("start", "sum"), _bounces_30d=("bounce", "sum"),
        _session_seconds_30d=("in_gap", "sum"), _gaps_30d=("in_gap", "count"),
        _gap_sumsq_30d=("in_gap_sq", "sum"),
    )
    # A session part is the share of one session on one day.
    parts = frame.groupby(["user_id", "session", "dt"], sort=False).agg(search=("search", "any"), buy=("buy", "any"))
    parts["search_buy"] = parts["search"] & parts["buy"]
    part_counts = parts.groupby(level="user_id")[["search", "search_buy"]].sum()
    per_user["_search_segments_30d"] = part_counts["search"]
    per_user["_search_buy_segments_30d"] = part_counts["search_buy"]
    landings = frame.loc[frame["start"] & frame["channel"].notna()]
    landing_counts = landings.groupby(["user_id", "channel"]).size().rename("n").reset_index()
    per_user["preferred_channel"] = _top_key(landing_counts, "channel", "n")
    return per_user


def _text_documents(humans: pd.DataFrame, reviews: pd.DataFrame | None, items: pd.DataFrame | None,
                    settings: FeaturesConfig) -> pd.Series:
    """Per user: tokens of the text window, newest day first, newest text first, capped per day and overall."""
    window = settings.text_window_days
    recent = humans.loc[humans["age"] < window]
    searches = recent.loc[recent["event_type"].eq("search") & recent["search_query"].notna(),
                          ["user_id", "dt", "event_time", "search_query"]].rename(columns={"search_query": "text"})
    texts = [searches]
    if items is not None:
        titles = items.loc[items["title"].notna(), ["item_id", "title"]].drop_duplicates("item_id")
        acted = recent.loc[recent["event_type"].isin(TEXT_EVENT_TYPES), ["user_id", "dt", "event_time", "item_id"]]
        texts.append(acted.merge(titles, on="item_id").drop(columns="item_id").rename(columns={"title": "text"}))
    if reviews is not None:
        written = reviews.loc[(reviews["age"] < window) & reviews["review_text"].notna(),
                              ["user_id", "dt", "review_time", "review_text"]]
        texts.append(written.rename(columns={"review_time": "event_time", "review_text": "text"}))
    texts = pd.concat(texts, ignore_index=True)
    # Segment each distinct text once (jieba), then map the token lists back.
    distinct = pd.Series(texts["text"].unique(), dtype=object)
    segmented = pd.Series(_segment_series(distinct, settings.min_token_length).to_numpy(), index=distinct.to_numpy())
    texts = texts.sort_values(["user_id", "dt", "event_time", "text"], ascending=[True, False, False, False],
                              kind="mergesort", ignore_index=True)
    texts["tokens"] = texts["text"].map(segmented)
    tokens = texts[["user_id", "dt", "tokens"]].explode("tokens").dropna(subset=["tokens"])
    tokens = tokens.loc[tokens.groupby(["user_id", "dt"], sort=False).cumcount() < settings.max_tokens_per_user]
    tokens = tokens.loc[tokens.groupby("user_id", sort=False).cumcount() < settings.max_tokens_per_user]
    return tokens.groupby("user_id", sort=False)["tokens"].agg(" ".join)


# -------------------------------------------------------------------------------------------- features
def pandas_user_features(tables: dict[str, pd.DataFrame], day: dt.date, settings: FeaturesConfig,
                         time_zone: str) -> pd.DataFrame:
    """``user_features`` of ``day`` from the raw input tables, vectorised pandas.

    ``tables``: ``clickstream`` and ``orders`` (required), ``items`` and ``reviews`` (optional) as returned
    by :func:`read_table` (any dates; the 90 days to ``day`` are taken), ``identity_graph`` (optional: ids
    are then stitched to person ids as portrait does). Returns the USER_FEATURES columns, one row per person
    with an event, order or review in the 90 days to ``day``, sorted by ``user_id``.
    """
    day = _as_day(day)
    graph = tables.get("identity_graph")
    items, reviews = tables.get("items"), tables.get("reviews")

    # ---- inputs of the window: 90 days, plus the day before for sessions
    clicks = tables["clickstream"]
    clicks = clicks.loc[(clicks["dt"] <= day) & (clicks["dt"] >= day - pd.Timedelta(days=LOOKBACK_DAYS))]
    clicks = _stitch(clicks, graph)
    clicks = clicks.loc[clicks["user_id"].notna(), _EVENT_COLUMNS]
    clicks["age"] = _ages(clicks["dt"], day)
    day_events = clicks.groupby(["user_id", "age"], sort=False)["age"].transform("size")
    clicks["bot_day"] = day_events > settings.bot_max_events_per_day
    events = clicks.loc[clicks["age"] < LOOKBACK_DAYS]

    orders = tables["orders"]
    orders = _stitch(orders.loc[(orders["dt"] <= day) & (orders["dt"] > day - pd.Timedelta(days=LOOKBACK_DAYS))],
                     graph)
    if reviews is not None:
        reviews = reviews.loc[(reviews["dt"] <= day) & (reviews["dt"] > day - pd.Timedelta(days=LOOKBACK_DAYS))
                              & reviews["review_text"].notna()]
        reviews = _stitch(reviews, graph).assign(age=lambda r: _ages(r["dt"], day))

    # ---- the people, first and last activity (events, orders, reviews)
    activity = [events[["user_id", "age"]], orders[["user_id"]].assign(age=_ages(orders["dt"], day))]
    if reviews is not None:
        activity.append(reviews[["user_id", "age"]])
    activity = pd.concat(activity, ignore_index=True).groupby("user_id")["age"].agg(["max", "min"])
    out = pd.DataFrame({"days_since_first_event": activity["max"], "days_since_last_event": activity["min"]})
    out.index.name = "user_id"

    # ---- orders
    out = out.join(_order_features(orders, day))

    # ---- counts per window: events per (user, day, type) first, then windows over that small table
    per_day = events.groupby(["user_id", "age", "event_type"], sort=False).size().unstack(fill_value=0)
    per_day = per_day.reindex(columns=list(COUNTED_EVENTS), fill_value=0)
    per_day["events"] = events.groupby(["user_id", "age"], sort=False).size()
    per_day = per_day.reset_index()
    for window in WINDOWS_DAYS:
        in_window = per_day.loc[per_day["age"] < window].groupby("user_id")
        out[f"events_{window}d"] = in_window["events"].sum()
        for event_type, name in COUNTED_EVENTS.items():
            out[f"{name}_{window}d"] = in_window[event_type].sum()
        if window in (7, 30, 90):
            out[f"active_days_{window}d"] = in_window.size()

    # ---- sessions (non-bot days only), from the day before the 30 days on
    gap_limit = settings.session_gap_minutes * 60.0
    out = out.join(_session_features(clicks.loc[~clicks["bot_day"] & (clicks["age"] <= 30)], gap_limit))
    recent = events.loc[events["age"] < 30]
    out["_human_events_30d"] = recent.loc[~recent["bot_day"]].groupby("user_id").size()
    out["_bot_days_30d"] = recent.groupby("user_id")["bot_day"].any()

    # ---- dayparts, weekend, platform (30 days)
    hours = recent["event_time"].dt.tz_convert(time_zone).dt.hour
    dayparts = pd.crosstab(recent["user_id"], np.minimum(hours.to_numpy() // 6, 3))
    for index, part in enumerate(DAYPARTS):
        out[f"_{part}_30d"] = dayparts[index] if index in dayparts.columns else 0
    out["_weekend_30d"] = recent.loc[recent["dt"].dt.dayofweek >= 5].groupby("user_id").size()
    platforms = recent.loc[recent["platform"].notna()].groupby(["user_id", "platform"]).size().rename("n").reset_index()
    out["preferred_platform"] = _top_key(platforms, "platform", "n")

    # ---- interest: decayed category/brand scores (90 days), undecayed top category (30 days)
    weights = events["event_type"].map(settings.affinity_weights).fillna(0.0)
    weighted = events.assign(weight=weights).loc[weights > 0, ["user_id", "age", "category_id", "brand", "weight"]]
    weighted["decayed"] = weighted["weight"] * 0.5 ** (weighted["age"] / float(settings.affinity_half_life_days))
    categories = weighted.loc[weighted["category_id"].notna()]
    recent_categories = (categories.loc[categories["age"] < 30].groupby(["user_id", "category_id"])["weight"].sum()
                         .reset_index())
    out["top_category_30d"] = _top_key(recent_categories, "category_id", "weight")
    out["top_categories"] = _scored_top_k(categories, "category_id", settings.top_k)
    out["top_brands"] = _scored_top_k(weighted.loc[weighted["brand"].notna()], "brand", settings.top_k)

    # ---- price percentile (90 days)
    if items is not None:
        percentile = events.loc[events["event_type"].isin(_PRICED_TYPES), ["user_id", "item_id"]]
        percentile = percentile.assign(p=percentile["item_id"].map(_price_percentiles(items))).dropna(subset=["p"])
        out["_price_sum_90d"] = percentile.groupby("user_id")["p"].sum()
        out["_price_count_90d"] = percentile.groupby("user_id").size()
    else:
        out["_price_sum_90d"], out["_price_count_90d"] = 0.0, 0

    # ---- text
    text_humans = clicks.loc[~clicks["bot_day"] & (clicks["age"] < settings.text_window_days)]
    out["text_document"] = _text_documents(text_humans, reviews, items, settings)

    # ---- missing means zero / empty
    counts = [c for c in USER_FEATURES.columns if c.endswith(("_1d", "_7d", "_30d", "_90d"))
              and USER_FEATURES.schema[c].dataType.typeName() == "long"]
    zero = [*counts, "spend_30d", "spend_90d", "_discounted_orders_90d", "_all_orders_90d", "_returned_orders_90d",
            "_bought_categories", "_repeat_categories", "_order_days", "_session_seconds_30d", "_bounces_30d",
            "_gaps_30d", "_gap_sumsq_30d", "_search_segments_30d", "_search_buy_segments_30d", "_human_events_30d",
            "_weekend_30d", "_price_sum_90d", "_price_count_90d", *[f"_{part}_30d" for part in DAYPARTS]]
    out[zero] = out[zero].fillna(0)
    out["_bot_days_30d"] = out["_bot_days_30d"].astype("boolean").fillna(False).astype(bool)
    out["text_document"] = out["text_document"].fillna("")
    for column in ("top_categories", "top_brands"):
        out[column] = out[column].map(lambda v: v if isinstance(v, list) else [])

    # ---- derived columns (portrait/features/windows.py::_derived)
    events_30d, sessions = out["events_30d"], out["sessions_30d"]
    out["avg_order_value_90d"] = _ratio(out["spend_90d"], out["orders_90d"])
    out["mean_days_between_orders_90d"] = (
        (out["_first_order_age"] - out["days_since_last_order"]) / (out["_order_days"] - 1)
    ).where(out["_order_days"] >= 2)
    out["repeat_purchase_rate_90d"] = _ratio(out["_repeat_categories"], out["_bought_categories"])
    out["discount_order_share_90d"] = _ratio(out["_discounted_orders_90d"], out["orders_90d"])
    out["refund_rate_90d"] = _ratio(out["_returned_orders_90d"], out["_all_orders_90d"])
    out["avg_session_minutes_30d"] = _ratio(out["_session_seconds_30d"] / 60.0, sessions)
    out["events_per_session_30d"] = _ratio(out["_human_events_30d"], sessions)
    out["bounce_rate_30d"] = _ratio(out["_bounces_30d"], sessions)
    out["view_to_cart_rate_30d"] = _ratio(out["carts_30d"], out["views_30d"])
    out["cart_to_buy_rate_30d"] = _ratio(out["buys_30d"], out["carts_30d"]).clip(upper=1.0)
    out["cart_abandonment_rate_30d"] = 1.0 - out["cart_to_buy_rate_30d"]
    out["search_to_buy_rate_30d"] = _ratio(out["_search_buy_segments_30d"], out["_search_segments_30d"])
    price = _ratio(out["_price_sum_90d"], out["_price_count_90d"])
    low, high = settings.price_tier_edges
    out["price_percentile_90d"] = price
    out["price_tier"] = pd.Series(np.select([price < low, price < high, price.notna()], ["low", "mid", "high"],
                                            default=None), index=out.index, dtype=object)
    parts = out[[f"_{part}_30d" for part in DAYPARTS]].to_numpy()
    for part in DAYPARTS:
        out[f"{part}_share_30d"] = _ratio(out[f"_{part}_30d"], events_30d)
    preferred = np.asarray(DAYPARTS, dtype=object)[parts.argmax(axis=1)]  # argmax: first (earliest) of ties
    out["preferred_daypart"] = pd.Series(preferred, index=out.index, dtype=object).where(events_30d > 0, None)
    out["weekend_share_30d"] = _ratio(out["_weekend_30d"], events_30d)
    per_active_day = _ratio(events_30d, out["active_days_30d"])
    out["events_per_active_day_30d"] = per_active_day
    gaps = out["_gaps_30d"]
    gap_mean = _ratio(out["_session_seconds_30d"], gaps)
    variance = (_ratio(out["_gap_sumsq_30d"], gaps) - gap_mean * gap_mean).clip(lower=0.0)
    cv = (np.sqrt(variance) / gap_mean).where((gaps >= settings.bot_min_gaps) & (gap_mean > 0))
    out["inter_event_gap_cv_30d"] = cv
    out["bot_suspect"] = ((per_active_day > settings.bot_events_per_active_day).fillna(False)
                          | out["_bot_days_30d"] | (cv < settings.bot_max_gap_cv).fillna(False)).astype(bool)
    rules = settings.lifecycle
    out["lifecycle_stage"] = np.select(
        [out["days_since_first_event"] <= rules.new_max_tenure_days,
         out["days_since_last_event"] <= rules.active_max_idle_days,
         out["days_since_last_event"] <= rules.sleeping_max_idle_days],
        ["new", "active", "sleeping"], default="churned").astype(object)
    out["dt"] = day

    # ---- types of the contract
    out = out.reset_index()
    for field in USER_FEATURES.schema.fields:
        kind = field.dataType.typeName()
        if kind == "long":
            out[field.name] = out[field.name].astype("int64")
        elif kind == "integer":
            out[field.name] = out[field.name].astype("int32" if not field.nullable else "Int32")
        elif kind == "double":
            out[field.name] = out[field.name].astype("float64")
    return out[USER_FEATURES.columns].sort_values("user_id", ignore_index=True)


# ---------------------------------------------------------------------------------------------- labels
def pandas_labels(orders: pd.DataFrame, day, horizon_days: int) -> pd.Series:
    """Per user_id of ``orders``: 1 when the user has a paid order dated in (day, day + horizon_days], else 0.

    Index the result by the feature rows' users with ``.reindex(features["user_id"], fill_value=0)``.
    """
    day = _as_day(day)
    in_horizon = (orders["status"].eq("paid") & (orders["dt"] > day)
                  & (orders["dt"] <= day + pd.Timedelta(days=horizon_days)))
    return in_horizon.groupby(orders["user_id"]).any().astype("int64").rename("label")


# ----------------------------------------------------------------------------------------------- model
def _model_vs_sklearn():
    """bench/model_vs_sklearn.py as a module (``bench/`` is not a package)."""
    name = "portrait_bench_model_vs_sklearn"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, _REPO / "bench" / "model_vs_sklearn.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def sklearn_propensity(train: pd.DataFrame, y_train, test: pd.DataFrame, y_test, seed: int = 7,
                       settings: ModelConfig | None = None) -> dict:
    """Fit and evaluate the textbook scikit-learn propensity model (model_vs_sklearn.py, variant ``defaults``).

    log1p numeric features, one-hot categoricals, ``HashingVectorizer`` → ``TfidfTransformer`` on
    ``text_document``, ``SelectKBest(chi2)`` with ``model.selected_text_features``, ``MaxAbsScaler``,
    ``LogisticRegression(liblinear)``. ``settings``: the model section (default: conf/local.yml's). ``seed``
    seeds numpy's global generator (liblinear's shuffling uses it; the pipeline is otherwise deterministic).
    Returns ``fit_seconds``, ``auc_roc``, ``rows_train``, ``rows_test``.
    """
    if settings is None:
        from portrait.config import load_config

        settings = load_config(_REPO / "conf" / "local.yml").model
    import sklearn.feature_extraction.text  # noqa: F401  imported before the clock starts, like the Spark
    import sklearn.feature_selection  # noqa: F401          session exists before its fit is timed
    import sklearn.linear_model  # noqa: F401

    np.random.seed(seed)
    bench = _model_vs_sklearn()
    labelled_train = train.assign(label=np.asarray(y_train, dtype="float64"))
    labelled_test = test.assign(label=np.asarray(y_test, dtype="float64"))
    started = time.monotonic()
    result = bench.sklearn_fit_and_score(labelled_train, labelled_test, settings, "defaults")
    return {"fit_seconds": result["fit_seconds"], "auc_roc": result["auc_roc"],
            "rows_train": len(train), "rows_test": len(test),
            "fit_and_score_seconds": round(time.monotonic() - started, 2)}
