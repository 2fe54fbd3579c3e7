"""Evaluation plots (ROC, PR, calibration, lift) as matplotlib figures, drawn off-screen (Agg backend).

The figures are built from the small pandas tables of :class:`portrait.model.evaluation.EvaluationReport`;
:mod:`portrait.model.tracking` logs them as PNG artifacts.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from portrait.model.evaluation import EvaluationReport  # noqa: E402


def _figure(title: str, xlabel: str, ylabel: str) -> tuple[Figure, plt.Axes]:
    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return fig, ax


def roc_figure(report: EvaluationReport) -> Figure:
    fig, ax = _figure("ROC curve (held-out snapshot)", "false positive rate", "true positive rate")
    ax.plot(report.curve["fpr"], report.curve["tpr"], label=f"model (AUC {report.metrics['auc_roc']:.3f})")
    for name, curve in report.baseline_curves.items():
        ax.plot(curve["fpr"], curve["tpr"], linestyle="--",
                label=f"{name} (AUC {report.metrics[f'baseline_{name}_auc_roc']:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.5)
    ax.legend(loc="lower right")
    return fig


def pr_figure(report: EvaluationReport) -> Figure:
    fig, ax = _figure("Precision-recall curve", "recall", "precision")
    points = report.curve.iloc[1:]
    ax.plot(points["tpr"], points["precision"], label=f"model (AUC-PR {report.metrics['auc_pr']:.3f})")
    for name, curve in report.baseline_curves.items():
        ax.plot(curve["tpr"].iloc[1:], curve["precision"].iloc[1:], linestyle="--", label=name)
    ax.axhline(report.metrics["base_rate"], color="grey", linewidth=0.5)
    ax.legend(loc="upper right")
    return fig


def calibration_figure(report: EvaluationReport) -> Figure:
    fig, ax = _figure("Calibration by score decile", "mean predicted probability", "observed rate")
    table = report.calibration
    ax.plot(table["mean_predicted"], table["observed_rate"], marker="o", label="model")
    top = float(max(table["mean_predicted"].max(), table["observed_rate"].max(), 0.01))
    ax.plot([0, top], [0, top], color="grey", linewidth=0.5, label="perfect")
    ax.legend(loc="upper left")
    return fig


def lift_figure(report: EvaluationReport) -> Figure:
    fig, ax = _figure("Lift by score decile (10 = highest)", "decile", "lift over base rate")
    table = report.deciles.sort_values("decile")
    ax.bar(table["decile"], table["lift"].fillna(0.0), label="decile lift")
    ax.plot(table["decile"], table["cum_lift"].fillna(0.0), color="black", marker="o",
            label="cumulative lift from the top")
    ax.axhline(1.0, color="grey", linewidth=0.5)
    ax.legend(loc="upper left")
    return fig


def value_holdout_figure(table: pd.DataFrame, holdout_days: int) -> Figure:
    """The calibration/holdout plot of the value model: mean purchases after the cut by past frequency."""
    fig, ax = _figure(f"Purchases in the {holdout_days} held-out days", "repeat purchase days before the cut",
                      "mean purchase days per customer")
    labels = [f"{f}+" if f == table["frequency"].max() and f >= 7 else str(f) for f in table["frequency"]]
    ax.plot(labels, table["mean_actual"], marker="o", label="actual")
    ax.plot(labels, table["mean_predicted"], marker="s", label="BG/NBD")
    ax.plot(labels, table["mean_naive"], linestyle="--", label="past rate")
    ax.legend(loc="upper left")
    return fig


def evaluation_figures(report: EvaluationReport) -> dict[str, Figure]:
    """Artifact file name → figure, for every evaluation plot."""
    return {
        "roc.png": roc_figure(report),
        "pr.png": pr_figure(report),
        "calibration.png": calibration_figure(report),
        "lift.png": lift_figure(report),
    }


def close(figures: dict[str, Figure]) -> None:
    for fig in figures.values():
        plt.close(fig)
