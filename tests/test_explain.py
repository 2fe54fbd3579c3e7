"""Top features and reason codes of a fitted model on planted data (portrait/model/explain.py)."""

from __future__ import annotations

import math

import pytest
from pyspark.ml.feature import HashingTF, IDFModel
from pyspark.ml.functions import vector_to_array
from pyspark.sql import functions as F

from portrait.model.explain import (
    REASON_CODES,
    REASON_CONTRIBUTIONS,
    Explanation,
    explain_model,
    reason_codes,
    reason_contributions,
    sparse_block_names,
    top_features,
)
from portrait.model.pipeline import (
    CATEGORICAL_FEATURES,
    MISSING_LEVEL,
    SPARSE_BLOCK,
    build_pipeline,
    numeric_feature_names,
    onehot_column,
)
from portrait.model.scoring import score
from tests.test_scoring import INFORMATIVE, LABELLED, SETTINGS, VOCABULARY, _row

NUMERIC = numeric_feature_names()


@pytest.fixture(scope="module")
def labelled(spark):
    return spark.createDataFrame([_row(i) for i in range(200)], LABELLED)


@pytest.fixture(scope="module")
def model(labelled):
    return build_pipeline(SETTINGS).fit(labelled)


@pytest.fixture(scope="module")
def explanation(model, labelled):
    return explain_model(model, labelled, max_tokens=100)


def _hashing(model) -> HashingTF:
    return next(s for s in model.stages if isinstance(s, HashingTF))


def test_explanation_names_every_coefficient_and_maps_text_slots_back_to_tokens(model, explanation):
    informative = f"text:{_hashing(model).indexOf(INFORMATIVE)}"
    assert explanation.feature_names[: len(NUMERIC)] == NUMERIC
    assert informative in explanation.feature_names
    n = len(NUMERIC) + SETTINGS.selected_text_features
    assert len(explanation.feature_names) == len(explanation.coefficients) == len(explanation.means) == n
    slot = explanation.feature_names.index(informative)
    assert explanation.text_terms[str(slot)] == [INFORMATIVE]
    assert all(t in (*VOCABULARY, INFORMATIVE) for tokens in explanation.text_terms.values() for t in tokens)
    assert Explanation.from_dict(explanation.to_dict()) == explanation


def test_explanation_means_are_training_means_of_the_transformed_features(explanation, labelled):
    carts = [r["carts_7d"] for r in labelled.select("carts_7d").collect()]
    expected = sum(math.log1p(c) for c in carts) / len(carts)
    assert explanation.means[NUMERIC.index("carts_7d_log")] == pytest.approx(expected, abs=1e-12)


def test_top_features_lead_with_the_planted_rule(model, explanation):
    table = top_features(explanation, n=3)
    positive = table[table["direction"] == "positive"]
    informative = f"text:{_hashing(model).indexOf(INFORMATIVE)}"
    assert set(positive["feature"].head(2)) == {"carts_7d_log", informative}
    assert positive.loc[positive["feature"] == informative, "tokens"].item() == INFORMATIVE
    assert (table[table["direction"] == "negative"]["standardised_coefficient"] < 0).all()
    assert positive["standardised_coefficient"].is_monotonic_decreasing


def test_contributions_add_up_to_the_log_odds_above_the_average_user(model, explanation, labelled):
    """sum_j coef_j * (x_j - mean_j) = margin - (intercept + coef . mean), for every user."""
    offset = explanation.intercept + sum(c * m for c, m in zip(explanation.coefficients, explanation.means, strict=True))
    contributions = labelled.transform(reason_contributions(model, explanation))
    margins = model.transform(labelled).select("user_id", vector_to_array("rawPrediction")[1].alias("margin"))
    rows = contributions.select("user_id", F.aggregate(REASON_CONTRIBUTIONS, F.lit(0.0), lambda a, r: a + r["c"])
                                .alias("total")).join(margins, "user_id", how="inner").collect()
    assert len(rows) == 200
    for row in rows:
        assert row["total"] == pytest.approx(row["margin"] - offset, abs=1e-9)


def test_reason_codes_exact_for_a_hand_built_explanation(spark, model, explanation, labelled):
    """Coefficients set by hand: carts_7d_log +1, days_since_last_order_log -0.5, the coupon term +0.5."""
    coupon_slot = explanation.feature_names.index(f"text:{_hashing(model).indexOf(INFORMATIVE)}")
    coefficients = [0.0] * len(explanation.feature_names)
    coefficients[NUMERIC.index("carts_7d_log")] = 1.0
    coefficients[NUMERIC.index("days_since_last_order_log")] = -0.5
    coefficients[coupon_slot] = 0.5
    hand_built = Explanation(explanation.feature_names, coefficients, 0.0, [0.0] * len(coefficients),
                             [1.0] * len(coefficients), explanation.text_terms)
    idf = next(s for s in model.stages if isinstance(s, IDFModel)).idf[_hashing(model).indexOf(INFORMATIVE)]
    assert idf == pytest.approx(math.log(201 / 101))  # 100 of 200 documents hold the term
    users = labelled.where(F.col("user_id").isin("u000", "u001", "u002", "u003"))
    actual = {r["user_id"]: r[REASON_CODES] for r in users.transform(reason_codes(model, hand_built)).collect()}
    coupon = f"interested in: {INFORMATIVE} (+{0.5 * idf:.2f})"
    assert actual == {
        # u000: no order (recency -> log1p(90)), coupon, no carts.
        "u000": [f"no paid order in the last 90 days (-{0.5 * math.log1p(90):.2f})", coupon],
        # u001: last order 1 day ago, one cart, no coupon.
        "u001": ["1 add-to-cart event in the last 7 days (+0.69)", "last paid order 1 day ago (-0.35)"],
        # u002: two carts, last order 2 days ago, coupon: three reasons by size.
        "u002": ["2 add-to-cart events in the last 7 days (+1.10)", "last paid order 2 days ago (-0.55)", coupon],
        # u003: last order 3 days ago only.
        "u003": ["last paid order 3 days ago (-0.69)"],
    }


def test_reason_codes_of_the_fitted_model_name_the_planted_rule_for_positives(model, explanation, labelled):
    scored = labelled.where(F.col("label") == 1.0).transform(reason_codes(model, explanation))
    assert scored.columns == [*labelled.columns, REASON_CODES]
    rows = scored.select("user_id", "carts_7d", REASON_CODES).collect()
    assert len(rows) == 66
    for row in rows:
        reasons = row[REASON_CODES]
        assert 1 <= len(reasons) <= 3
        events = "event" if row["carts_7d"] == 1 else "events"
        assert f"{row['carts_7d']} add-to-cart {events} in the last 7 days (+" in " | ".join(reasons), row
        assert any(r.startswith(f"interested in: {INFORMATIVE}") and "(+" in r for r in reasons), row


def test_reason_codes_with_the_score_match_score_and_reason_codes_apart(model, explanation, labelled):
    """One pass through the feature stages gives exactly what scoring and explaining separately give."""
    together = labelled.transform(reason_codes(model, explanation, score_output="p"))
    assert together.columns == [*labelled.columns, "p", REASON_CODES]
    apart = labelled.transform(score(model, "p")).transform(reason_codes(model, explanation))
    expected = {r["user_id"]: (r["p"], r[REASON_CODES]) for r in apart.collect()}
    actual = {r["user_id"]: (r["p"], r[REASON_CODES]) for r in together.collect()}
    assert len(actual) == 200
    assert actual == expected


# ---------------------------------------------------------------------------------------------
# Categorical features: one-hot slots named <column>=<level>, one reason per column
# ---------------------------------------------------------------------------------------------

# Every slot of the text + categorical block selected, so all levels are in the model.
# Every column of tests.test_scoring._row has the same five levels (v0..v3 and null).
LEVELS_PER_COLUMN = 5
ALL_SLOTS = SETTINGS.model_copy(
    update={"selected_text_features": SETTINGS.hashing_features + LEVELS_PER_COLUMN * len(CATEGORICAL_FEATURES)})


@pytest.fixture(scope="module")
def model_with_levels(labelled):
    return build_pipeline(ALL_SLOTS).fit(labelled)


def test_one_hot_slots_are_named_by_level_as_the_assembler_names_them(model_with_levels, labelled):
    """Names agree with the VectorAssembler metadata, which names one-hot slots ``<column>_onehot_<level>``."""
    assert CATEGORICAL_FEATURES[0] == "top_category_30d"
    names = sparse_block_names(model_with_levels)
    block = model_with_levels.transform(labelled).schema[SPARSE_BLOCK].metadata["ml_attr"]["attrs"]
    from_metadata = {a["idx"]: a["name"] for kind in block.values() for a in kind}
    assert len(from_metadata) == len(names) == ALL_SLOTS.selected_text_features
    levels = names[SETTINGS.hashing_features:SETTINGS.hashing_features + LEVELS_PER_COLUMN]
    # Four levels of 40 users each and (none) of 40: equal counts, so alphabetical order.
    assert levels == [f"top_category_30d={v}" for v in (MISSING_LEVEL, "v0", "v1", "v2", "v3")]
    for idx, name in enumerate(names[SETTINGS.hashing_features:], start=SETTINGS.hashing_features):
        column, level = name.split("=", 1)
        assert from_metadata[idx] == f"{onehot_column(column)}_{level}"


def test_reason_codes_name_the_users_category_level(spark, model_with_levels, labelled):
    """Hand-built: +1 on level v1, +0.5 on (none), everything else 0; an unseen level adds nothing."""
    explanation = explain_model(model_with_levels, labelled, max_tokens=100)
    names = explanation.feature_names
    coefficients = [0.0] * len(names)
    coefficients[names.index("top_category_30d=v1")] = 1.0
    coefficients[names.index(f"top_category_30d={MISSING_LEVEL}")] = 0.5
    hand_built = Explanation(names, coefficients, 0.0, [0.0] * len(names), [1.0] * len(names),
                             explanation.text_terms)
    users = labelled.where(F.col("user_id").isin("u000", "u001", "u004", "u006")).withColumn(
        "top_category_30d", F.when(F.col("user_id") == "u006", F.lit("never-seen"))
        .otherwise(F.col("top_category_30d")))
    actual = {r["user_id"]: r[REASON_CODES] for r in users.transform(reason_codes(model_with_levels, hand_built))
              .collect()}
    assert actual == {
        "u000": [],  # level v0: coefficient 0
        "u001": ["most events in category v1 in the last 30 days (+1.00)"],
        "u004": ["no category events in the last 30 days (+0.50)"],  # null top_category_30d
        "u006": [],  # a level not seen in training: the all-zero one-hot vector
    }
    contributions = users.transform(reason_contributions(model_with_levels, explanation)).collect()
    assert all(len(r[REASON_CONTRIBUTIONS]) >= 1 for r in contributions)


def test_interest_reason_names_the_three_strongest_present_terms(spark, model_with_levels, labelled):
    """Hand-built text coefficients: present terms contribute coupon 0.9, phone 0.6, shoes and bag 0.3 each
    (a tie: the lower slot first), dress 0.1, tea -0.4. A term never names the reason when its contribution
    is negative, and only the three strongest present terms are named."""
    explanation = explain_model(model_with_levels, labelled, max_tokens=100)
    names, hashing = explanation.feature_names, _hashing(model_with_levels)
    idf = next(s for s in model_with_levels.stages if isinstance(s, IDFModel)).idf
    targets = {INFORMATIVE: 0.9, "phone": 0.6, "shoes": 0.3, "bag": 0.3, "dress": 0.1, "tea": -0.4}
    assert len({hashing.indexOf(word) for word in targets}) == len(targets), "hash collision in the test"
    coefficients = [0.0] * len(names)
    for word, target in targets.items():
        coefficients[names.index(f"text:{hashing.indexOf(word)}")] = target / idf[hashing.indexOf(word)]
    hand_built = Explanation(names, coefficients, 0.0, [0.0] * len(names), [1.0] * len(names),
                             explanation.text_terms)
    def label(word: str) -> str:  # a slot is named by every training token hashed to it (dress/lamp collide)
        return hand_built.term_label(names.index(f"text:{hashing.indexOf(word)}"))

    tied = ", ".join(label(w) for w in sorted(["shoes", "bag"], key=lambda w: names.index(f"text:{hashing.indexOf(w)}")))
    documents = {"u050": "dress tea shoes coupon phone", "u051": "bag shoes dress", "u079": "dress tea",
                 "u080": "tea", "u081": "book"}
    assert hashing.indexOf("book") not in {hashing.indexOf(word) for word in targets}
    users = labelled.where(F.col("user_id").isin(*documents)).withColumn(
        "text_document", F.create_map(*[F.lit(x) for kv in documents.items() for x in kv])[F.col("user_id")])
    actual = {r["user_id"]: r[REASON_CODES]
              for r in users.transform(reason_codes(model_with_levels, hand_built)).collect()}
    assert actual == {
        "u050": [f"interested in: {label('coupon')}, {label('phone')}, {label('shoes')} (+1.50)"],  # not dress
        "u051": [f"interested in: {tied}, {label('dress')} (+0.70)"],
        "u079": [f"interested in: {label('dress')} (-0.30)"],
        "u080": ["few matching interests in searches and viewed items (-0.40)"],
        "u081": [],  # book has coefficient 0: nothing to explain
    }
