"""Exact tests of the per-person daily rollup (portrait/features/rollups.py).

Times are UTC instants; the session time zone is Asia/Shanghai (UTC+8), so local 00:05 on D is 16:05 UTC
on D-1 — the time-zone boundary the cases below cross on purpose.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from portrait.config import FeaturesConfig
from portrait.features.rollups import daily_activity, item_price_percentiles
from portrait.features.staleness import NO_INPUT, rollup_input_counts, rollup_passes, stale_rollup_days
from portrait.schemas import CLICKSTREAM, ITEMS, ORDERS, REVIEWS, USER_DAILY_ACTIVITY

D = dt.date(2024, 6, 30)
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def day(offset: int) -> dt.date:
    return D + dt.timedelta(days=offset)


def local(offset: int, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    """A UTC instant for local (UTC+8) time ``hour:minute`` on day ``D + offset``."""
    moment = dt.datetime.combine(day(offset), dt.time(hour, minute, second), tzinfo=SHANGHAI)
    return moment.astimezone(dt.timezone.utc)


def event(event_id, user, event_type, offset, hour, minute=0, *, item=None, category=None, brand=None,
          query=None, channel="organic", platform="app", second=0):
    return (event_id, user, None, None, local(offset, hour, minute, second), event_type, item, category, brand,
            None, query, channel, platform, day(offset))


def line(order_id, number, user, offset, status, quantity, price, discount, category="c1"):
    return (order_id, number, user, local(offset, 12), status, "i1", category, quantity, price, discount,
            day(offset))


def rollup(spark, events, orders=(), items=None, reviews=None, settings=None, start=D, end=D):
    clickstream = spark.createDataFrame(events, CLICKSTREAM.schema)
    order_frame = spark.createDataFrame(list(orders), ORDERS.schema)
    item_frame = spark.createDataFrame(items, ITEMS.schema) if items is not None else None
    review_frame = spark.createDataFrame(reviews, REVIEWS.schema) if reviews is not None else None
    return clickstream.transform(daily_activity(start, end, settings or FeaturesConfig(), order_frame,
                                                item_frame, review_frame))


def pick(frame, *columns):
    return frame.select("user_id", "dt", *columns)


def test_counts_dayparts_first_and_last_event_per_person_and_day(spark):
    events = [
        event("e1", "u1", "view", 0, 0, 30, category="c1"),    # local 00:30 on D = 16:30 UTC on D-1: counts on D
        event("e2", "u1", "search", 0, 9, query="鞋"),
        event("e3", "u1", "cart", 0, 13, category="c1"),
        event("e4", "u1", "remove_cart", 0, 13, 5, category="c1"),
        event("e5", "u1", "fav", 0, 19, category="c2"),
        event("e6", "u1", "buy", 0, 19, 30, category="c1"),
        event("e7", "u2", "view", 0, 23, 59, category="c3"),
        event("e8", "u2", "view", 1, 0, 1, category="c3"),     # after the range: not in D's rollup
        event("e9", None, "view", 0, 10, category="c3"),        # anonymous: no person
    ]
    actual = pick(rollup(spark, events), "events", "views", "searches", "carts", "remove_carts", "favs", "buys",
                  "night_events", "morning_events", "afternoon_events", "evening_events",
                  "first_event_time", "last_event_time")
    expected = spark.createDataFrame(
        [("u1", D, 6, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, local(0, 0, 30), local(0, 19, 30)),
         ("u2", D, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, local(0, 23, 59), local(0, 23, 59))],
        "user_id string, dt date, events long, views long, searches long, carts long, remove_carts long, "
        "favs long, buys long, night_events long, morning_events long, afternoon_events long, "
        "evening_events long, first_event_time timestamp, last_event_time timestamp",
    )
    assertDataFrameEqual(actual, expected)


def test_sessions_continue_over_midnight_and_bounces_are_decided_within_the_day(spark):
    events = [
        event("a1", "u1", "view", -1, 23, 50),                    # the day before: context only
        event("a2", "u1", "view", 0, 0, 5, channel="ads"),        # continues the 23:50 session: not a new one
        event("a3", "u1", "search", 0, 0, 20),
        event("a4", "u1", "view", 0, 3, 0, channel="email"),      # new session, nothing follows: a bounce
        event("a5", "u1", "search", 0, 10, 0, channel="social"),  # new session ...
        event("a6", "u1", "buy", 0, 10, 10),                      # ... with a search and a buy
        event("a7", "u1", "view", 0, 23, 55, channel="ads"),      # new session; its next event is tomorrow
        event("a8", "u1", "view", 1, 0, 5),                       # tomorrow: outside the range
    ]
    actual = pick(rollup(spark, events), "sessions", "bounce_sessions", "session_seconds", "gap_count",
                  "gap_seconds_sumsq", "search_segments", "search_buy_segments",
                  "landing_channels")
    # Gaps ending on D inside sessions: 00:05-23:50 (15 min), 00:20-00:05 (15 min), 10:10-10:00 (10 min).
    expected = spark.createDataFrame(
        [("u1", D, 3, 2, 2400.0, 3, 900.0 ** 2 * 2 + 600.0 ** 2, 2, 1,
          {"ads": 1, "email": 1, "social": 1})],
        "user_id string, dt date, sessions long, bounce_sessions long, session_seconds double, gap_count long, "
        "gap_seconds_sumsq double, search_segments long, search_buy_segments long, "
        "landing_channels map<string,bigint>",
    )
    assertDataFrameEqual(actual, expected)


def test_a_multi_day_range_equals_the_days_computed_one_by_one(spark):
    events = [event("a1", "u1", "view", -2, 23, 50), event("a2", "u1", "view", -1, 0, 10),
              event("a3", "u1", "view", -1, 9, 0), event("a4", "u1", "view", 0, 9, 20),
              event("a5", "u1", "search", 0, 9, 25, query="跑步 鞋")]
    together = rollup(spark, events, start=day(-1), end=D)
    one_by_one = rollup(spark, events, start=day(-1), end=day(-1)).unionByName(rollup(spark, events))
    assertDataFrameEqual(together, one_by_one)
    assert together.count() == 2


def test_a_bot_day_is_counted_but_not_sessionised_and_has_no_text(spark):
    settings = FeaturesConfig(bot_max_events_per_day=100)
    bot = [event(f"b{k}", "bot", "search", 0, 10, k // 60, second=k % 60, query="crawl") for k in range(101)]
    human = [event("h1", "u1", "search", 0, 10, query="crawl")]
    actual = pick(rollup(spark, bot + human, settings=settings), "events", "searches", "sessions", "tokens",
                  "bot_day")
    expected = spark.createDataFrame(
        [("bot", D, 101, 101, 0, [], True), ("u1", D, 1, 1, 1, ["crawl"], False)],
        "user_id string, dt date, events long, searches long, sessions long, tokens array<string>, "
        "bot_day boolean",
    )
    assertDataFrameEqual(actual, expected)


def test_interest_weights_platforms_and_price_percentiles(spark):
    items = [("i1", "Nike 跑步鞋", "c1", None, "Nike", 100.0), ("i2", "Adidas 跑步鞋", "c1", None, "Adidas", 300.0),
             ("i3", "贵 跑步鞋", "c1", None, "Nike", 500.0), ("i4", "Lonely", "c9", None, "X", 10.0)]
    events = [
        event("e1", "u1", "view", 0, 9, item="i1", category="c1", brand="Nike"),
        event("e2", "u1", "cart", 0, 9, 5, item="i3", category="c1", brand="Nike", platform="web"),
        event("e3", "u1", "fav", 0, 9, 6, item="i2", category="c1", brand="Adidas"),   # fav: no price signal
        event("e4", "u1", "buy", 0, 9, 7, item="i4", category="c9", brand="X"),
        event("e5", "u1", "search", 0, 9, 8, query="鞋"),                                # search weighs 0
    ]
    actual = pick(rollup(spark, events, items=items), "category_weights", "brand_weights", "platform_events",
                  "price_percentile_sum", "price_percentile_count")
    # Percentiles in c1: i1 0.0, i2 0.5, i3 1.0; c9 has one item: 0.5. Priced view/cart/buy: i1, i3, i4.
    expected = spark.createDataFrame(
        [("u1", D, {"c1": 6.0, "c9": 5.0}, {"Adidas": 2.0, "Nike": 4.0, "X": 5.0}, {"app": 4, "web": 1},
          1.5, 3)],
        "user_id string, dt date, category_weights map<string,double>, brand_weights map<string,double>, "
        "platform_events map<string,bigint>, price_percentile_sum double, price_percentile_count long",
    )
    assertDataFrameEqual(actual, expected)
    percentiles = item_price_percentiles(spark.createDataFrame(items, ITEMS.schema))
    assert {r["item_id"]: r["price_percentile"] for r in percentiles.collect()} == {
        "i1": 0.0, "i2": 0.5, "i3": 1.0, "i4": 0.5}


def test_orders_one_per_order_refunds_only_and_order_only_people(spark):
    orders = [
        line("o1", 1, "u1", 0, "paid", 2, 50.0, 10.0, category="c1"),
        line("o1", 2, "u1", 0, "paid", 1, 30.0, 0.0, category="c2"),
        line("o2", 1, "u1", 0, "paid", 1, 20.0, 0.0, category="c1"),
        line("o3", 1, "u2", 0, "refunded", 1, 99.0, 0.0),           # refunds only
        line("o4", 1, "u2", 0, "cancelled", 1, 5.0, 0.0),
        line("o5", 1, "u3", 1, "paid", 1, 5.0, 0.0),                # after the range
    ]
    actual = pick(rollup(spark, [event("e1", "u1", "view", 0, 9)], orders=orders), "events", "paid_orders",
                  "paid_amount", "discounted_orders", "orders", "refunded_orders", "cancelled_orders",
                  "bought_categories")
    expected = spark.createDataFrame(
        [("u1", D, 1, 2, 140.0, 1, 2, 0, 0, ["c1", "c2"]), ("u2", D, 0, 0, 0.0, 0, 2, 1, 1, [])],
        "user_id string, dt date, events long, paid_orders long, paid_amount double, discounted_orders long, "
        "orders long, refunded_orders long, cancelled_orders long, bought_categories array<string>",
    )
    assertDataFrameEqual(actual, expected)


def test_tokens_newest_first_capped_per_day_from_searches_titles_and_reviews(spark):
    items = [("i1", "Nike Running Shoes", "c1", None, "Nike", 99.0), ("i2", "苹果手机壳", "c2", None, "Apple", 9.0)]
    events = [
        event("e1", "u1", "view", 0, 9, item="i1"),
        event("e2", "u1", "search", 0, 10, query="华为手机 优惠券"),
        event("e3", "u1", "remove_cart", 0, 11, item="i2"),   # not a text event
        event("e4", "u2", "fav", 0, 8, item="i2"),
    ]
    reviews = [("r1", "u1", "i1", local(0, 12), 5, "质量很好，物流很快", D),
               ("r2", "u5", "i2", local(0, 12), 4, "Great product", D)]      # a reviewer without events
    actual = pick(rollup(spark, events, items=items, reviews=reviews), "events", "tokens")
    expected = spark.createDataFrame(
        [("u1", D, 3, ["质量", "好", "物流", "很快", "华为", "手机", "优惠券", "nike", "running", "shoes"]),
         ("u2", D, 1, ["苹果", "手机", "壳"]),
         ("u5", D, 0, ["great", "product"])],
        "user_id string, dt date, events long, tokens array<string>",
    )
    assertDataFrameEqual(actual, expected)
    capped = rollup(spark, events, items=items, reviews=reviews, settings=FeaturesConfig(max_tokens_per_user=10))
    assert capped.where(F.col("user_id") == "u1").first()["tokens"][:2] == ["质量", "好"]


def test_the_rollup_has_exactly_the_contract_columns(spark):
    frame = rollup(spark, [event("e1", "u1", "view", 0, 9)])
    assert frame.columns == USER_DAILY_ACTIVITY.columns
    assert frame.first()["category_weights"] == {} and frame.first()["tokens"] == []


def test_rollup_passes_cut_contiguous_days_into_whole_days_up_to_the_event_limit():

    day = [dt.date(2026, 11, 1) + dt.timedelta(days=k) for k in range(8)]
    events = {day[0]: 4, day[1]: 4, day[2]: 3, day[3]: 20, day[4]: 1, day[6]: 5, day[7]: 5}
    # Days 0-4 and 6-7 are missing (day 5 is not): two runs. The first is cut before day 2 (4 + 4 + 3 > 10) and
    # around day 3, which alone exceeds the limit; the second (5 + 5) fits in one pass.
    assert rollup_passes([day[k] for k in (7, 0, 1, 2, 3, 4, 6)], events, 10) == [
        (day[0], day[1]), (day[2], day[2]), (day[3], day[3]), (day[4], day[4]), (day[6], day[7])]
    assert rollup_passes(day[:3], events, 1_000) == [(day[0], day[2])]
    assert rollup_passes([], events, 10) == []


def test_input_counts_of_a_day_include_the_day_before_and_only_days_with_rows_of_their_own():

    day = [dt.date(2026, 11, 1) + dt.timedelta(days=k) for k in range(6)]
    clickstream = {day[0]: 7, day[1]: 5, day[3]: 2, day[5]: 9}  # day[0] is the day before the range
    orders = {day[2]: 1, day[3]: 4}
    reviews = {day[4]: 3}
    assert rollup_input_counts(clickstream, orders, reviews, day[1], day[4]) == {
        day[1]: (5, 7, 0, 0),
        day[2]: (0, 5, 1, 0),   # orders only: the clickstream of the day before still counts
        day[3]: (2, 0, 4, 0),
        day[4]: (0, 2, 0, 3),   # reviews only
    }  # day[5] lies after the range; day[0] only serves as the day before day[1]


def test_a_rollup_is_stale_when_any_count_differs_or_was_never_recorded():

    a, b, c, d, e = (dt.date(2026, 11, 1) + dt.timedelta(days=k) for k in range(5))
    current = {a: (5, 0, 1, 0), b: (6, 5, 0, 0), c: (2, 6, 0, 1), d: (3, 2, 0, 0)}
    recorded = {a: (5, 0, 1, 0),          # unchanged
                b: (6, 4, 0, 0),          # a late event the day before: sessions may start there
                c: (2, 6, 0, 0),          # a late review
                e: (4, 3, 0, 0)}          # rolled up when it had rows it no longer has
    assert stale_rollup_days(current, recorded) == {b, c, d, e}   # d was never rolled up
    # A day without rows, rolled up as a feature date (recorded as NO_INPUT), stays fresh.
    assert stale_rollup_days({}, {a: NO_INPUT}) == set()
    assert stale_rollup_days(current, dict(current)) == set()
