"""Exact tests of portrait assembly: ranks, RFM, deciles, tags (portrait/publish/assemble.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual, assertSchemaEqual

from portrait.privacy import person_key_of
from portrait.publish.assemble import (
    NO_PURCHASE_SEGMENT,
    RFM_SEGMENT_RULES,
    CutPoints,
    PortraitLineage,
    assemble_portrait,
    cut_points,
    rank_against,
    segment_labels,
    with_user_attributes,
)
from portrait.schemas import PURCHASE_HISTORY, USER_PORTRAIT
from portrait.schemas.published import PORTRAIT_VALUE_COLUMNS

FEATURE_DAY = dt.date(2024, 6, 30)
PORTRAIT_DAY = dt.date(2024, 7, 1)
MODEL, RUN = "purchase_propensity", "run-123"
KEY = b"assembly-test-key"
LINEAGE = PortraitLineage(MODEL, RUN, model_version="4", churn_model_run_id="churn-run",
                          input_versions=(("orders", 3), ("clickstream", 7)))

# Scored user_features rows: the columns assembly reads, plus one (views_7d) it must drop.
SCORED = T.StructType(
    [
        T.StructField("user_id", T.StringType()),
        T.StructField("days_since_first_event", T.IntegerType()),
        T.StructField("days_since_last_event", T.IntegerType()),
        T.StructField("days_since_last_order", T.IntegerType()),
        T.StructField("orders_90d", T.LongType()),
        T.StructField("spend_90d", T.DoubleType()),
        T.StructField("carts_7d", T.LongType()),
        T.StructField("buys_7d", T.LongType()),
        T.StructField("views_7d", T.LongType()),
        T.StructField("top_category_30d", T.StringType()),
        T.StructField("purchase_propensity", T.DoubleType()),
        T.StructField("dt", T.DateType()),
        T.StructField("lifecycle_stage", T.StringType()),   # a feature (portrait/features/windows.py)
    ]
)
# Feature columns the portrait carries as they are (SQL for the same value on every test row).
PASS_THROUGH = {
    "top_categories": "array(named_struct('key', 'c1', 'score', 1.5D))",
    "top_brands": "CAST(array() AS array<struct<key:string,score:double>>)",
    "price_tier": "'mid'",
    "preferred_daypart": "'evening'",
    "weekend_share_30d": "0.25D",
    "preferred_platform": "'app'",
    "preferred_channel": "'search'",
}


def pass_through() -> list:
    return [F.expr(sql).alias(name) for name, sql in PASS_THROUGH.items()]
RISK = "user_id string, refund_rate_90d double, bot_suspect boolean, churn_score double"


def scored_rows(spark, rows, risk=()):
    """SCORED rows plus the pass-through columns, and per user (refund rate, bot flag, churn score) when
    ``risk`` gives them (else no refund rate, no bot, no churn column at all)."""
    frame = spark.createDataFrame(rows, SCORED).select(
        "*", *pass_through())
    if risk:
        return frame.join(spark.createDataFrame(risk, RISK), "user_id", "left")
    return frame.select("*", F.lit(None).cast("double").alias("refund_rate_90d"), F.lit(False).alias("bot_suspect"))


# ---------------------------------------------------------------------------------------------
# rank_against
# ---------------------------------------------------------------------------------------------


def test_rank_against_counts_edges_strictly_below_and_ties_share_a_rank(spark):
    frame = spark.createDataFrame(
        [(0.0,), (1.0,), (1.5,), (2.0,), (2.5,), (5.0,), (5.1,)], "x double"
    )
    edges = [1.0, 2.0, 2.0, 5.0]
    actual = frame.select("x", rank_against("x", edges).alias("rank"), rank_against("x", []).alias("no_edges"))
    expected = spark.createDataFrame(
        [(0.0, 1, 1), (1.0, 1, 1), (1.5, 2, 1), (2.0, 2, 1), (2.5, 4, 1), (5.0, 4, 1), (5.1, 5, 1)],
        "x double, rank int, no_edges int",
    )
    assertDataFrameEqual(actual, expected)


def test_rank_against_integer_column_and_unsorted_values(spark):
    frame = spark.createDataFrame([(7,), (3,), (10,), (11,), (0,)], "n long")
    actual = frame.select("n", rank_against("n", [3.0, 5.0, 10.0]).alias("rank"))
    expected = spark.createDataFrame([(7, 3), (3, 1), (10, 3), (11, 4), (0, 1)], "n long, rank int")
    assertDataFrameEqual(actual, expected)


# ---------------------------------------------------------------------------------------------
# assemble_portrait
# ---------------------------------------------------------------------------------------------

CUTS = CutPoints(
    recency=[2.0, 5.0, 10.0, 30.0],
    frequency=[1.0, 1.0, 2.0, 3.0],
    monetary=[50.0, 100.0, 200.0, 400.0],
    propensity=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    churn=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
)


def test_assemble_portrait_exact_rows(spark, cfg):
    fd = FEATURE_DAY
    scored = scored_rows(spark, [
        # user      first last recency orders spend carts buys views top  propensity
        ("champ", 60, 0, 2, 4, 500.0, 1, 1, 3, "c1", 0.95, fd, "active"),
        ("loyal", 89, 8, 10, 3, 300.0, 0, 0, 0, "c2", 0.9, fd, "sleeping"),   # M4: not high_value
        ("newc", 13, 3, 3, 1, 50.0, 2, 0, 5, "c3", 0.5, fd, "new"),
        ("potl", 14, 7, 6, 1, 200.0, 0, 0, 0, None, 0.05, fd, "active"),  # 200 is an edge: M3, not M4
        ("risk", 89, 30, 30, 3, 401.0, 0, 2, 0, "c1", 0.1, fd, "sleeping"),
        ("hib", 60, 31, 31, 1, 10.0, 0, 0, 0, "c4", 0.15, fd, "churned"),
        ("nb_new", 5, 0, None, 0, 0.0, 1, 0, 9, "c5", 0.99, fd, "new"),
        ("nb_churn", 80, 45, None, 0, 0.0, 0, 0, 0, None, 0.0, fd, "churned"),
    ], risk=[
        # user   refund rate  bot   churn score
        ("champ", 0.0, False, 0.05),
        ("loyal", None, False, 0.2),     # 0.2 is an edge: decile 2
        ("newc", None, False, 0.55),
        ("potl", 0.25, False, 0.4),
        ("risk", 0.5, False, 0.95),      # 0.5 is the threshold: flagged
        ("hib", 0.49, False, 0.91),
        ("nb_new", None, True, 0.3),
        ("nb_churn", None, False, 0.85),
    ])
    users = spark.createDataFrame(
        [("champ", dt.date(2024, 6, 1), "f", "25-34", "1"), ("newc", None, "m", "18-24", "2"),
         ("newc", None, "f", "55+", "5"),  # a repeated id: one row is kept (the largest values), no second row
         ("ghost", dt.date(2020, 1, 1), "f", "55+", "5")],  # a user without features adds no row
        "user_id string, signup_date date, gender string, age_band string, city_tier string",
    )
    varying = spark.createDataFrame(
        [
            # user  lifecycle  rfm  zh  en  R F M  value  top  propensity decile churn decile refund  tags
            ("champ", "f", "25-34", "1", 29, "active", "champions", "重要价值客户", "Champions", 5, 5, 5, "high",
             "c1", 0.95, 10, 0.05, 1, False, False,
             ["lifecycle_active", "rfm_champions", "high_propensity", "high_value"]),
            ("loyal", None, None, None, None, "sleeping", "loyal_customers", "忠诚客户", "Loyal customers",
             3, 4, 4, "mid", "c2", 0.9, 9, 0.2, 2, False, False,
             ["lifecycle_sleeping", "rfm_loyal_customers", "high_propensity"]),
            ("newc", "m", "18-24", "2", None, "new", "new_customers", "新客户", "New customers", 4, 1, 1, "low",
             "c3", 0.5, 5, 0.55, 6, False, False,
             ["lifecycle_new", "rfm_new_customers", "cart_abandoner"]),
            ("potl", None, None, None, None, "active", "potential_loyalists", "潜力客户", "Potential loyalists",
             3, 1, 3, "mid", None, 0.05, 1, 0.4, 4, False, False,
             ["lifecycle_active", "rfm_potential_loyalists"]),
            ("risk", None, None, None, None, "sleeping", "at_risk", "流失风险客户", "At risk", 2, 4, 5, "high",
             "c1", 0.1, 1, 0.95, 10, False, True,
             ["lifecycle_sleeping", "rfm_at_risk", "high_churn_risk", "high_value", "high_refund_rate"]),
            ("hib", None, None, None, None, "churned", "hibernating", "休眠客户", "Hibernating", 1, 1, 1, "low",
             "c4", 0.15, 2, 0.91, 10, False, False,
             ["lifecycle_churned", "rfm_hibernating", "high_churn_risk"]),
            ("nb_new", None, None, None, None, "new", NO_PURCHASE_SEGMENT, "未购买用户", "No purchase yet",
             1, 1, 1, "none", "c5", 0.99, 10, 0.3, 3, True, False,
             ["lifecycle_new", "rfm_no_purchase", "high_propensity", "cart_abandoner", "bot_suspect"]),
            ("nb_churn", None, None, None, None, "churned", NO_PURCHASE_SEGMENT, "未购买用户", "No purchase yet",
             1, 1, 1, "none", None, 0.0, 1, 0.85, 9, False, False,
             ["lifecycle_churned", "rfm_no_purchase", "high_churn_risk"]),
        ],
        "user_id string, gender string, age_band string, city_tier string, tenure_days int, "
        "lifecycle_stage string, rfm_segment string, rfm_segment_zh string, rfm_segment_en string, "
        "recency_score int, frequency_score int, monetary_score int, value_tier string, top_category string, "
        "purchase_propensity double, propensity_decile int, churn_score double, churn_decile int, "
        "bot_suspect boolean, high_refund_rate boolean, tags array<string>",
    )
    keys = spark.createDataFrame([(u, person_key_of(u, KEY)) for u in
                                  ("champ", "loyal", "newc", "potl", "risk", "hib", "nb_new", "nb_churn")],
                                 "user_id string, person_key string")
    constants = {
        **{name: F.expr(sql) for name, sql in PASS_THROUGH.items()},
        "reason_codes": F.array().cast("array<string>"),  # the scored rows carry no reason codes
        "churn_reason_codes": F.array().cast("array<string>"),
        "model_name": F.lit(MODEL), "model_version": F.lit("4"), "model_run_id": F.lit(RUN),
        "churn_model_run_id": F.lit("churn-run"),
        "input_versions": F.array(F.struct(F.lit("clickstream").alias("table"), F.lit(7).cast("long").alias("version")),
                                  F.struct(F.lit("orders").alias("table"), F.lit(3).cast("long").alias("version"))),
        "feature_dt": F.lit(FEATURE_DAY), "dt": F.lit(PORTRAIT_DAY),
        # the scored rows carry no purchase history or customer value
        **{name: F.lit(None) for name in (*(c for c, _ in PURCHASE_HISTORY), *PORTRAIT_VALUE_COLUMNS)},
        # no purchase_<N>d targets: no further horizons
        "horizon_propensities": F.lit(None), "horizon_model_run_ids": F.lit(None),
    }
    expected = varying.join(keys, "user_id").select(
        *[constants[f.name].cast(f.dataType).alias(f.name) if f.name in constants else F.col(f.name)
          for f in USER_PORTRAIT.schema.fields])
    # The tags and labels come from the default registry of conf/base.yml (portrait/publish/tags.py).
    actual = scored.transform(with_user_attributes(users)).transform(
        assemble_portrait(PORTRAIT_DAY, CUTS, LINEAGE, KEY, tags=cfg.tags, high_refund_rate=0.5))
    assert actual.columns == USER_PORTRAIT.columns
    assertSchemaEqual(actual.schema, USER_PORTRAIT.schema)
    assertDataFrameEqual(actual, expected, rtol=0.0, atol=0.0)


def test_without_churn_users_or_input_versions_those_columns_are_null_or_empty(spark, cfg):
    scored = scored_rows(spark, [("u1", 60, 0, 2, 4, 500.0, 1, 1, 3, "c1", 0.5, FEATURE_DAY, "active")])
    lineage = PortraitLineage(MODEL, RUN)
    row = (scored.transform(with_user_attributes(None))
           .transform(assemble_portrait(PORTRAIT_DAY, CUTS, lineage, KEY, tags=cfg.tags)).first())
    assert [row[c] for c in ("gender", "age_band", "city_tier", "tenure_days", "churn_score", "churn_decile",
                             "churn_model_run_id", "model_version")] == [None] * 8
    assert (row["input_versions"], row["high_refund_rate"], row["bot_suspect"]) == ([], False, False)


def test_without_a_purchase_model_its_columns_are_null_and_the_rest_is_assembled(spark, cfg):
    # No model has learnt enough yet (portrait/model/gate.py): the rows carry no score and no lineage.
    scored = scored_rows(spark, [("u1", 60, 0, 2, 4, 500.0, 1, 1, 3, "c1", 0.5, FEATURE_DAY, "active"),
                                 ("u2", 60, 0, None, 0, 0.0, 0, 0, 3, "c1", 0.5, FEATURE_DAY, "active")]
                         ).drop("purchase_propensity")
    cuts = cut_points(scored)
    assert (cuts.propensity, cuts.churn) == ((), ())
    rows = (scored.transform(with_user_attributes(None))
            .transform(assemble_portrait(PORTRAIT_DAY, cuts, PortraitLineage(None, None), KEY, tags=cfg.tags))
            .orderBy("user_id").collect())
    assert [[row[c] for c in ("purchase_propensity", "propensity_decile", "model_name", "model_version",
                              "model_run_id", "reason_codes")] for row in rows] == [[None] * 5 + [[]]] * 2
    # The only buyer is on every RFM edge: most recent (R 5), and no frequency edge below it (F 1).
    assert [(row["rfm_segment"], row["recency_score"]) for row in rows] == [("new_customers", 5), ("no_purchase", 1)]
    assert ["lifecycle_active" in row["tags"] for row in rows] == [True, True]


def test_value_tier_follows_the_predicted_value_where_there_is_one_and_past_spend_elsewhere(spark, cfg):
    rows = [("v1", 60, 0, 2, 4, 500.0, 1, 1, 3, "c1", 0.5, FEATURE_DAY, "active"),    # M score 5
            ("v2", 60, 0, 2, 4, 500.0, 1, 1, 3, "c1", 0.5, FEATURE_DAY, "active"),
            ("v3", 60, 0, 2, 1, 20.0, 1, 1, 3, "c1", 0.5, FEATURE_DAY, "active"),     # M score 1
            ("v4", 60, 0, None, 0, 0.0, 0, 0, 3, "c1", 0.5, FEATURE_DAY, "active"),   # no order in 90 days
            ("v5", 60, 0, None, 0, 0.0, 0, 0, 3, "c1", 0.5, FEATURE_DAY, "active")]
    clv = {"v1": 5.0, "v2": None, "v3": 45.0, "v4": 25.0, "v5": None}
    scored = scored_rows(spark, rows).join(spark.createDataFrame(list(clv.items()), "user_id string, clv double"),
                                           "user_id")
    cuts = dataclasses.replace(CUTS, clv=(10.0, 20.0, 30.0, 40.0))
    tiers = {r["user_id"]: (r["value_tier"], "high_value" in r["tags"]) for r in scored.transform(
        assemble_portrait(PORTRAIT_DAY, cuts, LINEAGE, KEY, tags=cfg.tags)).collect()}
    assert tiers == {"v1": ("low", False),   # a big past spender predicted to bring little
                     "v2": ("high", True),   # no prediction: past spend decides
                     "v3": ("high", True),   # a small past spender predicted to bring the most
                     "v4": ("mid", False),   # bought before the 90 days, predicted to come back
                     "v5": ("none", False)}


def test_segment_labels_follow_the_registry_and_unlabelled_segments_show_their_code(spark, tmp_path):
    from tests.conftest import make_config

    relabelled = make_config(tmp_path, TAGS="[{code: rfm, name_zh: RFM, name_en: RFM, type: statistical}, "
                                            "{code: rfm_champions, name_zh: 冠军, name_en: Stars, type: statistical, "
                                            "parent: rfm, status: live, definition: \"rfm_segment = 'champions'\"}]")
    assert segment_labels(relabelled.tags) == {"champions": ("冠军", "Stars")}
    scored = scored_rows(spark, [("champ", 60, 0, 2, 4, 500.0, 1, 1, 3, "c1", 0.95, FEATURE_DAY, "active"),
                                 ("nb", 60, 0, None, 0, 0.0, 0, 0, 0, None, 0.1, FEATURE_DAY, "active")])
    actual = scored.transform(assemble_portrait(PORTRAIT_DAY, CUTS, LINEAGE, KEY, tags=relabelled.tags)).select(
        "user_id", "rfm_segment_zh", "rfm_segment_en", "tags")
    expected = spark.createDataFrame([("champ", "冠军", "Stars", ["rfm_champions"]),
                                      ("nb", NO_PURCHASE_SEGMENT, NO_PURCHASE_SEGMENT, [])],
                                     "user_id string, rfm_segment_zh string, rfm_segment_en string, tags array<string>")
    assertDataFrameEqual(actual, expected)


# The classic segment for every (R, F) pair, written out by hand from the rules' intent.
SEGMENT_BY_R_AND_F = {
    5: ["new_customers", "potential_loyalists", "loyal_customers", "champions", "champions"],
    4: ["new_customers", "potential_loyalists", "loyal_customers", "champions", "champions"],
    3: ["potential_loyalists", "potential_loyalists", "loyal_customers", "loyal_customers", "loyal_customers"],
    2: ["hibernating", "hibernating", "at_risk", "at_risk", "at_risk"],
    1: ["hibernating", "hibernating", "at_risk", "at_risk", "at_risk"],
}


def test_rfm_segment_for_every_recency_and_frequency_score(spark):
    cuts = CutPoints(recency=[2.0, 5.0, 10.0, 30.0], frequency=[1.0, 2.0, 3.0, 4.0],
                     monetary=[50.0, 100.0, 200.0, 400.0], propensity=(0.5,))
    recency_for_score = {5: 1, 4: 3, 3: 6, 2: 11, 1: 31}
    rows = [
        (f"r{r}f{f}", 60, 0, recency_for_score[r], f, 10.0, 0, 0, 0, None, 0.5, FEATURE_DAY, "active")
        for r in range(1, 6) for f in range(1, 6)
    ]
    actual = (
        scored_rows(spark, rows)
        .transform(assemble_portrait(PORTRAIT_DAY, cuts, LINEAGE, KEY))
        .select("user_id", "recency_score", "frequency_score", "rfm_segment")
    )
    expected = spark.createDataFrame(
        [(f"r{r}f{f}", r, f, SEGMENT_BY_R_AND_F[r][f - 1]) for r in range(1, 6) for f in range(1, 6)],
        "user_id string, recency_score int, frequency_score int, rfm_segment string",
    )
    assertDataFrameEqual(actual, expected)
    assert {s for row in SEGMENT_BY_R_AND_F.values() for s in row} == {name for name, _ in RFM_SEGMENT_RULES}


# ---------------------------------------------------------------------------------------------
# cut_points
# ---------------------------------------------------------------------------------------------

CUT_INPUT = "user_id string, days_since_last_order int, orders_90d long, spend_90d double, purchase_propensity double"


def _population(spark):
    return spark.createDataFrame(
        [
            # Five buyers (input deliberately unsorted) ...
            ("b3", 3, 2, 40.0, 0.45),
            ("b1", 1, 1, 10.0, 0.05),
            ("b5", 5, 5, 160.0, 0.95),
            ("b2", 2, 1, 20.0, 0.25),
            ("b4", 4, 3, 80.0, 0.65),
            # ... and five non-buyers, who must not move the RFM edges.
            ("n1", None, 0, 0.0, 0.15),
            ("n2", None, 0, 0.0, 0.35),
            ("n3", None, 0, 0.0, 0.55),
            ("n4", None, 0, 0.0, 0.75),
            ("n5", None, 0, 0.0, 0.85),
        ],
        CUT_INPUT,
    )


def test_cut_points_rfm_over_buyers_only_and_propensity_over_everyone(spark):
    cuts = cut_points(_population(spark))
    assert cuts == CutPoints(
        recency=[1.0, 2.0, 3.0, 4.0],
        frequency=[1.0, 1.0, 2.0, 3.0],
        monetary=[10.0, 20.0, 40.0, 80.0],
        propensity=(0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85),
    )


def test_cut_points_then_assembly_put_one_buyer_in_each_quintile_and_one_user_in_each_decile(spark):
    population = _population(spark)
    scored = population.select(
        "*",
        F.lit(60).alias("days_since_first_event"),
        F.lit(0).alias("days_since_last_event"),
        F.lit(0).cast("long").alias("carts_7d"),
        F.lit(0).cast("long").alias("buys_7d"),
        F.lit(None).cast("string").alias("top_category_30d"),
        F.lit(FEATURE_DAY).alias("dt"),
        F.lit("active").alias("lifecycle_stage"),
        F.lit(None).cast("double").alias("refund_rate_90d"),
        F.lit(False).alias("bot_suspect"),
        *pass_through(),
    )
    portrait = scored.transform(assemble_portrait(PORTRAIT_DAY, cut_points(population), LINEAGE, KEY))
    actual = portrait.select("user_id", "recency_score", "monetary_score", "propensity_decile")
    expected = spark.createDataFrame(
        [
            ("b1", 5, 1, 1), ("n1", 1, 1, 2), ("b2", 4, 2, 3), ("n2", 1, 1, 4), ("b3", 3, 3, 5),
            ("n3", 1, 1, 6), ("b4", 2, 4, 7), ("n4", 1, 1, 8), ("n5", 1, 1, 9), ("b5", 1, 5, 10),
        ],
        "user_id string, recency_score int, monetary_score int, propensity_decile int",
    )
    assertDataFrameEqual(actual, expected)


def test_cut_points_without_buyers_gives_empty_rfm_edges(spark):
    population = spark.createDataFrame(
        [("n1", None, 0, 0.0, 0.2), ("n2", None, 0, 0.0, 0.8)], CUT_INPUT
    )
    cuts = cut_points(population)
    assert (cuts.recency, cuts.frequency, cuts.monetary) == ([], [], [])
    assert len(cuts.propensity) == 9 and list(cuts.propensity) == sorted(cuts.propensity)
    assert set(cuts.propensity) <= {0.2, 0.8}


def test_reason_codes_pass_through_and_missing_ones_become_empty_lists(spark):
    fd = FEATURE_DAY
    scored = spark.createDataFrame(
        [
            ("champ", 60, 0, 2, 4, 500.0, 1, 1, 3, "c1", 0.95, fd, "active",
             ["2 add-to-cart events in the last 7 days (+0.40)"], ["no visit in 20 days (+0.90)"]),
            ("none", 60, 0, 2, 4, 500.0, 1, 1, 3, "c1", 0.5, fd, "active", None, None),
        ],
        T.StructType([*SCORED.fields, T.StructField("reason_codes", T.ArrayType(T.StringType())),
                      T.StructField("churn_reason_codes", T.ArrayType(T.StringType()))]),
    ).select("*", F.lit(None).cast("double").alias("refund_rate_90d"), F.lit(False).alias("bot_suspect"),
             *pass_through())
    actual = scored.transform(assemble_portrait(PORTRAIT_DAY, CUTS, LINEAGE, KEY)).select(
        "user_id", "reason_codes", "churn_reason_codes")
    expected = spark.createDataFrame(
        [("champ", ["2 add-to-cart events in the last 7 days (+0.40)"], ["no visit in 20 days (+0.90)"]),
         ("none", [], [])],
        "user_id string, reason_codes array<string>, churn_reason_codes array<string>",
    )
    assertDataFrameEqual(actual, expected)
