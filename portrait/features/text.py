"""Per-user text documents: searches, titles of items acted on, and reviews, segmented into tokens.

Chinese has no spaces between words, so text is segmented with jieba; English and other space-separated
text falls out of the same segmentation as whole words. Segmentation runs in an Arrow pandas UDF (no
built-in can segment Chinese) and only over *distinct* strings: a shop has far fewer distinct queries and
titles than events, so the Python cost does not grow with traffic.

The document is a space-separated string of tokens, newest first, capped per user, so Spark ML's
``Tokenizer`` can split it again and heavy users do not dominate the IDF statistics.
"""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from portrait.features.behaviour import Transformation, events_until

# Words that carry no interest signal in either language.
STOP_WORDS = frozenset({
    "的", "了", "和", "是", "在", "我", "有", "也", "很", "都", "就", "不", "人", "这", "一个", "与", "及",
    "等", "为", "款", "新款", "个", "吗", "呢", "啊", "吧", "着", "对", "给", "还", "把", "被",
    "a", "an", "the", "and", "or", "of", "for", "to", "in", "on", "with", "by", "at", "from", "is", "are",
    "was", "were", "be", "it", "this", "that", "my", "our", "your", "new",
})
_NOT_A_WORD = re.compile(r"^[\W_]+$")
_TEXT_EVENT_TYPES = ("view", "cart", "fav", "buy")


def _segment_series(texts: pd.Series, min_length: int) -> pd.Series:
    import jieba  # imported here: on executors the module loads once per Python worker

    jieba.setLogLevel(60)

    def tokens(text: str | None) -> list[str]:
        if text is None:
            return []
        words = (w.strip().lower() for w in jieba.lcut(text))
        return [w for w in words if len(w) >= min_length and w not in STOP_WORDS and not _NOT_A_WORD.match(w)]

    return texts.map(tokens)


def segment_text(input_col: str, output_col: str, min_token_length: int = 1) -> Transformation:
    """Add ``output_col``: the tokens of ``input_col`` (jieba segmentation, lower-case, no stop words).

    Runs the segmentation over the distinct values of ``input_col`` only and joins the result back.
    """

    @F.pandas_udf(T.ArrayType(T.StringType()))
    def segment(texts: pd.Series) -> pd.Series:
        return _segment_series(texts, min_token_length)

    def transform(frame: DataFrame) -> DataFrame:
        distinct = (
            frame.select(F.col(input_col).alias("_text")).where(F.col("_text").isNotNull()).distinct()
            .withColumn("_tokens", segment("_text"))
        )
        return (
            frame.join(distinct, frame[input_col].eqNullSafe(distinct["_text"]), how="left")
            .withColumn(output_col, F.coalesce("_tokens", F.array().cast("array<string>")))
            .drop("_text", "_tokens")
        )

    return transform


def text_documents(day: dt.date, window_days: int, max_tokens: int, min_token_length: int,
                   items: DataFrame | None, reviews: DataFrame | None) -> Transformation:
    """Per-user document of the ``window_days`` to ``day``: columns ``user_id``, ``text_document``.

    Sources, newest first: search queries, titles of items viewed/carted/favourited/bought (when an
    ``items`` table exists), and review texts (when a ``reviews`` table exists). At most ``max_tokens``
    tokens per user are kept.
    """

    def transform(events: DataFrame) -> DataFrame:
        recent = events.transform(events_until(day, window_days)).where(F.col("user_id").isNotNull())
        pieces = [
            recent.where((F.col("event_type") == "search") & F.col("search_query").isNotNull())
            .select("user_id", "event_time", F.col("search_query").alias("text"))
        ]
        if items is not None:
            titles = items.select("item_id", F.col("title").alias("text")).where(F.col("text").isNotNull())
            pieces.append(
                recent.where(F.col("event_type").isin(*_TEXT_EVENT_TYPES))
                .select("user_id", "event_time", "item_id")
                .join(F.broadcast(titles), on="item_id", how="inner")
                .drop("item_id")
            )
        if reviews is not None:
            pieces.append(
                reviews.transform(events_until(day, window_days))
                .where(F.col("review_text").isNotNull())
                .select("user_id", F.col("review_time").alias("event_time"), F.col("review_text").alias("text"))
            )
        texts = pieces[0]
        for piece in pieces[1:]:
            texts = texts.unionByName(piece)
        tokenised = texts.transform(segment_text("text", "tokens", min_token_length))
        # Newest text first; the cap then keeps the user's most recent interests.
        ordered = F.sort_array(F.collect_list(F.struct(F.col("event_time"), F.col("text"), F.col("tokens"))),
                               asc=False)
        return (
            tokenised.groupBy("user_id")
            .agg(ordered.alias("_texts"))
            .select(
                "user_id",
                F.array_join(
                    F.slice(F.flatten(F.transform("_texts", lambda t: t.getField("tokens"))), 1, max_tokens),
                    " ",
                ).alias("text_document"),
            )
        )

    return transform
