"""Exact tests of text segmentation and per-user text documents (portrait/features/text.py).

Expected jieba tokens were taken once from jieba 0.42.1 (default accurate mode) and hard-coded.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

from portrait.features.text import segment_text, text_documents

D = dt.date(2024, 6, 30)


def day(offset: int) -> dt.date:
    return D + dt.timedelta(days=offset)


def at(offset: int, hour: int) -> dt.datetime:
    """An event time on day ``D + offset``; only the order of times matters to the documents."""
    return dt.datetime.combine(day(offset), dt.time(hour))


# ---------------------------------------------------------------------------------------------
# segment_text
# ---------------------------------------------------------------------------------------------

TEXTS = "id int, text string"
TOKENISED = T.StructType(
    [
        T.StructField("id", T.IntegerType()),
        T.StructField("text", T.StringType()),
        T.StructField("tokens", T.ArrayType(T.StringType())),
    ]
)


def test_segment_text_chinese_english_punctuation_stop_words_and_null(spark):
    frame = spark.createDataFrame(
        [
            (1, "华为手机 优惠券"),
            (2, "Nike Running Shoes"),
            (3, "我的新款华为手机，很好！"),     # 我 的 新款 很 are stop words; ， ！ are punctuation
            (4, "The Best coupon for you!"),   # the, for are stop words; lower-cased
            (5, None),
            (6, "华为手机 优惠券"),             # a repeated text: segmented once, joined back to both rows
            (7, "，！。..."),                  # punctuation only
            (8, "iPhone 15 Pro 手机壳"),
            (9, ""),
        ],
        TEXTS,
    )
    expected = spark.createDataFrame(
        [
            (1, "华为手机 优惠券", ["华为", "手机", "优惠券"]),
            (2, "Nike Running Shoes", ["nike", "running", "shoes"]),
            (3, "我的新款华为手机，很好！", ["华为", "手机", "好"]),
            (4, "The Best coupon for you!", ["best", "coupon", "you"]),
            (5, None, []),
            (6, "华为手机 优惠券", ["华为", "手机", "优惠券"]),
            (7, "，！。...", []),
            (8, "iPhone 15 Pro 手机壳", ["iphone", "15", "pro", "手机", "壳"]),
            (9, "", []),
        ],
        TOKENISED,
    )
    actual = frame.transform(segment_text("text", "tokens"))
    assert actual.columns == ["id", "text", "tokens"]
    assertDataFrameEqual(actual, expected)


def test_segment_text_min_token_length_drops_short_words(spark):
    frame = spark.createDataFrame([(1, "质量很好，物流很快"), (2, "Nike Running Shoes"), (3, "苹果手机壳")], TEXTS)
    expected = spark.createDataFrame(
        [
            (1, "质量很好，物流很快", ["质量", "物流", "很快"]),   # 好 (one character) dropped
            (2, "Nike Running Shoes", ["nike", "running", "shoes"]),
            (3, "苹果手机壳", ["苹果", "手机"]),
        ],
        TOKENISED,
    )
    assertDataFrameEqual(frame.transform(segment_text("text", "tokens", min_token_length=2)), expected)


def test_segment_text_keeps_a_null_text_row_with_an_empty_not_null_array(spark):
    frame = spark.createDataFrame([(1, None), (2, None)], TEXTS)
    actual = frame.transform(segment_text("text", "tokens")).select(
        "id", F.col("tokens").isNull().alias("is_null"), F.size("tokens").alias("n")
    )
    assertDataFrameEqual(actual, spark.createDataFrame([(1, False, 0), (2, False, 0)], "id int, is_null boolean, n int"))


# ---------------------------------------------------------------------------------------------
# text_documents
# ---------------------------------------------------------------------------------------------

EVENTS = "user_id string, event_time timestamp, event_type string, item_id string, search_query string, dt date"
ITEMS = "item_id string, title string, category_id string, category_path string, brand string, price double"
REVIEWS = (
    "review_id string, user_id string, item_id string, review_time timestamp, rating int, review_text string, dt date"
)
DOCUMENTS = T.StructType([T.StructField("user_id", T.StringType()), T.StructField("text_document", T.StringType())])


def _items(spark):
    return spark.createDataFrame(
        [
            ("i1", "Nike Running Shoes", "c1", "shoes > running", "Nike", 99.0),
            ("i2", "苹果手机壳", "c2", "phone > case", "Apple", 9.0),
            ("i3", "小米手环", "c3", "wearable", "Xiaomi", 29.0),
            ("i4", None, "c3", "wearable", "Xiaomi", 29.0),
        ],
        ITEMS,
    )


def _events(spark):
    return spark.createDataFrame(
        [
            # u1, newest first: search on D, view on D-1, (review on D-2), cart on D-29.
            ("u1", at(0, 10), "search", None, "华为手机 优惠券", day(0)),
            ("u1", at(-1, 9), "view", "i1", None, day(-1)),
            ("u1", at(-29, 8), "cart", "i2", None, day(-29)),
            ("u1", at(-1, 12), "remove_cart", "i3", None, day(-1)),   # not a text event type
            ("u1", at(-3, 12), "search", None, None, day(-3)),         # a search without text
            ("u1", at(-30, 12), "search", None, "old query", day(-30)),  # outside the 30-day window
            ("u1", at(1, 12), "search", None, "future words", day(1)),   # after D: leakage
            ("u1", at(1, 13), "buy", "i3", None, day(1)),                # after D: leakage
            # u2: nothing usable -> absent (unknown item, item without title, search outside the window).
            ("u2", at(0, 9), "view", "i9", None, day(0)),
            ("u2", at(0, 10), "fav", "i4", None, day(0)),
            ("u2", at(-31, 10), "search", None, "old query", day(-31)),
            # Anonymous text never becomes a document.
            (None, at(0, 11), "search", None, "anonymous query", day(0)),
            (None, at(0, 11), "view", "i1", None, day(0)),
            # u3: a title bought and a fav of the same item on D: both kept (newest first).
            ("u3", at(0, 8), "buy", "i3", None, day(0)),
            ("u3", at(0, 7), "fav", "i2", None, day(0)),
        ],
        EVENTS,
    )


def _reviews(spark):
    return spark.createDataFrame(
        [
            ("r1", "u1", "i1", at(-2, 20), 5, "质量很好，物流很快", day(-2)),
            ("r2", "u1", "i1", at(1, 20), 5, "future review", day(1)),     # after D
            ("r3", "u1", "i1", at(-30, 20), 5, "old review", day(-30)),    # outside the window
            ("r4", "u1", "i1", at(-5, 20), 1, None, day(-5)),              # no text
            ("r5", "u5", "i2", at(-4, 20), 4, "Great product", day(-4)),   # a reviewer without events
        ],
        REVIEWS,
    )


def test_text_documents_newest_first_from_searches_titles_and_reviews(spark):
    documents = _events(spark).transform(
        text_documents(D, window_days=30, max_tokens=200, min_token_length=1, items=_items(spark),
                       reviews=_reviews(spark))
    )
    expected = spark.createDataFrame(
        [
            ("u1", "华为 手机 优惠券 nike running shoes 质量 好 物流 很快 苹果 手机 壳"),
            ("u3", "小米 手环 苹果 手机 壳"),
            ("u5", "great product"),
        ],
        DOCUMENTS,
    )
    assertDataFrameEqual(documents, expected)


def test_text_documents_cap_keeps_the_newest_tokens(spark):
    documents = _events(spark).transform(
        text_documents(D, window_days=30, max_tokens=4, min_token_length=1, items=_items(spark),
                       reviews=_reviews(spark))
    )
    expected = spark.createDataFrame(
        [("u1", "华为 手机 优惠券 nike"), ("u3", "小米 手环 苹果 手机"), ("u5", "great product")], DOCUMENTS
    )
    assertDataFrameEqual(documents, expected)


def test_text_documents_29_day_window_drops_the_text_of_day_minus_29(spark):
    narrow = _events(spark).transform(
        text_documents(D, window_days=29, max_tokens=200, min_token_length=1, items=_items(spark),
                       reviews=_reviews(spark))
    ).where(F.col("user_id") == "u1")
    assertDataFrameEqual(
        narrow, spark.createDataFrame([("u1", "华为 手机 优惠券 nike running shoes 质量 好 物流 很快")], DOCUMENTS)
    )


def test_text_documents_2_day_window_keeps_only_d_and_d_minus_1(spark):
    """The review on D-2 and u5's review on D-4 fall out; u3's texts on D stay."""
    tiny = _events(spark).transform(
        text_documents(D, window_days=2, max_tokens=200, min_token_length=1, items=_items(spark),
                       reviews=_reviews(spark))
    )
    assertDataFrameEqual(
        tiny, spark.createDataFrame([("u1", "华为 手机 优惠券 nike running shoes"), ("u3", "小米 手环 苹果 手机 壳")],
                                    DOCUMENTS)
    )


def test_text_documents_without_items_and_reviews_uses_searches_only(spark):
    documents = _events(spark).transform(
        text_documents(D, window_days=30, max_tokens=200, min_token_length=1, items=None, reviews=None)
    )
    assertDataFrameEqual(documents, spark.createDataFrame([("u1", "华为 手机 优惠券")], DOCUMENTS))


def test_text_documents_min_token_length_applies(spark):
    documents = _events(spark).transform(
        text_documents(D, window_days=30, max_tokens=200, min_token_length=2, items=_items(spark), reviews=None)
    )
    expected = spark.createDataFrame(
        [("u1", "华为 手机 优惠券 nike running shoes 苹果 手机"), ("u3", "小米 手环 苹果 手机")], DOCUMENTS
    )
    assertDataFrameEqual(documents, expected)
