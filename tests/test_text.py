"""Exact tests of text segmentation and per-user text documents (portrait/features/text.py).

Expected jieba tokens were taken once from jieba 0.42.1 (default accurate mode) and hard-coded.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

from portrait.features.text import segment_text

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
