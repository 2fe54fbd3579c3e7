"""Tests of the synthetic data generator: contracts, consistency between tables, realism, signal."""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from pyspark.sql import types as T

from portrait import schemas
from portrait.generate import (
    INTENT_TERMS,
    PERSONA_SHARES,
    arrow_schema,
    generate_tables,
)
from portrait.generate.history import purchase_history

END = datetime.date(2024, 6, 30)
USERS, DAYS, SEED = 300, 20, 7
FIRST = END - datetime.timedelta(days=DAYS - 1)
CONTRACTS = {c.name: c for c in schemas.INPUT_TABLES}


@pytest.fixture(scope="module")
def tables() -> dict[str, pa.Table]:
    return generate_tables(users=USERS, days=DAYS, end_date=END, seed=SEED)


@pytest.fixture(scope="module")
def frames(tables: dict[str, pa.Table]) -> dict[str, pd.DataFrame]:
    return {name: table.to_pandas() for name, table in tables.items()}


def _ipc_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _bots(clicks: pd.DataFrame) -> set[str]:
    """Users with at least 100 views on some day: only crawlers browse like that."""
    views = clicks[clicks.event_type == "view"].groupby(["user_id", "dt"]).size()
    return set(views[views >= 100].index.get_level_values("user_id"))


def _auc(score: pd.Series, positive: np.ndarray) -> float:
    """Area under the ROC curve via the rank-sum statistic (ties get average ranks)."""
    ranks = score.rank().to_numpy()
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


# ---------------------------------------------------------------------------------------------
# Determinism and schemas
# ---------------------------------------------------------------------------------------------
def test_same_arguments_give_byte_identical_tables(tables: dict[str, pa.Table]) -> None:
    again = generate_tables(users=USERS, days=DAYS, end_date=END, seed=SEED)
    assert again.keys() == tables.keys()
    for name, table in tables.items():
        assert again[name].equals(table), name
        assert _ipc_bytes(again[name]) == _ipc_bytes(table), name


def test_another_seed_gives_other_data(tables: dict[str, pa.Table]) -> None:
    other = generate_tables(users=USERS, days=DAYS, end_date=END, seed=SEED + 1)
    assert not other["clickstream"].equals(tables["clickstream"])
    assert not other["orders"].equals(tables["orders"])
    shared_ids = set(other["clickstream"]["event_id"].to_pylist()) & set(tables["clickstream"]["event_id"].to_pylist())
    assert len(shared_ids) < 10


def test_arrow_schema_maps_spark_types() -> None:
    schema = arrow_schema(schemas.CLICKSTREAM)
    assert schema.names == schemas.CLICKSTREAM.columns
    assert schema.field("event_id").type == pa.string() and not schema.field("event_id").nullable
    assert schema.field("user_id").nullable
    assert schema.field("event_time").type == pa.timestamp("us", tz="UTC")
    assert schema.field("price").type == pa.float64()
    assert schema.field("dt").type == pa.date32()
    assert schema.field("dt").metadata == {b"comment": schemas.CLICKSTREAM.comment("dt").encode()}
    orders = arrow_schema(schemas.ORDERS)
    assert orders.field("line_number").type == pa.int32()
    assert orders.field("quantity").type == pa.int32()
    features = arrow_schema(schemas.USER_FEATURES)
    assert features.field("orders_30d").type == pa.int64()
    nested = arrow_schema(
        T.StructType(
            [
                T.StructField("tags", T.ArrayType(T.StringType(), False), False),
                T.StructField("scores", T.ArrayType(T.DoubleType(), True), True),
            ]
        )
    )
    tags, scores = nested.field("tags"), nested.field("scores")
    assert not tags.nullable and tags.type.value_type == pa.string() and not tags.type.value_field.nullable
    assert scores.nullable and scores.type.value_type == pa.float64() and scores.type.value_field.nullable


def test_returns_exactly_the_input_tables(tables: dict[str, pa.Table]) -> None:
    assert set(tables) == {"clickstream", "orders", "items", "users", "reviews"}


# How each Spark type of the input contracts is stored in Arrow, written out here (not taken from arrow_schema,
# which the generator itself uses): Spark reads these back as the contract's types.
ARROW_OF_SPARK = {"string": pa.string(), "timestamp": pa.timestamp("us", tz="UTC"), "date": pa.date32(),
                  "int": pa.int32(), "double": pa.float64()}


@pytest.mark.parametrize("name", ["clickstream", "orders", "items", "users", "reviews"])
def test_table_carries_contract_schema(tables: dict[str, pa.Table], name: str) -> None:
    table, contract = tables[name], CONTRACTS[name]
    assert table.column_names == contract.columns
    for field in contract.schema.fields:
        stored = table.schema.field(field.name)
        assert stored.type == ARROW_OF_SPARK[field.dataType.simpleString()], f"{name}.{field.name}"
        assert stored.nullable == field.nullable, f"{name}.{field.name}"
        assert stored.metadata == {b"comment": field.metadata["comment"].encode()}, f"{name}.{field.name}"
    assert table.schema.metadata is None
    assert table.num_rows > 0


@pytest.mark.parametrize("name", ["clickstream", "orders", "items", "users", "reviews"])
def test_non_nullable_columns_have_no_nulls(tables: dict[str, pa.Table], name: str) -> None:
    table = tables[name]
    for field in CONTRACTS[name].schema.fields:
        if not field.nullable:
            assert table[field.name].null_count == 0, f"{name}.{field.name}"


def test_ids_are_unique(frames: dict[str, pd.DataFrame]) -> None:
    assert frames["clickstream"].event_id.is_unique
    assert not frames["orders"].duplicated(["order_id", "line_number"]).any()
    assert frames["reviews"].review_id.is_unique
    assert frames["items"].item_id.is_unique
    assert frames["users"].user_id.is_unique


def test_invalid_arguments_are_rejected() -> None:
    with pytest.raises(ValueError):
        generate_tables(users=0, days=5, end_date=END, seed=1)
    with pytest.raises(ValueError):
        generate_tables(users=10, days=0, end_date=END, seed=1)


# ---------------------------------------------------------------------------------------------
# Code lists, dates and time zones
# ---------------------------------------------------------------------------------------------
def test_codes_within_contract(frames: dict[str, pd.DataFrame]) -> None:
    clicks, orders, reviews = frames["clickstream"], frames["orders"], frames["reviews"]
    assert set(clicks.event_type) == set(schemas.EVENT_TYPES)
    assert set(orders.status) <= set(schemas.ORDER_STATUSES)
    assert "paid" in set(orders.status) and len(set(orders.status)) >= 2
    assert set(clicks.channel) == {"organic", "ads", "email", "social", "direct"}
    assert set(clicks.platform) == {"app", "web", "mini_program"}
    assert orders.quantity.between(1, 3).all()
    assert (orders.discount >= 0).all()
    assert (orders.discount < orders.quantity * orders.unit_price).all()
    assert (orders.unit_price > 0).all()
    assert reviews.rating.between(1, 5).all()


@pytest.mark.parametrize(
    ("time_zone", "end_date"),
    [("Asia/Shanghai", END), ("America/New_York", datetime.date(2024, 3, 20)), ("UTC", END)],
)
def test_dt_is_local_date_of_the_instant_within_the_window(time_zone: str, end_date: datetime.date) -> None:
    # Enough users that some sessions run past midnight, also on the last day.
    days = 10
    result = generate_tables(users=2000, days=days, end_date=end_date, seed=3, time_zone=time_zone)
    first = end_date - datetime.timedelta(days=days - 1)
    zone = ZoneInfo(time_zone)
    for name, time_column in (("clickstream", "event_time"), ("orders", "order_time"), ("reviews", "review_time")):
        frame = result[name].to_pandas()
        assert len(frame) > 0, name
        local = frame[time_column].dt.tz_convert(zone).dt.date
        assert (local == frame.dt).all(), name
        assert frame.dt.min() >= first and frame.dt.max() <= end_date, name
    # The clickstream spans the whole window, one local day after the other.
    dates = set(result["clickstream"].to_pandas().dt)
    assert dates == {first + datetime.timedelta(days=i) for i in range(days)}


def test_sessions_start_mostly_at_local_daytime(frames: dict[str, pd.DataFrame]) -> None:
    clicks = frames["clickstream"]
    humans = clicks[~clicks.user_id.isin(_bots(clicks))]
    hours = humans.event_time.dt.tz_convert(ZoneInfo("Asia/Shanghai")).dt.hour
    evening = hours.between(19, 22).mean()
    night = hours.between(2, 5).mean()
    assert evening > 4 * night


# ---------------------------------------------------------------------------------------------
# Consistency between tables
# ---------------------------------------------------------------------------------------------
def test_each_buy_event_is_one_order_line_and_vice_versa(frames: dict[str, pd.DataFrame]) -> None:
    clicks, orders = frames["clickstream"], frames["orders"]
    buys = clicks[clicks.event_type == "buy"]
    assert len(buys) > 0
    assert buys.user_id.notna().all()
    keys = ["user_id", "item_id", "time", "price"]
    from_events = buys.rename(columns={"event_time": "time"})[keys]
    from_orders = orders.rename(columns={"order_time": "time", "unit_price": "price"})[keys]
    from_events = from_events.sort_values(keys).reset_index(drop=True)
    from_orders = from_orders.sort_values(keys).reset_index(drop=True)
    pd.testing.assert_frame_equal(from_events, from_orders, check_dtype=False)
    # Same category on both sides.
    assert sorted(buys.category_id) == sorted(orders.category_id)


def test_orders_are_well_formed(frames: dict[str, pd.DataFrame]) -> None:
    orders = frames["orders"]
    per_order = orders.groupby("order_id").agg(
        users=("user_id", "nunique"), times=("order_time", "nunique"), statuses=("status", "nunique"),
        lines=("line_number", "size"), first=("line_number", "min"), last=("line_number", "max"),
    )
    assert (per_order.users == 1).all()
    assert (per_order.times == 1).all()
    assert (per_order.statuses == 1).all()
    assert (per_order["first"] == 1).all() and (per_order["last"] == per_order.lines).all()
    assert per_order.lines.max() >= 2  # multi-line orders happen
    shares = orders.drop_duplicates("order_id").status.value_counts(normalize=True)
    assert 0.8 < shares["paid"] < 0.97


def test_events_refer_to_catalogue_items(frames: dict[str, pd.DataFrame]) -> None:
    clicks, items = frames["clickstream"], frames["items"].set_index("item_id")
    with_item = clicks[clicks.item_id.notna()]
    assert with_item.item_id.isin(items.index).all()
    assert (with_item.category_id.to_numpy() == items.category_id.loc[with_item.item_id].to_numpy()).all()
    assert (with_item.brand.to_numpy() == items.brand.loc[with_item.item_id].to_numpy()).all()
    assert np.allclose(with_item.price.to_numpy(), items.price.loc[with_item.item_id].to_numpy())
    assert frames["orders"].item_id.isin(items.index).all()
    assert frames["reviews"].item_id.isin(items.index).all()


def test_every_user_reference_is_a_known_user(frames: dict[str, pd.DataFrame]) -> None:
    known = set(frames["users"].user_id)
    assert len(known) == USERS
    assert set(frames["clickstream"].user_id.dropna()) <= known
    assert set(frames["orders"].user_id) <= known
    assert set(frames["reviews"].user_id) <= known


def test_reviews_follow_paid_order_lines(frames: dict[str, pd.DataFrame]) -> None:
    reviews, orders = frames["reviews"], frames["orders"]
    paid = orders[orders.status == "paid"]
    joined = reviews.merge(paid, on=["user_id", "item_id"], how="left")
    joined["before"] = joined.order_time < joined.review_time
    covered = joined.groupby("review_id").before.any()
    assert len(covered) == len(reviews) and covered.all()
    assert reviews.review_text.str.len().gt(0).all()
    assert reviews.rating.notna().all()
    # Ratings drive the tone: 5-star texts are never from the negative list and vice versa.
    assert not reviews[reviews.rating == 5].review_text.str.contains("质量太差|poor quality").any()


# ---------------------------------------------------------------------------------------------
# Behaviour
# ---------------------------------------------------------------------------------------------
def test_bots_browse_regularly_and_never_buy(frames: dict[str, pd.DataFrame]) -> None:
    clicks, orders = frames["clickstream"], frames["orders"]
    bots = _bots(clicks)
    assert 1 <= len(bots) <= 3
    bot_events = clicks[clicks.user_id.isin(bots)]
    assert set(bot_events.event_type) == {"view"}
    assert not orders.user_id.isin(bots).any()
    # Regular timing: one fixed period per bot session.
    periods = bot_events.sort_values("event_time").groupby("session_id").event_time.agg(
        lambda t: t.diff().dropna().nunique()
    )
    assert (periods == 1).all()
    # Hundreds of views on each day.
    per_day = bot_events.groupby(["user_id", "dt"]).size()
    assert per_day.min() >= 100


def test_search_events_have_queries_and_no_item(frames: dict[str, pd.DataFrame]) -> None:
    clicks = frames["clickstream"]
    search = clicks[clicks.event_type == "search"]
    other = clicks[clicks.event_type != "search"]
    assert len(search) > 0
    assert search.search_query.notna().all() and search.search_query.str.strip().str.len().gt(0).all()
    assert search.item_id.isna().all() and search.price.isna().all() and search.category_id.isna().all()
    assert other.search_query.isna().all()
    assert other.item_id.notna().all() and (other.price > 0).all()
    queries = search.search_query
    assert queries.str.contains(r"[\u4e00-\u9fff]").any()  # Chinese queries
    assert queries.str.fullmatch(r"[ -~]+").any()  # English queries
    assert queries.str.contains("|".join(INTENT_TERMS)).any()


def test_some_events_are_anonymous_with_a_stable_device(frames: dict[str, pd.DataFrame]) -> None:
    clicks = frames["clickstream"]
    humans = clicks[~clicks.user_id.isin(_bots(clicks))]
    anonymous = humans.user_id.isna().mean()
    assert 0.02 < anonymous < 0.10
    assert clicks.anonymous_id.notna().all()
    logged_in = clicks[clicks.user_id.notna()]
    assert (logged_in.groupby("anonymous_id").user_id.nunique() == 1).all()
    assert (logged_in.groupby("user_id").anonymous_id.nunique() == 1).all()
    # Every user has one device: never more devices than users, and a device seen logged in is a known user's.
    assert clicks.anonymous_id.nunique() <= USERS
    assert set(logged_in.user_id) <= set(frames["users"].user_id)
    # Anonymous devices that never log in are new users browsing before they sign up: within five days, few.
    anonymous_devices = set(clicks[clicks.user_id.isna()].anonymous_id)
    never_logged_in = clicks[clicks.anonymous_id.isin(anonymous_devices - set(logged_in.anonymous_id))]
    days_seen = never_logged_in.groupby("anonymous_id").dt.agg(lambda d: (max(d) - min(d)).days)
    assert (days_seen < 5).all()
    assert len(days_seen) < 0.1 * len(anonymous_devices)


def test_sessions_are_short_and_belong_to_one_visitor(frames: dict[str, pd.DataFrame]) -> None:
    clicks = frames["clickstream"]
    humans = clicks[~clicks.user_id.isin(_bots(clicks))]
    sessions = humans.groupby("session_id").agg(
        devices=("anonymous_id", "nunique"), platforms=("platform", "nunique"),
        start=("event_time", "min"), end=("event_time", "max"), events=("event_id", "size"),
    )
    assert (sessions.devices == 1).all() and (sessions.platforms == 1).all()
    assert ((sessions.end - sessions.start) < pd.Timedelta(hours=4)).all()
    assert sessions.events.mean() > 3
    # Funnel: views outnumber carts, carts outnumber buys.
    counts = humans.event_type.value_counts()
    assert counts["view"] > 2 * counts["cart"] > 0
    assert counts["cart"] > counts["buy"] > 0


def test_events_per_active_user_day_are_realistic(frames: dict[str, pd.DataFrame]) -> None:
    clicks = frames["clickstream"]
    humans = clicks[clicks.user_id.notna() & ~clicks.user_id.isin(_bots(clicks))]
    per_day = humans.groupby(["user_id", "dt"]).size()
    assert 4 <= per_day.mean() <= 15


def test_users_sign_up_before_their_logged_in_events(frames: dict[str, pd.DataFrame]) -> None:
    users, clicks = frames["users"], frames["clickstream"]
    assert users.signup_date.notna().all()
    inside = users.signup_date >= FIRST
    assert 0.04 < inside.mean() < 0.25  # new users sign up during the window, most users before it
    assert users.signup_date.max() <= END
    first_event = clicks.dropna(subset=["user_id"]).groupby("user_id").dt.min()
    signup = users.set_index("user_id").signup_date.loc[first_event.index]
    assert (first_event >= signup).all()
    assert set(users.gender.dropna()) == {"f", "m"} and users.gender.isna().any()
    assert set(users.city_tier) <= {"1", "2", "3", "4", "5"}
    assert users.age_band.notna().all()


def test_catalogue_is_bilingual_with_two_level_categories(frames: dict[str, pd.DataFrame]) -> None:
    items = frames["items"]
    assert len(items) == max(500, USERS // 5)
    assert items.category_id.nunique() == 60
    assert items.category_path.str.fullmatch(r"[^>]+ > [^>]+").all()
    assert items.category_path.str.contains(r"[\u4e00-\u9fff]").any()
    assert items.category_path.str.fullmatch(r"[ -~]+").any()
    assert 40 <= items.brand.nunique() <= 80
    assert items.title.str.contains(r"[\u4e00-\u9fff]").any() and items.title.str.contains("[a-z]{4}").any()
    assert (items.price > 0).all()
    # Zipf popularity: the most viewed item gets many more views than the median item.
    views = frames["clickstream"].query("event_type == 'view'").item_id.value_counts()
    assert views.iloc[0] > 5 * views.median()


def test_persona_shares_sum_to_one() -> None:
    assert sum(PERSONA_SHARES.values()) == pytest.approx(1.0)


def test_planted_signal_carts_and_intent_searches_precede_purchases() -> None:
    result = generate_tables(users=1000, days=30, end_date=END, seed=11)
    clicks, orders = result["clickstream"].to_pandas(), result["orders"].to_pandas()
    users = result["users"].to_pandas().user_id
    cutoff = END - datetime.timedelta(days=7)
    buyers = set(orders[(orders.status == "paid") & (orders.dt > cutoff)].user_id)
    week = clicks[(clicks.dt > cutoff - datetime.timedelta(days=7)) & (clicks.dt <= cutoff) & clicks.user_id.notna()]
    carts = week[week.event_type == "cart"].groupby("user_id").size().reindex(users, fill_value=0)
    intent = week.search_query.fillna("").str.contains("|".join(INTENT_TERMS))
    intent_searches = week[intent].groupby("user_id").size().reindex(users, fill_value=0)
    buyer = users.isin(buyers).to_numpy()
    assert 0.08 < buyer.mean() < 0.35
    assert carts[buyer].mean() > 2 * carts[~buyer].mean() + 0.5
    assert intent_searches[buyer].mean() > 2 * intent_searches[~buyer].mean() + 0.3
    # Informative but not separable: a simple activity score ranks buyers well, not perfectly.
    score = carts + intent_searches
    assert 0.65 < _auc(score, buyer) < 0.95
    assert (carts[buyer] == 0).any() and (carts[~buyer] > 0).any()


def test_the_buyers_history_is_orders_only_of_the_planted_process_and_deterministic():
    days, customers = 730, 3000
    first = pd.Timestamp(END - datetime.timedelta(days=days - 1))
    history = purchase_history(customers, days, END, seed=3, time_zone="Asia/Shanghai")
    assert history["clickstream"].num_rows == 0 and history["clickstream"].schema == arrow_schema(schemas.CLICKSTREAM)
    orders = history["orders"]
    assert orders.schema == arrow_schema(schemas.ORDERS)
    assert orders.equals(purchase_history(customers, days, END, seed=3, time_zone="Asia/Shanghai")["orders"])
    frame = orders.to_pandas()
    local = frame["order_time"].dt.tz_convert(ZoneInfo("Asia/Shanghai")).dt.date
    assert (local == frame["dt"]).all() and frame["dt"].between(first.date(), END).all()
    assert frame["user_id"].nunique() == customers and frame["order_id"].is_unique
    assert (frame["status"] == "paid").all() and (frame["unit_price"] > 0).all()
    # Acquisition is even over the history, and repeat buying follows r / alpha = 1/60 per day while alive.
    first_days = frame.groupby("user_id")["dt"].min().map(lambda d: (pd.Timestamp(d) - first).days)
    assert 0.4 < (first_days < days / 2).mean() < 0.6
    repeats_per_customer = len(frame) / customers - 1
    assert 1.0 < repeats_per_customer < days / 2 / 60
