"""What the fitted model learned, and why it scores a user as it does.

Spark's LogisticRegression with ``standardization=True`` fits on standardised features but returns its
coefficients on the *original* feature scale (the assembled vector: log-transformed counts, flags and IDF
weights of the selected text terms). So a feature's contribution to one user's log-odds, relative to the
average training user, is ``coef_j * (x_j - mean_j)``, which equals the standardised coefficient
``coef_j * std_j`` times the standardised value ``(x_j - mean_j) / std_j``. The contributions of all features
add up to the user's log-odds minus the log-odds of the average training user.

Hashed text terms are mapped back to words with ``HashingTF.indexOf`` over a bounded vocabulary: the most
frequent distinct tokens of the training documents (``model.vocabulary_tokens`` of them at most). One-hot
slots of categorical features are named ``<column>=<level>``, e.g. ``top_category_30d=c12``, from the
fitted ``StringIndexer``'s levels.

Reason codes group all text terms into one "interested in …" contribution naming the user's strongest
positive terms, all selected levels of one categorical column into one contribution naming the user's
level, and describe the numeric ones by the raw value a marketer knows, e.g.
``"3 add-to-cart events in the last 7 days (+0.42)"`` (the number in brackets is the log-odds contribution).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
from pyspark.ml import PipelineModel, Transformer
from pyspark.ml.classification import LogisticRegressionModel
from pyspark.ml.feature import (
    ElementwiseProduct,
    HashingTF,
    IDFModel,
    StringIndexerModel,
    VectorAssembler,
    VectorSlicer,
)
from pyspark.ml.functions import vector_to_array
from pyspark.ml.linalg import Vectors
from pyspark.ml.stat import Summarizer
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from portrait.features.dates import LOOKBACK_DAYS, Transformation
from portrait.model.pipeline import (
    CATEGORICAL_FEATURES,
    COUNT_FEATURES,
    CUSTOMER_COUNT_FEATURES,
    FEATURES,
    MISSING_LEVEL,
    PROBABILITY,
    SPARSE_BLOCK,
    TEXT_COLUMN,
    level_column,
    numeric_feature_names,
)

REASON_CODES = "reason_codes"
TOP_REASONS = 3
TOP_TOKENS_PER_REASON = 3
TEXT_GROUP = "text_interests"
_UNKNOWN_TERM = "(rare term)"

# How a numeric feature reads to a marketer: formats over its raw (untransformed) user_features column, as
# (singular, plural) for counts, so a value of 1 reads "1 add-to-cart event", or one format for amounts.
_COUNT_WORDING: dict[str, tuple[str, ...]] = {
    "orders_30d": ("%d paid order in the last 30 days", "%d paid orders in the last 30 days"),
    "spend_30d": ("spent %.2f in the last 30 days",),
    "orders_90d": ("%d paid order in the last 90 days", "%d paid orders in the last 90 days"),
    "spend_90d": ("spent %.2f in the last 90 days",),
    "views_7d": ("%d product view in the last 7 days", "%d product views in the last 7 days"),
    "searches_7d": ("%d search in the last 7 days", "%d searches in the last 7 days"),
    "carts_7d": ("%d add-to-cart event in the last 7 days", "%d add-to-cart events in the last 7 days"),
    "favs_7d": ("%d favourite in the last 7 days", "%d favourites in the last 7 days"),
    "buys_7d": ("%d purchase in the last 7 days", "%d purchases in the last 7 days"),
    "views_30d": ("%d product view in the last 30 days", "%d product views in the last 30 days"),
    "searches_30d": ("%d search in the last 30 days", "%d searches in the last 30 days"),
    "carts_30d": ("%d add-to-cart event in the last 30 days", "%d add-to-cart events in the last 30 days"),
    "favs_30d": ("%d favourite in the last 30 days", "%d favourites in the last 30 days"),
    "buys_30d": ("%d purchase in the last 30 days", "%d purchases in the last 30 days"),
    "active_days_30d": ("active on %d of the last 30 days",),
    "days_since_first_event": ("first seen %d day ago", "first seen %d days ago"),
    "days_since_last_event": ("last active %d day ago", "last active %d days ago"),
    "purchase_days": ("bought on %d day on record", "bought on %d days on record"),
    "expected_purchases_30d": ("%.2f purchases expected in the next 30 days",),
    "expected_purchases_90d": ("%.2f purchases expected in the next 90 days",),
    "expected_purchases_365d": ("%.2f purchases expected in the next 365 days",),
}
_NO_ORDER = f"no paid order in the last {LOOKBACK_DAYS} days"
_NO_PURCHASE = "no paid order on record"
# How a categorical feature reads: (format over the user's level, text when the user has no level). A column
# without an entry reads "<column>: <level>", so a new categorical feature needs no wording to work.
_CATEGORY_WORDING: dict[str, tuple[str, str]] = {
    "top_category_30d": ("most events in category %s in the last 30 days", "no category events in the last 30 days"),
    "preferred_platform": ("shops mostly on %s", "no preferred platform"),
    "preferred_channel": ("arrives mostly via %s", "no preferred channel"),
    "price_tier": ("mostly looks at %s-priced items", "no price tier"),
    "preferred_daypart": ("most active time of day: %s", "no preferred time of day"),
}
_TEXT_PREFIX = "text:"
_LEVEL_SEPARATOR = "="


@dataclass(frozen=True)
class Explanation:
    """The fitted model's linear part and the training statistics of its assembled feature vector.

    ``feature_names[j]`` names slot ``j`` of the vector: a numeric feature name, ``text:<hashed index>``, or
    ``<categorical column>=<level>`` for a one-hot slot; ``text_terms`` maps a text slot (as a string, for
    JSON) to the tokens that hash to it, most frequent first.
    """

    feature_names: list[str]
    coefficients: list[float]
    intercept: float
    means: list[float]
    stds: list[float]
    text_terms: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Explanation:
        return cls(**data)

    @property
    def numeric_slots(self) -> int:
        return sum(1 for name in self.feature_names if _slot_kind(name) == "numeric")

    def categorical_slots(self) -> dict[str, list[int]]:
        """Categorical column → the slots of its selected levels, in slot order."""
        groups: dict[str, list[int]] = {}
        for j, name in enumerate(self.feature_names):
            if _slot_kind(name) == "categorical":
                groups.setdefault(name.split(_LEVEL_SEPARATOR, 1)[0], []).append(j)
        return groups

    def term_label(self, slot: int) -> str:
        tokens = self.text_terms.get(str(slot), [])
        return "/".join(tokens[:TOP_TOKENS_PER_REASON]) if tokens else _UNKNOWN_TERM


def _slot_kind(name: str) -> str:
    if name.startswith(_TEXT_PREFIX):
        return "text"
    return "categorical" if _LEVEL_SEPARATOR in name else "numeric"


def _stage(model: PipelineModel, kind: type, output_col: str | None = None):
    found = [s for s in model.stages if isinstance(s, kind)
             and (output_col is None or s.getOutputCol() == output_col)]
    if len(found) != 1:
        raise ValueError(f"expected one {kind.__name__} stage in the model, found {len(found)}")
    return found[0]


def _selected_block_slots(model: PipelineModel) -> list[int]:
    """The block slots the fitted selector keeps, in the order of its output: ascending, so the selected text
    terms come first, then the levels."""
    return sorted(int(i) for i in _stage(model, VectorSlicer).getIndices())


def sparse_block_names(model: PipelineModel) -> list[str]:
    """Names of the slots of the text + categorical block the selector picks from (see pipeline.SPARSE_BLOCK):
    ``text:<i>`` for each hashed term, then ``<column>=<level>`` for each one-hot level.

    ``OneHotEncoder(dropLast=True)`` drops the last index, which ``StringIndexer(handleInvalid="keep")``
    reserves for unseen levels, so a column's slots are exactly its training levels in index order.
    """
    hashing: HashingTF = _stage(model, HashingTF)
    names = [f"{_TEXT_PREFIX}{i}" for i in range(hashing.getNumFeatures())]
    if CATEGORICAL_FEATURES:
        indexer: StringIndexerModel = _stage(model, StringIndexerModel)
        levels = dict(zip(indexer.getInputCols(), indexer.labelsArray, strict=True))
        for column in CATEGORICAL_FEATURES:
            names += [f"{column}{_LEVEL_SEPARATOR}{level}" for level in levels[level_column(column)]]
    return names


def training_vocabulary(max_tokens: int) -> Transformation:
    """Feature rows → the ``max_tokens`` most frequent distinct tokens (``token``, ``documents``)."""

    def transform(rows: DataFrame) -> DataFrame:
        tokens = F.array_distinct(F.split(F.coalesce(F.col(TEXT_COLUMN), F.lit("")), r"\s+"))
        return (
            rows.select(F.explode(tokens).alias("token"))
            .where(F.length("token") > 0)
            .groupBy("token")
            .agg(F.count(F.lit(1)).alias("documents"))
            .orderBy(F.col("documents").desc(), F.col("token"))
            .limit(max_tokens)
        )

    return transform


def explain_model(model: PipelineModel, train: DataFrame, max_tokens: int) -> Explanation:
    """The model's coefficients with feature names, the training means/stds and the text slots' tokens.

    Collects the coefficients, two vectors of statistics and at most ``max_tokens`` tokens.
    """
    hashing: HashingTF = _stage(model, HashingTF)
    selector: VectorSlicer = _stage(model, VectorSlicer)
    assembler: VectorAssembler = _stage(model, VectorAssembler, FEATURES)
    lr: LogisticRegressionModel = _stage(model, LogisticRegressionModel)
    if selector.getInputCol() != SPARSE_BLOCK:
        raise ValueError(f"the model's selector reads {selector.getInputCol()}, not {SPARSE_BLOCK}")
    numeric = numeric_feature_names()
    if assembler.getInputCols()[: len(numeric)] != numeric:
        raise ValueError("the model's VectorAssembler does not start with the numeric features")
    selected = _selected_block_slots(model)
    block = sparse_block_names(model)
    names = numeric + [block[i] for i in selected]
    slot_of = {hashed: len(numeric) + k for k, hashed in enumerate(selected) if hashed < hashing.getNumFeatures()}
    text_terms: dict[str, list[str]] = {}
    for row in train.transform(training_vocabulary(max_tokens)).collect():  # at most max_tokens rows
        slot = slot_of.get(hashing.indexOf(row["token"]))
        if slot is not None:
            text_terms.setdefault(str(slot), []).append(row["token"])
    before_lr = PipelineModel(stages=model.stages[:-1])
    stats = before_lr.transform(train).select(
        Summarizer.mean(F.col(FEATURES)).alias("mean"), Summarizer.std(F.col(FEATURES)).alias("std")
    ).first()
    coefficients = [float(c) for c in lr.coefficients.toArray()]
    if len(coefficients) != len(names):
        raise ValueError(f"the model has {len(coefficients)} coefficients for {len(names)} named features")
    return Explanation(names, coefficients, float(lr.intercept), [float(m) for m in stats["mean"].toArray()],
                       [float(s) for s in stats["std"].toArray()], text_terms)


def top_features(explanation: Explanation, n: int = 20) -> pd.DataFrame:
    """The ``n`` strongest positive and ``n`` strongest negative features by standardised coefficient.

    Columns: ``feature``, ``tokens`` (text terms only), ``coefficient``, ``std``, ``standardised_coefficient``
    (``coefficient * std``: the log-odds change of one standard deviation), ``direction``.
    """
    table = pd.DataFrame({
        "feature": explanation.feature_names,
        "tokens": [explanation.term_label(j) if _slot_kind(name) == "text" else ""
                   for j, name in enumerate(explanation.feature_names)],
        "coefficient": explanation.coefficients,
        "std": explanation.stds,
    })
    table["standardised_coefficient"] = table["coefficient"] * table["std"]
    ranked = table[table["standardised_coefficient"] != 0].sort_values(
        ["standardised_coefficient", "feature"], ascending=[False, True])
    positive = ranked[ranked["standardised_coefficient"] > 0].head(n).assign(direction="positive")
    negative = ranked[ranked["standardised_coefficient"] < 0].iloc[::-1].head(n).assign(direction="negative")
    return pd.concat([positive, negative], ignore_index=True)


# ---------------------------------------------------------------------------------------------
# Reason codes
# ---------------------------------------------------------------------------------------------


def _describe_numeric(name: str) -> Column:
    if name == "days_since_last_order_log":
        return F.when(F.col("days_since_last_order").isNull(), F.lit(_NO_ORDER)).otherwise(
            _counted(("last paid order %d day ago", "last paid order %d days ago"),
                     F.col("days_since_last_order").cast("long")))
    if name == "has_ordered_90d":
        return F.when(F.col("days_since_last_order").isNull(), F.lit(_NO_ORDER)).otherwise(
            F.lit(f"a paid order in the last {LOOKBACK_DAYS} days"))
    if name in ("days_since_last_purchase_log", "has_purchased"):
        recency = F.col("days_since_last_purchase")
        known = (_counted(("last purchase %d day ago", "last purchase %d days ago"), recency.cast("long"))
                 if name == "days_since_last_purchase_log" else F.lit("a returning customer"))
        return F.when(recency.isNull(), F.lit(_NO_PURCHASE)).otherwise(known)
    if name == "p_alive_value":
        return F.when(F.col("p_alive").isNull(), F.lit("no estimate of being still a customer")).otherwise(
            F.format_string("%.0f%% likely still a customer", F.col("p_alive") * 100))
    raw = name.removesuffix("_log")
    forms = _COUNT_WORDING[raw]
    value = F.coalesce(F.col(raw), F.lit(0))
    return _counted(forms, value.cast("double" if "%.2f" in forms[0] else "long"))


def _describe_category(column: str) -> Column:
    level, missing = _CATEGORY_WORDING.get(column, (f"{column}: %s", f"{column}: none"))
    value = F.col(column).cast("string")
    return F.when(value.isNull() | (value == MISSING_LEVEL), F.lit(missing)).otherwise(F.format_string(level, value))


def _counted(forms: tuple[str, ...], value: Column) -> Column:
    if len(forms) == 1:
        return F.format_string(forms[0], value)
    singular, plural = forms
    return F.when(value == 1, F.format_string(singular, value)).otherwise(F.format_string(plural, value))


REASON_CONTRIBUTIONS = "reason_contributions"
_X = "__x"
_TEXT_WEIGHTED = "__text_weighted"
_TEXT_RANKED = "__text_ranked"
_TEXT_RANKS = "__text_ranks"
_NO_INTERESTS = "few matching interests in searches and viewed items"


@dataclass(frozen=True)
class _Reasons:
    """The reasons of one model as columns over its assembled vector ``__x``: each reason's log-odds
    contribution, and the sentence describing it (built only for the reasons a row shows)."""

    contributions: list[Column]
    texts: list[Column]
    prepare: dict[str, Column]  # helper columns the contributions and texts read, added before them
    stages: list[Transformer]  # vector transformers the helper columns read, applied first

    def ranked(self) -> Column:
        """``struct<order, slot, c>`` of every non-zero contribution, largest size first.

        Sorted by natural struct order on ``(-|c|, slot)``: ties keep the reasons' order (numeric, text,
        categorical), and no comparator lambda runs per comparison.
        """
        entries = F.transform(F.array(*self.contributions),
                              lambda c, i: F.struct((-F.abs(c)).alias("order"), i.alias("slot"), c.alias("c")))
        return F.sort_array(F.filter(entries, lambda e: e["c"] != 0))

    def described(self, entries: Column) -> Column:
        """``struct<c, text>`` for each entry of :meth:`ranked` (a CASE picks the one text to format)."""

        def text_of(slot: Column) -> Column:
            case = F.when(slot == 0, self.texts[0])
            for index, text in enumerate(self.texts[1:], start=1):
                case = case.when(slot == index, text)
            return case

        return F.transform(entries, lambda e: F.struct(e["c"].alias("c"), text_of(e["slot"]).alias("text")))


def _text_reason_parts(model: PipelineModel, explanation: Explanation, first: int,
                       count: int) -> tuple[Column, Column, list[str], list[Transformer]]:
    """The text group's contribution and its strongest terms, from native vector products.

    Terms are binary before IDF, so a selected text slot holds its term's IDF weight or 0, and a present
    term's contribution ``(idf - mean) * coef`` is a constant of the slot. Two ``ElementwiseProduct``
    stages do the per-slot work that would otherwise run as an interpreted lambda over every slot of every
    row: one weighs the slots by their coefficients (the group's contribution is their sum minus
    ``coef · mean``), one maps a present slot with a positive contribution to its rank among those (1 =
    weakest), so the strongest terms are the largest values left after removing zeros.

    Returns (contribution, ranks of the user's strongest terms, labels by rank (index r - 1), stages).
    """
    hashing: HashingTF = _stage(model, HashingTF)
    if not hashing.getBinary():
        raise ValueError("reason codes need the text terms binary before IDF (HashingTF(binary=True))")
    idf = _stage(model, IDFModel).idf
    selected = _selected_block_slots(model)
    slots = range(first, first + count)
    weight_of = {j: float(idf[selected[j - first]]) for j in slots}  # text slots come first in the selection
    present = {j: (weight_of[j] - explanation.means[j]) * explanation.coefficients[j] for j in slots}
    positive = sorted((j for j in slots if weight_of[j] > 0 and present[j] > 0), key=lambda j: (present[j], -j))
    size = len(explanation.feature_names)
    by_coefficient, by_rank = [0.0] * size, [0.0] * size
    for j in slots:
        by_coefficient[j] = explanation.coefficients[j]
    for rank, j in enumerate(positive, start=1):
        by_rank[j] = rank / weight_of[j]
    weighted = ElementwiseProduct(scalingVec=Vectors.dense(by_coefficient), inputCol=FEATURES,
                                  outputCol=_TEXT_WEIGHTED)
    ranked = ElementwiseProduct(scalingVec=Vectors.dense(by_rank), inputCol=FEATURES, outputCol=_TEXT_RANKED)
    offset = sum(explanation.coefficients[j] * explanation.means[j] for j in slots)
    total = F.aggregate(F.slice(vector_to_array(_TEXT_WEIGHTED), first + 1, count), F.lit(0.0),
                        lambda acc, value: acc + value) - F.lit(offset)
    ranks = F.slice(F.sort_array(F.array_remove(F.slice(vector_to_array(_TEXT_RANKED), first + 1, count), 0.0),
                                 asc=False), 1, TOP_TOKENS_PER_REASON)
    labels = [explanation.term_label(j) for j in positive]
    return total, ranks, labels, [weighted, ranked]


def _numeric_names_of(feature_names: list[str]) -> list[str]:
    """The numeric features an explained model has: a leading part of today's (a model trained before the
    purchase-history features were added has fewer, and still explains its scores)."""
    known = numeric_feature_names()
    k = next((i for i, name in enumerate(feature_names) if name not in known), len(feature_names))
    if list(feature_names[:k]) != known[:k] or k == 0:
        raise ValueError("the explanation's features do not start with the model's numeric features")
    return list(feature_names[:k])


def _reasons(model: PipelineModel, explanation: Explanation) -> _Reasons:
    numeric = _numeric_names_of(explanation.feature_names)
    if any(raw not in _COUNT_WORDING for raw in (*COUNT_FEATURES, *CUSTOMER_COUNT_FEATURES)):
        raise ValueError("every count feature needs a wording")
    k = len(numeric)
    kinds = [_slot_kind(name) for name in explanation.feature_names[k:]]
    text_slots = kinds.count("text")
    # Selected slots are in block order: all text terms, then the levels (the text group is one slice).
    if kinds[:text_slots] != ["text"] * text_slots:
        raise ValueError("the explanation's text slots do not directly follow the numeric features")
    x = F.col(_X)
    contributions, texts, prepare = [], [], {}
    for j, name in enumerate(numeric):
        contributions.append(F.lit(explanation.coefficients[j]) * (x[j] - F.lit(explanation.means[j])))
        texts.append(_describe_numeric(name))
    stages = []
    if text_slots:
        text_total, ranks, label_by_rank, text_stages = _text_reason_parts(model, explanation, k, text_slots)
        stages += text_stages
        prepare[_TEXT_RANKS] = ranks
        contributions.append(text_total)
        if label_by_rank:
            chosen = F.col(_TEXT_RANKS)
            labels = F.array(*[F.lit(label) for label in label_by_rank])
            words = F.array_join(F.transform(chosen, lambda r: labels[F.round(r).cast("int") - 1]), ", ")
            texts.append(F.when(F.size(chosen) > 0, F.concat(F.lit("interested in: "), words))
                         .otherwise(F.lit(_NO_INTERESTS)))
        else:
            texts.append(F.lit(_NO_INTERESTS))
    for column, slots in explanation.categorical_slots().items():
        contributions.append(sum((F.lit(explanation.coefficients[j]) * (x[j] - F.lit(explanation.means[j]))
                                  for j in slots), F.lit(0.0)))
        texts.append(_describe_category(column))
    return _Reasons(contributions, texts, prepare, stages)


def _with_reasons(model: PipelineModel, explanation: Explanation, rows: DataFrame,
                  output: Callable[[_Reasons], Column], name: str, score_output: str | None = None) -> DataFrame:
    reasons = _reasons(model, explanation)
    assembled = PipelineModel(stages=[*model.stages[:-1], *reasons.stages]).transform(rows)
    scores = []
    if score_output is not None:  # the model's last stage on the same assembled rows: one pass, not two
        assembled = model.stages[-1].transform(assembled)
        scores.append(vector_to_array(PROBABILITY)[1].alias(score_output))
    assembled = assembled.withColumn(_X, vector_to_array(FEATURES)).withColumns(reasons.prepare)
    return assembled.select(*rows.columns, *scores, output(reasons).alias(name))


def reason_contributions(model: PipelineModel, explanation: Explanation) -> Transformation:
    """Add ``reason_contributions``: every non-zero contribution as ``struct<c: double, text: string>``,
    largest size first (ties in the order numeric features, text, categorical columns).

    Input: ``user_features`` rows (the model's input columns); every input column is kept. ``c`` is
    ``coef_j * (x_j - mean_j)`` on the log-odds scale for a numeric feature, the sum over all text
    terms for the one text group, whose ``text`` names the user's strongest positive terms, and the sum over
    a categorical column's selected levels for that column, whose ``text`` names the user's level. The
    ``c`` of a row add up to its log-odds minus ``intercept + coef · mean``.
    """

    def transform(rows: DataFrame) -> DataFrame:
        return _with_reasons(model, explanation, rows, lambda r: r.described(r.ranked()), REASON_CONTRIBUTIONS)

    return transform


def reason_codes(model: PipelineModel, explanation: Explanation, top: int = TOP_REASONS,
                 output: str = REASON_CODES, score_output: str | None = None) -> Transformation:
    """Add ``output`` (default ``reason_codes``): the user's ``top`` largest contributions as sentences a
    marketer can read; with ``score_output``, also the model's probability of the positive class (as
    :func:`portrait.model.scoring.score` gives it) from the same pass through the model's feature stages.

    Each reads ``"<what the user did> (<signed log-odds contribution>)"``, e.g.
    ``"3 add-to-cart events in the last 7 days (+0.42)"`` or ``"interested in: 连衣裙, 手机 (+0.21)"``; see
    :func:`reason_contributions`. Every input column is kept.
    """

    def transform(rows: DataFrame) -> DataFrame:
        # Only the shown reasons are put into words: one CASE branch each, not a sentence per feature per row.
        def sentences(reasons: _Reasons) -> Column:
            return F.transform(reasons.described(F.slice(reasons.ranked(), 1, top)),
                               lambda r: F.format_string("%s (%+.2f)", r["text"], r["c"]))

        return _with_reasons(model, explanation, rows, sentences, output, score_output)

    return transform
