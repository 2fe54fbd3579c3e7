"""Exact tests of window features from rollups (portrait/features/windows.py), one family at a time."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from portrait.config import FeaturesConfig
from portrait.features.windows import features_from_rollups
from portrait.schemas import USER_DAILY_ACTIVITY, USER_FEATURES

D = dt.date(2024, 6, 30)   # a Sunday


def day(age: int) -> dt.date:
    return D - dt.timedelta(days=age)


def activity(user: str, age: int, **values) -> dict:
    """A rollup row ``age`` days before D: zeros and empties unless given."""
    row = {}
    for field in USER_DAILY_ACTIVITY.schema.fields:
        kind = field.dataType.typeName()
        row[field.name] = {"long": 0, "double": 0.0, "map": {}, "array": [], "boolean": False}.get(kind)
    row.update(user_id=user, dt=day(age), **values)
    return row


def features(spark, rows, settings=None, on=D):
    frame = spark.createDataFrame([tuple(r[c] for c in USER_DAILY_ACTIVITY.columns) for r in rows],
                                  USER_DAILY_ACTIVITY.schema)
    return frame.transform(features_from_rollups(on, settings or FeaturesConfig()))


def one(spark, rows, settings=None) -> dict:
    result = features(spark, rows, settings).collect()
    assert len(result) == 1
    return result[0].asDict(recursive=True)


def test_counts_per_window_edges_and_rows_after_d_are_invisible(spark):
    rows = [activity("u1", age, events=1, views=1) for age in (0, 6, 7, 29, 30, 89, 90)]
    rows.append(activity("u1", -1, events=100, views=100))        # after D: leakage if counted
    row = one(spark, rows)
    assert [row[f"views_{w}d"] for w in (1, 7, 30, 90)] == [1, 2, 4, 6]
    assert [row[f"events_{w}d"] for w in (1, 7, 30, 90)] == [1, 2, 4, 6]
    assert (row["active_days_7d"], row["active_days_30d"], row["active_days_90d"]) == (2, 4, 6)
    assert (row["days_since_first_event"], row["days_since_last_event"]) == (89, 0)


def test_rfm_value_family_with_orders(spark):
    rows = [
        activity("u1", 2, events=3, views=3, paid_orders=2, paid_amount=200.0, orders=2, discounted_orders=1,
                 bought_categories=["c1", "c2"]),
        activity("u1", 10, paid_orders=1, paid_amount=100.0, orders=2, cancelled_orders=1,
                 bought_categories=["c1"]),
        activity("u1", 40, paid_orders=1, paid_amount=60.0, orders=1, bought_categories=["c3"]),
    ]
    row = one(spark, rows)
    assert (row["days_since_last_order"], row["orders_30d"], row["spend_30d"], row["orders_90d"],
            row["spend_90d"]) == (2, 3, 300.0, 4, 360.0)
    assert row["avg_order_value_90d"] == 90.0
    assert row["mean_days_between_orders_90d"] == 19.0            # (40 - 2) / (3 order days - 1)
    assert row["repeat_purchase_rate_90d"] == pytest.approx(1 / 3)  # c1 on two days; c2, c3 once
    assert row["discount_order_share_90d"] == 0.25
    assert row["refund_rate_90d"] == 0.2                           # 1 cancelled of 5 orders


def test_a_user_with_no_orders_a_single_event_and_refunds_only(spark):
    rows = [activity("single", 3, events=1, views=1, sessions=1, bounce_sessions=1, evening_events=1,
                     platform_events={"app": 1}, landing_channels={"ads": 1}),
            activity("refunder", 5, orders=2, refunded_orders=2)]
    result = {r["user_id"]: r.asDict(recursive=True) for r in features(spark, rows).collect()}
    single, refunder = result["single"], result["refunder"]
    assert single["days_since_last_order"] is None and single["orders_90d"] == 0 and single["spend_90d"] == 0.0
    for column in ("avg_order_value_90d", "mean_days_between_orders_90d", "repeat_purchase_rate_90d",
                   "discount_order_share_90d", "refund_rate_90d", "cart_to_buy_rate_30d",
                   "cart_abandonment_rate_30d", "search_to_buy_rate_30d", "price_percentile_90d", "price_tier",
                   "inter_event_gap_cv_30d"):
        assert single[column] is None, column
    assert (single["sessions_30d"], single["bounce_rate_30d"], single["events_per_session_30d"]) == (1, 1.0, 1.0)
    assert (single["view_to_cart_rate_30d"], single["evening_share_30d"], single["preferred_daypart"]) == (
        0.0, 1.0, "evening")
    assert (single["preferred_platform"], single["preferred_channel"]) == ("app", "ads")
    assert single["lifecycle_stage"] == "new" and single["bot_suspect"] is False
    assert refunder["refund_rate_90d"] == 1.0 and refunder["orders_90d"] == 0
    assert refunder["days_since_last_order"] is None and refunder["events_30d"] == 0
    assert refunder["night_share_30d"] is None and refunder["preferred_daypart"] is None
    assert refunder["top_categories"] == [] and refunder["text_document"] == ""


def test_session_funnel_and_time_pattern_rates(spark):
    rows = [activity("u1", 2, events=10, views=4, carts=2, buys=3, sessions=2, bounce_sessions=1,
                     session_seconds=600.0, search_segments=2, search_buy_segments=1, night_events=1,
                     morning_events=4, afternoon_events=4, evening_events=1),
            activity("u1", 0, events=2, views=2, sessions=1, session_seconds=300.0, morning_events=2)]   # Sunday
    row = one(spark, rows)
    assert row["avg_session_minutes_30d"] == 5.0 and row["events_per_session_30d"] == 4.0
    assert row["bounce_rate_30d"] == pytest.approx(1 / 3)
    assert (row["view_to_cart_rate_30d"], row["cart_to_buy_rate_30d"], row["cart_abandonment_rate_30d"]) == (
        pytest.approx(1 / 3), 1.0, 0.0)                             # 3 buys of 2 carts is capped at 1
    assert row["search_to_buy_rate_30d"] == 0.5
    assert row["morning_share_30d"] == 0.5 and row["preferred_daypart"] == "morning"   # a 6:4 tie goes early
    assert row["weekend_share_30d"] == pytest.approx(2 / 12)        # D is a Sunday, D-2 a Friday
    assert row["events_per_active_day_30d"] == 6.0


def test_decayed_interest_top_k_and_top_category(spark):
    settings = FeaturesConfig(affinity_half_life_days=14, top_k=2)
    rows = [activity("u1", 0, events=1, category_weights={"c1": 4.0, "c2": 1.0}, brand_weights={"b1": 1.0}),
            activity("u1", 14, events=1, category_weights={"c2": 8.0}, brand_weights={"b2": 2.0}),
            activity("u1", 40, events=1, category_weights={"c3": 64.0})]
    row = one(spark, rows, settings)
    # c1: 4; c2: 1 + 8/2 = 5; c3: 64 * 2^(-40/14) = 8.82 -> top two: c3, c2. b1 1, b2 1: tie -> larger key.
    assert row["top_categories"] == [{"key": "c3", "score": round(64 * 0.5 ** (40 / 14), 6)},
                                     {"key": "c2", "score": 5.0}]
    assert row["top_brands"] == [{"key": "b2", "score": 1.0}, {"key": "b1", "score": 1.0}]
    assert row["top_category_30d"] == "c2"       # 30 days, not decayed: c2 9 > c1 4; c3 is older


def test_a_key_shared_by_every_kind_is_counted_within_its_own_kind(spark):
    # One name as category, brand, platform, channel and bought category, on rows whose maps differ in size
    # (the entries of all kinds are exploded together; each must stay in its kind).
    settings = FeaturesConfig(affinity_half_life_days=14, top_k=3)
    rows = [activity("u1", 0, events=3, category_weights={"x": 1.0}, brand_weights={"x": 2.0, "b": 5.0},
                     platform_events={"x": 3, "web": 1}, landing_channels={}, bought_categories=["x"]),
            activity("u1", 1, events=2, category_weights={"c": 7.0, "x": 1.0}, brand_weights={},
                     platform_events={"web": 5}, landing_channels={"x": 4}, bought_categories=["x", "c"]),
            activity("u1", 2, events=1, landing_channels={"ads": 1}, bought_categories=["c"])]
    row = one(spark, rows, settings)
    assert row["top_categories"] == [{"key": "c", "score": round(7.0 * 0.5 ** (1 / 14), 6)},
                                     {"key": "x", "score": round(1.0 + 0.5 ** (1 / 14), 6)}]
    assert row["top_brands"] == [{"key": "b", "score": 5.0}, {"key": "x", "score": 2.0}]
    assert row["top_category_30d"] == "c"                            # recent, not decayed: c 7 > x 2
    assert (row["preferred_platform"], row["preferred_channel"]) == ("web", "x")    # web 6 > x 3; x 4 > ads 1
    assert row["repeat_purchase_rate_90d"] == 1.0                    # x and c each bought on two days


def test_price_tier_edges(spark):
    rows = [activity("low", 0, events=1, price_percentile_sum=0.3, price_percentile_count=1),
            activity("mid", 0, events=1, price_percentile_sum=1.0, price_percentile_count=2),
            activity("high", 0, events=1, price_percentile_sum=2.0, price_percentile_count=2)]
    tiers = {r["user_id"]: r["price_tier"] for r in features(spark, rows, FeaturesConfig(
        price_tier_edges=(0.4, 0.9))).collect()}
    assert tiers == {"low": "low", "mid": "mid", "high": "high"}


@pytest.mark.parametrize(("first_age", "last_age", "stage"), [
    (13, 0, "new"), (14, 7, "active"), (20, 8, "sleeping"), (40, 30, "sleeping"), (60, 31, "churned")])
def test_lifecycle_rules_first_match_wins(spark, first_age, last_age, stage):
    rows = [activity("u1", first_age, events=1), activity("u1", last_age, events=1)]
    assert one(spark, rows)["lifecycle_stage"] == stage


def test_bot_suspicion_by_rate_by_bot_day_and_by_regularity(spark):
    settings = FeaturesConfig(bot_events_per_active_day=500, bot_max_gap_cv=0.1, bot_min_gaps=50)
    regular_gaps = dict(gap_count=100, session_seconds=100 * 5.0, gap_seconds_sumsq=100 * 25.0)   # cv 0
    human_gaps = dict(gap_count=100, session_seconds=100 * 60.0, gap_seconds_sumsq=100 * 7200.0)   # cv 1
    rows = [activity("fast", 0, events=501), activity("botday", 3, events=10, bot_day=True),
            activity("metronome", 0, events=101, **regular_gaps), activity("human", 0, events=101, **human_gaps),
            activity("few_gaps", 0, events=10, gap_count=49, session_seconds=49.0, gap_seconds_sumsq=49.0)]
    result = {r["user_id"]: (r["bot_suspect"], r["inter_event_gap_cv_30d"])
              for r in features(spark, rows, settings).collect()}
    assert result == {"fast": (True, None), "botday": (True, None), "metronome": (True, 0.0),
                      "human": (False, 1.0), "few_gaps": (False, None)}


def test_text_document_newest_day_first_window_and_cap(spark):
    rows = [activity("u1", 0, events=1, tokens=["today"]), activity("u1", 1, events=1, tokens=["a", "b"]),
            activity("u1", 29, events=1, tokens=["edge"]), activity("u1", 30, events=1, tokens=["old"])]
    assert one(spark, rows)["text_document"] == "today a b edge"
    assert one(spark, rows, FeaturesConfig(text_window_days=2))["text_document"] == "today a b"
    many = [activity("u1", 0, events=1, tokens=[f"w{k}" for k in range(8)]),
            activity("u1", 1, events=1, tokens=[f"v{k}" for k in range(8)])]
    assert one(spark, many, FeaturesConfig(max_tokens_per_user=10))["text_document"] == (
        "w0 w1 w2 w3 w4 w5 w6 w7 v0 v1")


def test_output_is_the_contract_and_one_row_per_person(spark):
    rows = [activity("u1", 0, events=1), activity("u1", 1, events=1), activity("u2", 5, orders=1)]
    frame = features(spark, rows)
    assert frame.columns == USER_FEATURES.columns
    assertDataFrameEqual(frame.select("user_id", "dt"),
                         spark.createDataFrame([("u1", D), ("u2", D)], "user_id string, dt date"))
    assert frame.where(F.col("dt") != F.lit(D)).isEmpty()
