"""The propensity model as one Spark ML Pipeline, so the logged model takes raw ``user_features`` rows.

Stages:

1. ``SQLTransformer``, the numeric branch's imputation and transform. Count and money columns are NOT NULL
   in the contract except where "nothing happened" is the value, so a missing count is imputed as 0 (not
   the mean: a user without events has zero events) and every count goes through ``log1p`` (counts and
   money are heavy-tailed; the log keeps a few bots and big spenders from dominating). Recency without an
   order is imputed as the lookback length, together with a "has ordered" flag so the model can tell
   "no order" from "an order 90 days ago". The imputation is a fixed rule, so it is deterministic and the
   same at fit and scoring time; Spark's ``Imputer`` (mean/median learned from the training rows) would
   add a fitted statistic and nothing the rule does not already express.
   Scaling is left to ``LogisticRegression(standardization=True)``: it fits on features divided by their
   training standard deviation (so the L2/elastic-net penalty treats every feature alike) and reports the
   coefficients on the original scale, which :mod:`portrait.model.explain` relies on. A separate
   ``StandardScaler`` stage would be the same transform logged twice.
2. Categorical branch: each column of :data:`CATEGORICAL_FEATURES` (null read as the level ``(none)``)
   → ``StringIndexer(handleInvalid="keep", frequencyDesc)`` → ``OneHotEncoder(dropLast=True)``. With
   ``keep`` a level not seen in training gets the extra last index, which ``dropLast`` turns into the
   all-zero vector: at scoring, an unseen category adds nothing instead of failing the job. Levels are
   ordered by training frequency, ties alphabetically, so the slots are deterministic.
3. Text branch: ``RegexTokenizer → HashingTF(binary) → IDF``. The term frequencies are *binary*, so after
   IDF every hashed term takes exactly two values (absent, or its IDF weight).
4. Chi-square selection over the text and categorical block (``VectorAssembler`` of the TF-IDF terms and
   the one-hot levels → :class:`ChiSquareTopK`, ``model.selected_text_features`` slots). Chi-square needs
   categorical input, and both blocks are: each slot is a presence/absence indicator (Spark's test treats
   each distinct value as a category, so a binary-TF IDF column is exactly a 2×2 presence test, where raw
   counts would give one category per count). Numeric features are not binned into the selector: there
   are few of them, each carries signal, and the L2 penalty handles them.
   Not Spark's ``ChiSqSelector``: it ranks by p-value, computed as ``1 - CDF(statistic)``, which is exactly
   0.0 for every statistic above about 72 (one degree of freedom), and breaks ties by the lowest slot
   index. On tens of thousands of rows hundreds of hashed terms pass that point, so "the top 300" became
   the strongest terms plus whichever had the lowest hash buckets. :class:`ChiSquareTopK` runs the same
   test (``ChiSquareTest``) and ranks by the statistic (scikit-learn's ``SelectKBest`` ranks by score
   too); with one degree of freedom for every slot that is the p-value order without the underflow.
   Its fitted form is a plain ``VectorSlicer``, so the logged model holds only built-in Spark stages.
5. ``VectorAssembler`` of the numeric features and the selected slots → ``LogisticRegression``
   (standardised, L2/elastic-net regularised: unregularised LR overfits hundreds of weak text features;
   optional class weights).
"""

from __future__ import annotations

from pyspark import keyword_only
from pyspark.ml import Estimator, Pipeline
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.feature import (
    IDF,
    HashingTF,
    OneHotEncoder,
    RegexTokenizer,
    SQLTransformer,
    StringIndexer,
    VectorAssembler,
    VectorSlicer,
)
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasFeaturesCol, HasLabelCol, HasOutputCol
from pyspark.ml.stat import ChiSquareTest
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from portrait.config import ModelConfig
from portrait.features.dates import LOOKBACK_DAYS
from portrait.model.training import LABEL
from portrait.schemas import USER_FEATURES

COUNT_FEATURES = (
    "orders_30d", "spend_30d", "orders_90d", "spend_90d",
    "views_7d", "searches_7d", "carts_7d", "favs_7d", "buys_7d",
    "views_30d", "searches_30d", "carts_30d", "favs_30d", "buys_30d",
    "active_days_30d", "days_since_first_event", "days_since_last_event",
)
# Purchase-history columns of the population (portrait/features/population.py): what the customer_value
# models say of a person over the whole retention window, where the counts above see only the lookback.
CUSTOMER_COUNT_FEATURES = ("purchase_days", "expected_purchases_30d", "expected_purchases_90d",
                           "expected_purchases_365d")
# Expected purchases enter as log(e + this), not log1p: most customers expect far less than one purchase, where
# log1p is nearly linear, while the log-odds of buying at all grow with log(e) (P = 1 - exp(-e) ~ e).
EXPECTATION_FLOOR = 0.01
# Recency without a purchase in the retention window is imputed as the longest retention, with a flag.
NO_PURCHASE_RECENCY = 3650
# Categorical user_features columns one-hot encoded into the model. A new one is one name here; only
# names the USER_FEATURES contract has are used, so the list may run ahead of the feature work.
_CATEGORICAL_CANDIDATES = (
    "top_category_30d", "preferred_platform", "preferred_channel", "price_tier", "preferred_daypart",
)
CATEGORICAL_FEATURES: tuple[str, ...] = tuple(
    name for name in _CATEGORICAL_CANDIDATES if name in USER_FEATURES.schema.fieldNames()
)
# The level a null categorical value gets, so "no category" is learned like any other level.
MISSING_LEVEL = "(none)"
TEXT_COLUMN = "text_document"
# Columns a scoring input must have: the logged model's signature.
MODEL_INPUT_COLUMNS = ("user_id", *COUNT_FEATURES, "days_since_last_order", *CUSTOMER_COUNT_FEATURES,
                       "days_since_last_purchase", "p_alive", *CATEGORICAL_FEATURES, TEXT_COLUMN)
FEATURES = "features"
PROBABILITY = "probability"
# Row weight column read by LogisticRegression when model.class_weights is on (fit only; scoring ignores it).
WEIGHT = "class_weight"


def level_column(name: str) -> str:
    """The cleaned string column the ``StringIndexer`` reads for categorical feature ``name``."""
    return f"{name}_level"


def onehot_column(name: str) -> str:
    return f"{name}_onehot"


# The assembled text + categorical block the selector picks from: the hashed terms first
# (``model.hashing_features`` slots), then each categorical column's one-hot levels in CATEGORICAL_FEATURES order.
SPARSE_BLOCK = "sparse_block"
SELECTED = "sparse_selected"


def numeric_feature_names() -> list[str]:
    return ([f"{name}_log" for name in COUNT_FEATURES] + ["days_since_last_order_log", "has_ordered_90d"]
            + [f"{name}_log" for name in CUSTOMER_COUNT_FEATURES]
            + ["days_since_last_purchase_log", "has_purchased", "p_alive_value"])


def _numeric_statement() -> str:
    logs = [f"log1p(cast(coalesce({name}, 0) as double)) AS {name}_log" for name in COUNT_FEATURES]
    recency = (
        f"log1p(cast(coalesce(days_since_last_order, {LOOKBACK_DAYS}) as double)) AS days_since_last_order_log"
    )
    flag = "CASE WHEN days_since_last_order IS NULL THEN 0.0 ELSE 1.0 END AS has_ordered_90d"
    customer_logs = ["log1p(cast(coalesce(purchase_days, 0) as double)) AS purchase_days_log"] + [
        f"ln(cast(coalesce({name}, 0) as double) + {EXPECTATION_FLOOR}) AS {name}_log"
        for name in CUSTOMER_COUNT_FEATURES if name != "purchase_days"]
    purchase_recency = ("log1p(cast(coalesce(days_since_last_purchase, "
                        f"{NO_PURCHASE_RECENCY}) as double)) AS days_since_last_purchase_log")
    purchased = "CASE WHEN days_since_last_purchase IS NULL THEN 0.0 ELSE 1.0 END AS has_purchased"
    # Unknown (no purchase, or no value fit that date) reads as not alive: the flag above tells them apart.
    alive = "cast(coalesce(p_alive, 0.0) as double) AS p_alive_value"
    text = f"coalesce({TEXT_COLUMN}, '') AS text_clean"
    levels = [f"coalesce(cast({name} as string), '{MISSING_LEVEL}') AS {level_column(name)}"
              for name in CATEGORICAL_FEATURES]
    customer = [*customer_logs, purchase_recency, purchased, alive]
    return "SELECT *, " + ", ".join([*logs, recency, flag, *customer, text, *levels]) + " FROM __THIS__"


def _categorical_stages() -> list:
    if not CATEGORICAL_FEATURES:
        return []
    return [
        StringIndexer(inputCols=[level_column(c) for c in CATEGORICAL_FEATURES],
                      outputCols=[f"{c}_index" for c in CATEGORICAL_FEATURES],
                      handleInvalid="keep", stringOrderType="frequencyDesc"),
        OneHotEncoder(inputCols=[f"{c}_index" for c in CATEGORICAL_FEATURES],
                      outputCols=[onehot_column(c) for c in CATEGORICAL_FEATURES], dropLast=True),
    ]


class ChiSquareTopK(Estimator, HasFeaturesCol, HasLabelCol, HasOutputCol):
    """Keep the ``numTopFeatures`` slots of ``featuresCol`` with the largest chi-square statistic against
    ``labelCol`` (ties: lower slot first); fits to a ``VectorSlicer`` with those slots in ascending order.

    Each slot's distinct values are its categories (Pearson's test of independence, ``ChiSquareTest``).
    Ranking by the statistic, not the p-value, is the point: see the module docstring. Only the selected
    indices (at most ``numTopFeatures``) reach the driver.
    """

    numTopFeatures = Param(Params._dummy(), "numTopFeatures", "number of slots to keep",
                           typeConverter=TypeConverters.toInt)

    @keyword_only
    def __init__(self, *, featuresCol: str = "features", labelCol: str = "label", outputCol: str = "selected",
                 numTopFeatures: int = 50) -> None:
        super().__init__()
        self._setDefault(numTopFeatures=50)
        self._set(**self._input_kwargs)

    def getNumTopFeatures(self) -> int:
        return self.getOrDefault(self.numTopFeatures)

    def _fit(self, dataset: DataFrame) -> VectorSlicer:
        features, label = self.getFeaturesCol(), self.getLabelCol()
        tests = ChiSquareTest.test(dataset.select(features, label), features, label, flatten=True)
        top = (tests.orderBy(F.col("statistic").desc(), F.col("featureIndex"))
               .limit(self.getNumTopFeatures()).select("featureIndex").collect())
        indices = sorted(int(row["featureIndex"]) for row in top)
        return VectorSlicer(inputCol=features, outputCol=self.getOutputCol(), indices=indices)


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
        *_categorical_stages(),
        VectorAssembler(inputCols=["text_tfidf", *[onehot_column(c) for c in CATEGORICAL_FEATURES]],
                        outputCol=SPARSE_BLOCK),
        ChiSquareTopK(featuresCol=SPARSE_BLOCK, outputCol=SELECTED, labelCol=LABEL,
                      numTopFeatures=settings.selected_text_features),
        VectorAssembler(inputCols=[*numeric_feature_names(), SELECTED], outputCol=FEATURES),
        LogisticRegression(featuresCol=FEATURES, labelCol=LABEL, probabilityCol=PROBABILITY,
                           regParam=settings.reg_param, elasticNetParam=settings.elastic_net_param,
                           maxIter=settings.max_iter, standardization=True, **weighting),
    ]
    return Pipeline(stages=stages)
