"""The propensity model as one Spark ML Pipeline, so the logged model takes raw ``user_features`` rows.

Stages:

1. ``SQLTransformer``: numeric features → ``log1p`` (counts and money are heavy-tailed), recency without an
   order → the lookback length plus a "has ordered" flag.
2. Text: ``RegexTokenizer → HashingTF(binary) → IDF → ChiSqSelector``. The term frequencies are *binary*, so
   after IDF every hashed term takes exactly two values (absent, or its IDF weight). ChiSqSelector treats
   each distinct value as a category, which is then exactly a presence/absence test per term, the
   chi-square it is meant for, instead of one category per raw count.
3. ``VectorAssembler`` of numeric and selected text features → ``LogisticRegression`` (standardised,
   L2/elastic-net regularised; unregularised LR overfits hundreds of weak text features).
"""

from __future__ import annotations

from pyspark.ml import Pipeline
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.feature import IDF, ChiSqSelector, HashingTF, RegexTokenizer, SQLTransformer, VectorAssembler

from portrait.config import ModelConfig
from portrait.features.behaviour import LOOKBACK_DAYS
from portrait.model.training import LABEL

COUNT_FEATURES = (
    "orders_30d", "spend_30d", "orders_90d", "spend_90d",
    "views_7d", "searches_7d", "carts_7d", "favs_7d", "buys_7d",
    "views_30d", "searches_30d", "carts_30d", "favs_30d", "buys_30d",
    "active_days_30d", "days_since_first_event", "days_since_last_event",
)
TEXT_COLUMN = "text_document"
# Columns a scoring input must have: the logged model's signature.
MODEL_INPUT_COLUMNS = ("user_id", *COUNT_FEATURES, "days_since_last_order", TEXT_COLUMN)
FEATURES = "features"
PROBABILITY = "probability"
# Row weight column read by LogisticRegression when model.class_weights is on (fit only; scoring ignores it).
WEIGHT = "class_weight"


def numeric_feature_names() -> list[str]:
    return [f"{name}_log" for name in COUNT_FEATURES] + ["days_since_last_order_log", "has_ordered_90d"]


def _numeric_statement() -> str:
    logs = [f"log1p(cast(coalesce({name}, 0) as double)) AS {name}_log" for name in COUNT_FEATURES]
    recency = (
        f"log1p(cast(coalesce(days_since_last_order, {LOOKBACK_DAYS}) as double)) AS days_since_last_order_log"
    )
    flag = "CASE WHEN days_since_last_order IS NULL THEN 0.0 ELSE 1.0 END AS has_ordered_90d"
    text = f"coalesce({TEXT_COLUMN}, '') AS text_clean"
    return "SELECT *, " + ", ".join([*logs, recency, flag, text]) + " FROM __THIS__"


def build_pipeline(settings: ModelConfig) -> Pipeline:
    """An unfitted Pipeline from ``user_features`` columns (plus ``label`` when fitting) to probability."""
    weighting = {"weightCol": WEIGHT} if settings.class_weights else {}
    stages = [
        SQLTransformer(statement=_numeric_statement()),
        # Not Tokenizer: it turns "" into [""], one fake term shared by every user without text.
        RegexTokenizer(inputCol="text_clean", outputCol="text_tokens", pattern="\\s+", gaps=True,
                       minTokenLength=1),
        HashingTF(inputCol="text_tokens", outputCol="text_tf", numFeatures=settings.hashing_features,
                  binary=True),
        IDF(inputCol="text_tf", outputCol="text_tfidf", minDocFreq=settings.idf_min_doc_freq),
        ChiSqSelector(featuresCol="text_tfidf", outputCol="text_selected", labelCol=LABEL,
                      numTopFeatures=settings.selected_text_features),
        VectorAssembler(inputCols=[*numeric_feature_names(), "text_selected"], outputCol=FEATURES),
        LogisticRegression(featuresCol=FEATURES, labelCol=LABEL, probabilityCol=PROBABILITY,
                           regParam=settings.reg_param, elasticNetParam=settings.elastic_net_param,
                           maxIter=settings.max_iter, standardization=True, **weighting),
    ]
    return Pipeline(stages=stages)
