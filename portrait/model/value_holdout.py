"""Held-out evaluation of the BG/NBD purchase model: the calibration/holdout check of the classic papers.

The model is fitted on the purchase history to a cut date ``value.holdout_days`` before the run date, and its
expected purchases in the days after the cut are compared with the purchase days each customer then made. The
yardstick is a customer's own past repeat rate carried forward (``x / T`` per day), what a spreadsheet would
do; the error is the root mean squared error per customer, because BG/NBD predicts a conditional *mean* (the
absolute error would favour predicting the median, 0 for most customers). A fit whose error does not beat the
yardstick has learnt nothing worth publishing.

Pure numerics over the grouped frame Spark builds (portrait/model/value_frames.py): ``frequency``,
``recency_days``, ``age_days`` of the calibration summary, ``holdout_purchases`` and ``weight``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from portrait.model import value

# The holdout table groups customers by repeat purchase days in calibration: 0, 1, ..., up to this or more.
MAX_FREQUENCY = 7


@dataclass(frozen=True)
class HoldoutReport:
    """Metrics and the table by past frequency (customers, mean predicted, actual and naive purchases)."""

    metrics: dict[str, float]
    table: pd.DataFrame

    @property
    def learnt(self) -> bool:
        """Whether the model's error beats the past-rate yardstick (an undefined error never does)."""
        return bool(self.metrics["holdout_rmse"] < self.metrics["naive_holdout_rmse"])

    def refusal(self) -> str | None:
        """Why the predictions must not be published, or None."""
        if self.learnt:
            return None
        return (f"held-out RMSE {self.metrics['holdout_rmse']:.4f} purchases per customer does not beat the "
                f"past-rate yardstick's {self.metrics['naive_holdout_rmse']:.4f} over "
                f"{self.metrics['holdout_customers']:.0f} customers")


def _rmse(error: np.ndarray, weight: np.ndarray) -> float:
    return float(np.sqrt(np.average(error**2, weights=weight)))


def evaluate(model: value.BgNbd, grouped: pd.DataFrame, holdout_days: int) -> HoldoutReport:
    """The held-out report of ``model`` (fitted on the calibration summary) over ``grouped``."""
    x, t_x, T, actual, weight = (grouped[c].to_numpy(dtype=float) for c in
                                 ("frequency", "recency_days", "age_days", "holdout_purchases", "weight"))
    predicted = value.expected_purchases(model, holdout_days, x, t_x, T)
    naive = np.where(T > 0, x / np.maximum(T, 1.0), 0.0) * holdout_days
    metrics = {
        "holdout_customers": float(weight.sum()),
        "holdout_rmse": _rmse(predicted - actual, weight),
        "naive_holdout_rmse": _rmse(naive - actual, weight),
        "holdout_predicted_purchases": float(np.dot(weight, predicted)),
        "holdout_actual_purchases": float(np.dot(weight, actual)),
    }
    bucket = np.minimum(x, MAX_FREQUENCY).astype(int)
    frame = pd.DataFrame({"frequency": bucket, "weight": weight, "predicted": predicted * weight,
                          "actual": actual * weight, "naive": naive * weight})
    sums = frame.groupby("frequency", as_index=False).sum()
    table = pd.DataFrame({
        "frequency": sums["frequency"], "customers": sums["weight"],
        "mean_predicted": sums["predicted"] / sums["weight"], "mean_actual": sums["actual"] / sums["weight"],
        "mean_naive": sums["naive"] / sums["weight"],
    })
    return HoldoutReport(metrics, table)
