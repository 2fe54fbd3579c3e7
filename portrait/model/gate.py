"""Whether a training run has anything to learn from, and whether its model learnt anything.

Two gates stand between a fit and the registry, for the first champion as for every later one:

- **Enough to learn from** (before the fit): the training set needs ``model.min_training_rows`` rows, and the
  training and the test set each ``model.min_class_rows`` rows of either class. A set with one class only
  trains a model whose coefficients say nothing and cannot be judged (its AUC is undefined), so it never
  reaches the fit: :class:`NothingToLearnError` says why, with the numbers.
- **Learnt something** (after the evaluation): the model's test AUC-ROC must beat every baseline's on the same
  rows by more than ``model.baseline_margin``. A model that does not is logged to MLflow with its evaluation
  (so the comparison can be read) but not registered, and so never scores a portrait.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from portrait.config.model import ModelConfig
from portrait.model.evaluation import BASELINES
from portrait.model.training import LABEL


class NothingToLearnError(ValueError):
    """A training run has too few rows, persons or rows of a class to fit or to judge a model."""


@dataclass(frozen=True)
class SetSize:
    """Rows, positive rows and distinct persons of a labelled set."""

    rows: int
    positives: int
    persons: int

    @property
    def negatives(self) -> int:
        return self.rows - self.positives

    def describe(self) -> str:
        return (f"{self.rows} row(s) of {self.persons} person(s): {self.positives} positive, "
                f"{self.negatives} negative")


def set_size(labelled: DataFrame) -> SetSize:
    """The size of a labelled set, in one aggregation."""
    row = labelled.agg(F.count(F.lit(1)).alias("rows"), F.sum(F.col(LABEL)).alias("positives"),
                       F.countDistinct("user_id").alias("persons")).first()
    return SetSize(int(row["rows"]), int(row["positives"] or 0), int(row["persons"]))


def check_learnable(target: str, train: SetSize, test: SetSize, settings: ModelConfig) -> None:
    """Raise :class:`NothingToLearnError` unless both sets are large enough (module docstring)."""
    short = []
    if train.rows < settings.min_training_rows:
        short.append(f"{train.rows} training rows (model.min_training_rows: {settings.min_training_rows})")
    for side, size in (("training", train), ("test", test)):
        fewest = min(size.positives, size.negatives)
        if fewest < settings.min_class_rows:
            kind = "positive" if size.positives <= size.negatives else "negative"
            short.append(f"{fewest} {kind} {side} rows (model.min_class_rows: {settings.min_class_rows})")
    if short:
        raise NothingToLearnError(
            f"target {target!r} has too little history to learn from: {'; '.join(short)}. Training set "
            f"{train.describe()}; test set {test.describe()}. Nothing was trained or registered; the portrait "
            "is published without this model's scores until the history is long enough.")


def lift_refusal(metrics: dict[str, float], margin: float) -> str | None:
    """Why the evaluated model must not be registered (no lift over a baseline), or None when it may.

    An undefined (NaN) AUC never passes: no comparison with NaN holds."""
    auc = metrics["auc_roc"]
    for name in BASELINES:
        baseline = metrics[f"baseline_{name}_auc_roc"]
        if not auc > baseline + margin:
            return (f"test AUC-ROC {auc:.4f} does not beat the {name} baseline's {baseline:.4f} by more than "
                    f"model.baseline_margin {margin} on the same {int(metrics['rows'])} rows")
    return None
