"""Per-user text documents: searches, titles of items acted on, and reviews, segmented into tokens.

Chinese has no spaces between words, so text is segmented with jieba; English and other space-separated
text falls out of the same segmentation as whole words. Segmentation runs in an Arrow pandas UDF (no
built-in can segment Chinese) and only over *distinct* strings: a shop has far fewer distinct queries and
titles than events, so the Python cost does not grow with traffic.

The document is a space-separated string of tokens, newest first, capped per user, so Spark ML's
``Tokenizer`` can split it again and heavy users do not dominate the IDF statistics.
"""

from __future__ import annotations

import re

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from portrait.features.dates import Transformation

# Words that carry no interest signal in either language.
STOP_WORDS = frozenset({
    "的", "了", "和", "是", "在", "我", "有", "也", "很", "都", "就", "不", "人", "这", "一个", "与", "及",
    "等", "为", "款", "新款", "个", "吗", "呢", "啊", "吧", "着", "对", "给", "还", "把", "被",
    "a", "an", "the", "and", "or", "of", "for", "to", "in", "on", "with", "by", "at", "from", "is", "are",
    "was", "were", "be", "it", "this", "that", "my", "our", "your", "new",
})
_NOT_A_WORD = re.compile(r"^[\W_]+$")
TEXT_EVENT_TYPES = ("view", "cart", "fav", "buy")


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
