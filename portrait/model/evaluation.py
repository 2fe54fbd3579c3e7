"""Evaluation of a propensity score on labelled rows: metrics, decile/calibration tables and baselines.

Everything here reads a DataFrame of labelled rows (``label``) with one or more score columns in [0, 1]. The
numbers that reach the driver are bounded: a few metrics, at most ten decile rows, the nine decile edges and
a score histogram of at most ``CURVE_BINS + 1`` rows from which the ROC and PR curves are drawn.

Two baselines are scored on the same rows as the model, so the model's lift over them is measured on the
same evaluation set:

- ``random``: a seeded pseudo-random score, ``xxhash64(user_id, dt, seed)`` mapped to [0, 1). It depends on
  the row's key only, not on partitioning, so a re-run gives the same number. Its AUC is ~0.5.
- ``rfm``: the classic rule score ``R + F + M`` (quintile scores 1-5 among buyers over the rows' own
  population, as in the portrait's RFM segments); users without an order in the lookback score 0.

Example::

    report = evaluate_model(test.transform(score(model)), seed=42)
    report.metrics["auc_roc"], report.metrics["baseline_rfm_auc_roc"], report.deciles
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from portrait.features.dates import Transformation
from portrait.model.scoring import QUANTILE_RELATIVE_ERROR, SCORE, rank_against
from portrait.model.training import LABEL

RANDOM_BASELINE = "baseline_random"
RFM_BASELINE = "baseline_rfm"
BASELINES = {"random": RANDOM_BASELINE, "rfm": RFM_BASELINE}
# Rankings from the purchase history (portrait/features/population.py), reported beside the model on the same
# rows when they carry it: what a marketer could sort by without a model (BG/NBD's expected purchases, the
# number of purchase days, the recency of the last). Reported, not part of the registration gate.
HISTORY_BASELINES = ("bgnbd", "order_count", "recency")
HISTORY_COLUMNS = ("days_since_last_purchase", "purchase_days", "expected_purchases_30d", "expected_purchases_90d",
                   "expected_purchases_365d")
# The holdout table groups persons by purchase days on record: 0 (none), 1, ..., up to this many or more.
MAX_FREQUENCY_BUCKET = 7
DECILE = "decile"
DECILES = 10
CURVE_BINS = 1000
# Probabilities are clipped before the logarithm so one confident mistake cannot make log loss infinite.
_LOG_LOSS_EPSILON = 1e-15
_HASH_MASK = (1 << 53) - 1  # xxhash64's low 53 bits, exactly representable as a double


def _require(frame: DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} needs column(s) {missing}; the rows have {frame.columns}")


def binary_metrics(scored: DataFrame, score_col: str = SCORE) -> dict[str, float]:
    """AUC-ROC, AUC-PR, log loss, Brier score, base rate and row count of ``score_col`` against ``label``.

    Tied scores share credit (a tie between a positive and a negative counts one half in AUC-ROC). Rows of
    one class only have no ranking to judge: both AUCs are then NaN (undefined), never 0 or 1.
    """
    _require(scored, (LABEL, score_col), "binary_metrics")
    evaluator = BinaryClassificationEvaluator(rawPredictionCol=score_col, labelCol=LABEL)
    p = F.least(F.greatest(F.col(score_col), F.lit(_LOG_LOSS_EPSILON)), F.lit(1 - _LOG_LOSS_EPSILON))
    y = F.col(LABEL)
    stats = scored.agg(
        F.count(F.lit(1)).alias("rows"),
        F.avg(y).alias("base_rate"),
        F.avg(-(y * F.log(p) + (1 - y) * F.log(1 - p))).alias("log_loss"),
        F.avg(F.pow(F.col(score_col) - y, 2)).alias("brier"),
    ).first()
    both_classes = stats["base_rate"] is not None and 0.0 < stats["base_rate"] < 1.0
    return {
        "auc_roc": evaluator.evaluate(scored, {evaluator.metricName: "areaUnderROC"}) if both_classes else math.nan,
        "auc_pr": evaluator.evaluate(scored, {evaluator.metricName: "areaUnderPR"}) if both_classes else math.nan,
        "log_loss": float(stats["log_loss"]),
        "brier": float(stats["brier"]),
        "base_rate": float(stats["base_rate"]),
        "rows": float(stats["rows"]),
    }


# ---------------------------------------------------------------------------------------------
# Baselines
# ---------------------------------------------------------------------------------------------


def random_baseline(seed: int, output_col: str = RANDOM_BASELINE) -> Transformation:
    """Add a seeded pseudo-random score in [0, 1) from the row key (``user_id``, ``dt``) and ``seed``."""

    def transform(rows: DataFrame) -> DataFrame:
        _require(rows, ("user_id", "dt"), "random_baseline")
        hashed = F.xxhash64(F.col("user_id"), F.col("dt").cast("string"), F.lit(int(seed)))
        return rows.withColumn(output_col, (hashed.bitwiseAND(F.lit(_HASH_MASK)) / float(_HASH_MASK + 1)))

    return transform


@dataclass(frozen=True)
class RfmEdges:
    """Quintile edges (four each) of recency, frequency and monetary value over the buyers of a population."""

    recency: list[float]
    frequency: list[float]
    monetary: list[float]


def rfm_edges(features: DataFrame) -> RfmEdges:
    """Quintile edges of ``days_since_last_order``, ``orders_90d`` and ``spend_90d`` over users with an order."""
    _require(features, ("days_since_last_order", "orders_90d", "spend_90d"), "rfm_edges")
    buyers = features.where(F.col("days_since_last_order").isNotNull())
    recency, frequency, monetary = buyers.approxQuantile(
        ["days_since_last_order", "orders_90d", "spend_90d"], [0.2, 0.4, 0.6, 0.8], QUANTILE_RELATIVE_ERROR
    )
    return RfmEdges(recency, frequency, monetary)


def rfm_baseline(edges: RfmEdges, output_col: str = RFM_BASELINE) -> Transformation:
    """Add the rule score ``(R + F + M) / 15`` in [0.2, 1] for buyers (R, F, M in 1..5), 0 for non-buyers.

    R is 5 for the most recent quintile (fewest days since the last order); ties share a score.
    """

    def transform(rows: DataFrame) -> DataFrame:
        has_ordered = F.col("days_since_last_order").isNotNull()
        recency = F.lit(len(edges.recency) + 2) - rank_against("days_since_last_order", edges.recency)
        total = recency + rank_against("orders_90d", edges.frequency) + rank_against("spend_90d", edges.monetary)
        return rows.withColumn(output_col, F.when(has_ordered, total / 15.0).otherwise(F.lit(0.0)))

    return transform


def expected_purchases_column(horizon_days: int) -> str:
    """The BG/NBD expectation whose window is nearest the label horizon (30, 90 or 365 days)."""
    return min(("expected_purchases_30d", 30), ("expected_purchases_90d", 90), ("expected_purchases_365d", 365),
               key=lambda option: abs(option[1] - horizon_days))[0]


def history_baselines(horizon_days: int, positive_buys: bool = True) -> dict[str, Column]:
    """The purchase-history rankings as score columns ``baseline_<name>``: higher means more likely to buy
    (``positive_buys``), or, for an activity-loss label such as churn, less. A person without a purchase on
    record ranks lowest (highest for churn)."""
    scores = {
        "bgnbd": F.coalesce(F.col(expected_purchases_column(horizon_days)), F.lit(0.0)),
        "order_count": F.coalesce(F.col("purchase_days"), F.lit(0)).cast("double"),
        "recency": F.coalesce(1.0 / (1.0 + F.col("days_since_last_purchase")), F.lit(0.0)),
    }
    sign = F.lit(1.0 if positive_buys else -1.0)
    return {f"baseline_{name}": score * sign for name, score in scores.items()}


def holdout_by_frequency(horizon_days: int, score_col: str = SCORE) -> Transformation:
    """Labelled, scored rows → one row per purchase days on record (0 = none, ..., ``MAX_FREQUENCY_BUCKET``
    or more): ``rows``, ``observed_rate`` (share with the label), the model's ``mean_predicted`` and BG/NBD's
    ``mean_expected_purchases`` in the horizon's window and ``mean_p_alive`` (null where nobody has one). The
    classic holdout check of a purchase model, by past frequency."""

    def transform(rows: DataFrame) -> DataFrame:
        bucket = F.least(F.coalesce(F.col("purchase_days"), F.lit(0)), F.lit(MAX_FREQUENCY_BUCKET))
        return (rows.groupBy(bucket.cast("int").alias("purchase_days"))
                .agg(F.count(F.lit(1)).alias("rows"), F.avg(LABEL).alias("observed_rate"),
                     F.avg(score_col).alias("mean_predicted"),
                     F.avg(expected_purchases_column(horizon_days)).alias("mean_expected_purchases"),
                     F.avg("p_alive").alias("mean_p_alive"))
                .orderBy("purchase_days"))

    return transform


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------


def decile_edges(scored: DataFrame, score_col: str = SCORE) -> list[float]:
    """The nine decile edges of ``score_col`` (approxQuantile; exact for small sets)."""
    (edges,) = scored.approxQuantile([score_col], [k / DECILES for k in range(1, DECILES)], QUANTILE_RELATIVE_ERROR)
    return edges


def decile_table(edges: list[float], score_col: str = SCORE) -> Transformation:
    """Labelled, scored rows → one row per score decile (10 = highest scores), highest first.

    Columns: ``decile``, ``rows``, ``positives``, ``mean_predicted``, ``observed_rate`` (the decile's precision),
    ``lift`` (observed rate / overall base rate), and the cumulative ``cum_rows``, ``cum_positives``,
    ``cum_precision``, ``cum_recall`` and ``cum_lift`` from the top decile down. Ties share a decile, so
    a decile can be missing when many rows share one score.
    """

    def transform(scored: DataFrame) -> DataFrame:
        per_decile = (
            scored.withColumn(DECILE, rank_against(score_col, edges))
            .groupBy(DECILE)
            .agg(
                F.count(F.lit(1)).alias("rows"),
                F.sum(LABEL).alias("positives"),
                F.avg(score_col).alias("mean_predicted"),
            )
        )
        totals = scored.agg(F.count(F.lit(1)).alias("all_rows"), F.sum(LABEL).alias("all_positives"))
        # At most ten rows: the cumulative sums are a window over a ten-row frame.
        top_down = Window.orderBy(F.col(DECILE).desc()).rowsBetween(Window.unboundedPreceding, Window.currentRow)
        base_rate = F.col("all_positives") / F.col("all_rows")
        cum_rows = F.sum("rows").over(top_down)
        cum_positives = F.sum("positives").over(top_down)
        return (
            per_decile.crossJoin(totals)
            .select(
                F.col(DECILE).cast("int").alias(DECILE),
                F.col("rows").cast("long").alias("rows"),
                F.col("positives").cast("double").alias("positives"),
                F.col("mean_predicted").cast("double").alias("mean_predicted"),
                (F.col("positives") / F.col("rows")).alias("observed_rate"),
                _safe_ratio(F.col("positives") / F.col("rows"), base_rate).alias("lift"),
                cum_rows.cast("long").alias("cum_rows"),
                cum_positives.cast("double").alias("cum_positives"),
                (cum_positives / cum_rows).alias("cum_precision"),
                _safe_ratio(cum_positives, F.col("all_positives")).alias("cum_recall"),
                _safe_ratio(cum_positives / cum_rows, base_rate).alias("cum_lift"),
            )
            .orderBy(F.col(DECILE).desc())
        )

    return transform


def _safe_ratio(numerator: Column, denominator: Column) -> Column:
    return F.when(denominator > 0, numerator / denominator).otherwise(F.lit(None).cast("double"))


def score_histogram(score_col: str = SCORE, bins: int = CURVE_BINS) -> Transformation:
    """Rows → positives and negatives per score bin ``floor(score * bins)`` (at most ``bins + 1`` rows).

    The ROC and PR curves are drawn from this bounded table (thresholds at the bin edges).
    """

    def transform(scored: DataFrame) -> DataFrame:
        bin_id = F.least(F.floor(F.col(score_col) * bins), F.lit(bins)).cast("int")
        return (
            scored.groupBy(bin_id.alias("bin"))
            .agg(F.sum(LABEL).alias("positives"), F.sum(1 - F.col(LABEL)).alias("negatives"))
            .select((F.col("bin") / float(bins)).alias("threshold"), "positives", "negatives")
            .orderBy(F.col("threshold").desc())
        )

    return transform


def curves(histogram: pd.DataFrame) -> pd.DataFrame:
    """ROC and PR points from a score histogram: one row per threshold, highest first, plus the origin."""
    hist = histogram.sort_values("threshold", ascending=False)
    tp = hist["positives"].cumsum()
    fp = hist["negatives"].cumsum()
    all_pos, all_neg = float(hist["positives"].sum()), float(hist["negatives"].sum())
    points = pd.DataFrame({
        "threshold": hist["threshold"].to_numpy(),
        "tpr": (tp / all_pos if all_pos else tp * 0.0).to_numpy(),
        "fpr": (fp / all_neg if all_neg else fp * 0.0).to_numpy(),
        "precision": (tp / (tp + fp)).to_numpy(),
    })
    origin = pd.DataFrame({"threshold": [float("inf")], "tpr": [0.0], "fpr": [0.0], "precision": [1.0]})
    return pd.concat([origin, points], ignore_index=True)


# ---------------------------------------------------------------------------------------------
# The whole evaluation
# ---------------------------------------------------------------------------------------------


@dataclass
class EvaluationReport:
    """Metrics (model, baselines, lifts) and the small tables behind the plots, as pandas frames."""

    metrics: dict[str, float]
    deciles: pd.DataFrame
    calibration: pd.DataFrame
    curve: pd.DataFrame
    baseline_curves: dict[str, pd.DataFrame]
    by_frequency: pd.DataFrame | None = None  # holdout_by_frequency; None without the purchase history


def with_baselines(seed: int, edges: RfmEdges) -> Transformation:
    """Add both baseline score columns (``baseline_random``, ``baseline_rfm``)."""

    def transform(rows: DataFrame) -> DataFrame:
        return rows.transform(random_baseline(seed)).transform(rfm_baseline(edges))

    return transform


def evaluate_model(scored: DataFrame, seed: int, score_col: str = SCORE, horizon_days: int | None = None,
                   positive_buys: bool = True) -> EvaluationReport:
    """Evaluate ``score_col`` and the baselines on the same labelled rows.

    ``scored`` must carry ``label``, the score and the feature columns the RFM rule reads. Metrics are the
    model's (``auc_roc``, ``auc_pr``, ``log_loss``, ``brier``, ``base_rate``, ``rows``, ``precision_top_decile``,
    ``lift_top_decile``), each baseline's ``baseline_<name>_auc_roc`` / ``baseline_<name>_auc_pr``, and the
    model's AUC-ROC lift over each (``auc_roc_lift_over_<name>``, a difference). With ``horizon_days`` and
    rows that carry the purchase history, also the :func:`history_baselines` (``positive_buys`` as there):
    their ``baseline_<name>_auc_roc`` and the lift over each, and the :func:`holdout_by_frequency` table.
    """
    with_history = horizon_days is not None and all(c in scored.columns for c in HISTORY_COLUMNS)
    rows = scored.transform(with_baselines(seed, rfm_edges(scored)))
    if with_history:
        rows = rows.withColumns(history_baselines(horizon_days, positive_buys))
    rows = rows.cache()
    try:
        metrics = binary_metrics(rows, score_col)
        baseline_curves = {}
        for name, column in BASELINES.items():
            baseline = binary_metrics(rows, column)
            metrics[f"baseline_{name}_auc_roc"] = baseline["auc_roc"]
            metrics[f"baseline_{name}_auc_pr"] = baseline["auc_pr"]
            metrics[f"auc_roc_lift_over_{name}"] = metrics["auc_roc"] - baseline["auc_roc"]
            baseline_curves[name] = curves(rows.transform(score_histogram(column)).toPandas())
        by_frequency = None
        if with_history:
            metrics.update(_history_metrics(rows, metrics))
            by_frequency = rows.transform(holdout_by_frequency(horizon_days, score_col)).toPandas()
        deciles = rows.transform(decile_table(decile_edges(rows, score_col), score_col)).toPandas()
        curve = curves(rows.transform(score_histogram(score_col)).toPandas())
    finally:
        rows.unpersist()
    top = deciles.iloc[0]
    metrics["precision_top_decile"] = float(top["observed_rate"])
    metrics["lift_top_decile"] = float(top["lift"]) if pd.notna(top["lift"]) else 0.0
    calibration = deciles[["decile", "rows", "mean_predicted", "observed_rate"]].sort_values("decile")
    return EvaluationReport(metrics, deciles, calibration.reset_index(drop=True), curve, baseline_curves, by_frequency)


def _history_metrics(rows: DataFrame, model: dict[str, float]) -> dict[str, float]:
    """AUC-ROC of each purchase-history baseline and the model's lift over it (no curves: reported only)."""
    metrics = {}
    both_classes = 0.0 < model["base_rate"] < 1.0
    evaluator = BinaryClassificationEvaluator(labelCol=LABEL, metricName="areaUnderROC")
    for name in HISTORY_BASELINES:
        column = f"baseline_{name}"
        auc = evaluator.setRawPredictionCol(column).evaluate(rows) if both_classes else math.nan
        metrics[f"{column}_auc_roc"] = auc
        metrics[f"auc_roc_lift_over_{name}"] = model["auc_roc"] - auc
    return metrics
