"""Exact tests of the evaluation: metrics, deciles, curves and baselines (portrait/model/evaluation.py)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from pyspark.sql import functions as F

from portrait.model.evaluation import (
    RANDOM_BASELINE,
    RFM_BASELINE,
    RfmEdges,
    binary_metrics,
    curves,
    decile_edges,
    decile_table,
    evaluate_model,
    expected_purchases_column,
    history_baselines,
    holdout_by_frequency,
    random_baseline,
    rfm_baseline,
    rfm_edges,
)

SCORED = "label double, purchase_propensity double"
# Ten distinct scores, 4 positives: each positive outranks 6, 6, 5 and 3 of the 6 negatives.
TEN = [(1.0, 0.95), (1.0, 0.85), (0.0, 0.75), (1.0, 0.65), (0.0, 0.55),
       (0.0, 0.45), (1.0, 0.35), (0.0, 0.25), (0.0, 0.15), (0.0, 0.05)]


@pytest.fixture(scope="module")
def ten(spark):
    return spark.createDataFrame(TEN, SCORED)


def test_binary_metrics_exact(ten):
    metrics = binary_metrics(ten)
    assert metrics["auc_roc"] == pytest.approx(20 / 24, abs=1e-12)
    # Trapezoids over (recall, precision), starting at (0, 1): 0.5 + 0.25*(2/3+3/4)/2 + 0.25*(1/2+4/7)/2.
    assert metrics["auc_pr"] == pytest.approx(0.5 + 17 / 96 + 15 / 112, abs=1e-12)
    squared_errors = [0.05, 0.15, 0.75, 0.35, 0.55, 0.45, 0.65, 0.25, 0.15, 0.05]
    assert metrics["brier"] == pytest.approx(sum(e * e for e in squared_errors) / 10, abs=1e-12)
    assert metrics["brier"] == pytest.approx(0.1725, abs=1e-12)
    assert (metrics["base_rate"], metrics["rows"]) == (0.4, 10.0)


def test_binary_metrics_names_a_missing_column(ten):
    with pytest.raises(ValueError, match=r"needs column\(s\) \['baseline_rfm'\]"):
        binary_metrics(ten, RFM_BASELINE)


def test_decile_table_exact(ten):
    table = ten.transform(decile_table(decile_edges(ten))).toPandas()
    expected = pd.DataFrame(
        [
            # decile rows pos  mean  obs  lift cum_rows cum_pos cum_prec cum_recall cum_lift
            (10, 1, 1.0, 0.95, 1.0, 2.5, 1, 1.0, 1.0, 0.25, 2.5),
            (9, 1, 1.0, 0.85, 1.0, 2.5, 2, 2.0, 1.0, 0.5, 2.5),
            (8, 1, 0.0, 0.75, 0.0, 0.0, 3, 2.0, 2 / 3, 0.5, 5 / 3),
            (7, 1, 1.0, 0.65, 1.0, 2.5, 4, 3.0, 0.75, 0.75, 1.875),
            (6, 1, 0.0, 0.55, 0.0, 0.0, 5, 3.0, 0.6, 0.75, 1.5),
            (5, 1, 0.0, 0.45, 0.0, 0.0, 6, 3.0, 0.5, 0.75, 1.25),
            (4, 1, 1.0, 0.35, 1.0, 2.5, 7, 4.0, 4 / 7, 1.0, 10 / 7),
            (3, 1, 0.0, 0.25, 0.0, 0.0, 8, 4.0, 0.5, 1.0, 1.25),
            (2, 1, 0.0, 0.15, 0.0, 0.0, 9, 4.0, 4 / 9, 1.0, 10 / 9),
            (1, 1, 0.0, 0.05, 0.0, 0.0, 10, 4.0, 0.4, 1.0, 1.0),
        ],
        columns=["decile", "rows", "positives", "mean_predicted", "observed_rate", "lift", "cum_rows",
                 "cum_positives", "cum_precision", "cum_recall", "cum_lift"],
    )
    assert list(table.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(table, expected, check_dtype=False, rtol=1e-12, atol=1e-12)


def test_decile_table_ties_share_a_decile(spark):
    tied = spark.createDataFrame([(1.0, 0.5), (0.0, 0.5), (0.0, 0.5), (1.0, 0.9)], SCORED)
    table = tied.transform(decile_table(decile_edges(tied))).toPandas()
    assert table["rows"].sum() == 4
    # Edges are [0.5] * 7 + [0.9] * 2: the top score is above seven edges, so its group is decile 8.
    assert table[["decile", "rows", "positives"]].values.tolist() == [[8, 1, 1], [1, 3, 1]]


def test_curves_from_a_histogram_exact():
    histogram = pd.DataFrame({"threshold": [0.1, 0.9, 0.5], "positives": [0.0, 1.0, 1.0],
                              "negatives": [2.0, 0.0, 1.0]})
    points = curves(histogram)
    assert points["tpr"].tolist() == [0.0, 0.5, 1.0, 1.0]
    assert points["fpr"].tolist() == pytest.approx([0.0, 0.0, 1 / 3, 1.0])
    assert points["precision"].tolist() == pytest.approx([1.0, 1.0, 2 / 3, 2 / 5])


# ---------------------------------------------------------------------------------------------
# Baselines
# ---------------------------------------------------------------------------------------------

RFM_ROWS = "user_id string, dt date, days_since_last_order int, orders_90d long, spend_90d double, label double, " \
           "purchase_propensity double"
D = dt.date(2024, 6, 30)


@pytest.fixture(scope="module")
def rfm_rows(spark):
    return spark.createDataFrame(
        [
            # user recency orders spend label model-score
            ("b1", D, 1, 5, 50.0, 1.0, 0.9),
            ("b2", D, 2, 4, 40.0, 0.0, 0.6),
            ("b3", D, 3, 3, 30.0, 1.0, 0.8),
            ("b4", D, 4, 2, 20.0, 0.0, 0.5),
            ("b5", D, 5, 1, 10.0, 0.0, 0.4),
            ("n1", D, None, 0, 0.0, 0.0, 0.3),
            ("n2", D, None, 0, 0.0, 1.0, 0.7),
        ],
        RFM_ROWS,
    )


def test_rfm_edges_over_buyers_only(rfm_rows):
    assert rfm_edges(rfm_rows) == RfmEdges([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 30.0, 40.0])


def test_rfm_baseline_exact(spark, rfm_rows):
    scored = rfm_rows.transform(rfm_baseline(rfm_edges(rfm_rows)))
    actual = {r["user_id"]: r[RFM_BASELINE] for r in scored.collect()}
    assert actual == pytest.approx({"b1": 1.0, "b2": 0.8, "b3": 0.6, "b4": 0.4, "b5": 0.2, "n1": 0.0, "n2": 0.0})
    # Positives 1.0, 0.6, 0.0 against negatives 0.8, 0.4, 0.2, 0.0: 4 + 3 + 0.5 (tie) of 12 pairs.
    assert binary_metrics(scored, RFM_BASELINE)["auc_roc"] == pytest.approx(7.5 / 12, abs=1e-12)


def test_random_baseline_depends_on_key_and_seed_not_on_partitioning(spark):
    rows = spark.range(200).select(F.concat(F.lit("u"), F.col("id").cast("string")).alias("user_id"),
                                   F.lit(D).alias("dt"))
    first = {r["user_id"]: r[RANDOM_BASELINE] for r in rows.transform(random_baseline(42)).collect()}
    again = {r["user_id"]: r[RANDOM_BASELINE]
             for r in rows.repartition(3).transform(random_baseline(42)).collect()}
    other = {r["user_id"]: r[RANDOM_BASELINE] for r in rows.transform(random_baseline(7)).collect()}
    assert first == again
    assert all(0.0 <= v < 1.0 for v in first.values())
    assert len(set(first.values())) == 200
    assert sum(first[u] != other[u] for u in first) == 200
    assert 0.35 < sum(first.values()) / 200 < 0.65


def test_random_baseline_order_of_the_rfm_rows(rfm_rows):
    scored = rfm_rows.transform(random_baseline(42)).orderBy(RANDOM_BASELINE).collect()
    assert [(r["user_id"], r["label"]) for r in scored] == [
        ("b3", 1.0), ("b2", 0.0), ("n1", 0.0), ("n2", 1.0), ("b5", 0.0), ("b1", 1.0), ("b4", 0.0)]


@pytest.fixture(scope="module")
def report(rfm_rows):
    return evaluate_model(rfm_rows, seed=42)


def test_evaluate_model_reports_model_baselines_and_lifts(report):
    metrics = report.metrics
    # The model ranks all three positives (0.9, 0.8, 0.7) above the four negatives.
    assert metrics["auc_roc"] == pytest.approx(1.0, abs=1e-12)
    assert metrics["baseline_rfm_auc_roc"] == pytest.approx(7.5 / 12, abs=1e-12)
    assert metrics["auc_roc_lift_over_rfm"] == pytest.approx(1.0 - 7.5 / 12, abs=1e-12)
    # The random baseline (seed 42) orders the rows b3+ < b2 < n1 < n2+ < b5 < b1+ < b4 (test below): the
    # positives outrank 0, 2 and 3 of the 4 negatives, 5 of 12 pairs.
    assert metrics["baseline_random_auc_roc"] == pytest.approx(5 / 12, abs=1e-12)
    assert metrics["auc_roc_lift_over_random"] == pytest.approx(1.0 - 5 / 12, abs=1e-12)
    assert {"auc_pr", "log_loss", "brier", "base_rate", "rows", "baseline_random_auc_pr",
            "baseline_rfm_auc_pr"} <= set(metrics)
    # Top decile: the single highest score (b1, a positive), lift = 1 / (3/7).
    assert metrics["precision_top_decile"] == 1.0
    assert metrics["lift_top_decile"] == pytest.approx(7 / 3)
    assert report.deciles["rows"].sum() == 7
    assert report.calibration["decile"].tolist() == sorted(report.deciles["decile"].tolist())
    assert report.curve["tpr"].iloc[-1] == report.curve["fpr"].iloc[-1] == 1.0
    assert set(report.baseline_curves) == {"random", "rfm"}


def test_evaluation_figures_render(report, tmp_path):
    from portrait.model.plots import close, evaluation_figures

    figures = evaluation_figures(report)
    assert set(figures) == {"roc.png", "pr.png", "calibration.png", "lift.png"}
    for name, figure in figures.items():
        figure.savefig(tmp_path / name)
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    close(figures)


HISTORY_ROWS = ("user_id string, dt date, days_since_last_order int, orders_90d long, spend_90d double, label double, "
                "purchase_propensity double, days_since_last_purchase int, purchase_days int, "
                "expected_purchases_30d double, expected_purchases_90d double, expected_purchases_365d double, "
                "p_alive double")


@pytest.fixture(scope="module")
def history_rows(spark):
    return spark.createDataFrame([
        # user, dt, R, F, M, label, score, days since purchase, purchase days, E30, E90, E365, P(alive)
        ("a", D, 5, 2, 50.0, 1.0, 0.9, 5, 9, 0.5, 1.2, 3.0, 0.9),
        ("b", D, None, 0, 0.0, 1.0, 0.2, 200, 2, 0.05, 0.3, 0.9, 0.6),
        ("c", D, 30, 1, 20.0, 0.0, 0.6, 30, 1, 0.1, 0.4, 1.1, 1.0),
        ("d", D, None, 0, 0.0, 0.0, 0.1, None, None, None, None, None, None),  # never bought: ranks last
        ("e", D, None, 0, 0.0, 0.0, 0.3, 400, 3, 0.01, 0.02, 0.05, 0.1),
    ], HISTORY_ROWS)


def test_history_baselines_exact(history_rows):
    buy = {r["user_id"]: r for r in history_rows.withColumns(history_baselines(90)).collect()}
    assert {u: buy[u]["baseline_bgnbd"] for u in "abcde"} == {"a": 1.2, "b": 0.3, "c": 0.4, "d": 0.0, "e": 0.02}
    assert {u: buy[u]["baseline_order_count"] for u in "abcde"} == {"a": 9.0, "b": 2.0, "c": 1.0, "d": 0.0, "e": 3.0}
    assert buy["a"]["baseline_recency"] == pytest.approx(1 / 6) and buy["d"]["baseline_recency"] == 0.0
    # Churn ranks the other way round; a 30-day horizon reads the 30-day expectation.
    churn = {r["user_id"]: r for r in history_rows.withColumns(history_baselines(30, positive_buys=False)).collect()}
    assert {u: churn[u]["baseline_bgnbd"] for u in "abcde"} == {"a": -0.5, "b": -0.05, "c": -0.1, "d": -0.0,
                                                               "e": -0.01}
    assert [expected_purchases_column(h) for h in (7, 45, 60, 61, 200, 365)] == [
        "expected_purchases_30d", "expected_purchases_30d", "expected_purchases_30d", "expected_purchases_90d",
        "expected_purchases_90d", "expected_purchases_365d"]


def test_holdout_by_frequency_exact(history_rows):
    table = history_rows.transform(holdout_by_frequency(90)).toPandas()
    assert table["purchase_days"].tolist() == [0, 1, 2, 3, 7]  # none on record, then capped at 7
    assert table["rows"].tolist() == [1, 1, 1, 1, 1]
    assert table["observed_rate"].tolist() == [0.0, 0.0, 1.0, 0.0, 1.0]
    assert table["mean_expected_purchases"].tolist()[1:] == [0.4, 0.3, 0.02, 1.2]
    assert pd.isna(table["mean_expected_purchases"][0]) and pd.isna(table["mean_p_alive"][0])


def test_evaluate_model_reports_the_history_rankings_on_the_same_rows(history_rows):
    report = evaluate_model(history_rows, seed=42, horizon_days=90)
    metrics = report.metrics
    # Positives a, b; negatives c, d, e. The model ranks a > c > e > b > d: a beats 3, b beats 1 of 3 (d).
    assert metrics["auc_roc"] == pytest.approx(4 / 6)
    assert metrics["baseline_bgnbd_auc_roc"] == pytest.approx(5 / 6)      # a > c > b > e > d
    assert metrics["baseline_order_count_auc_roc"] == pytest.approx(5 / 6)  # a > e > b > c > d
    assert metrics["auc_roc_lift_over_bgnbd"] == pytest.approx(4 / 6 - 5 / 6)
    assert report.by_frequency is not None and len(report.by_frequency) == 5
    assert evaluate_model(history_rows, seed=42).by_frequency is None  # no horizon: no history rankings
