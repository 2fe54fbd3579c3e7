"""Champion/challenger promotion with registry aliases.

A newly registered version (the challenger) is compared with the version behind the ``champion`` alias on
the *same* evaluation rows: the champion is loaded from the registry and scores the new run's held-out
snapshot. The ``champion`` alias moves to the challenger only when

    challenger AUC-ROC >= champion AUC-ROC + model.promotion_margin

otherwise the new version gets the ``challenger`` alias. The first registered version becomes champion.
The decision and both scores are added to the new run (params, metrics, tags).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame

from portrait.config import Config
from portrait.model import tracking
from portrait.model.evaluation import binary_metrics
from portrait.model.scoring import score
from portrait.model.tracking import CHALLENGER, CHAMPION, LoggedModel

FIRST_CHAMPION = "first_champion"
PROMOTED = "promoted"
KEPT_CHAMPION = "kept_champion"


@dataclass(frozen=True)
class PromotionDecision:
    """What happened to a new version: its alias, both AUCs and the margin it had to beat."""

    outcome: str
    challenger_version: str
    challenger_auc: float
    champion_version: str | None
    champion_auc: float | None
    margin: float

    @property
    def promoted(self) -> bool:
        return self.outcome in (FIRST_CHAMPION, PROMOTED)

    @property
    def alias(self) -> str:
        return CHAMPION if self.promoted else CHALLENGER


def decide(challenger_auc: float, champion_auc: float | None, margin: float) -> str:
    """``first_champion`` without a champion; ``promoted`` when the challenger's AUC reaches the champion's
    plus ``margin``; else ``kept_champion``."""
    if champion_auc is None:
        return FIRST_CHAMPION
    return PROMOTED if challenger_auc >= champion_auc + margin else KEPT_CHAMPION


def promote(cfg: Config, logged: LoggedModel, evaluation_rows: DataFrame, challenger_auc: float) -> PromotionDecision:
    """Compare the newly registered version with the champion on ``evaluation_rows`` and set the aliases.

    ``evaluation_rows`` are the labelled ``user_features`` rows the challenger was evaluated on; the champion
    scores exactly these. Raises ``ValueError`` when the model was not registered.
    """
    if logged.registered_version is None:
        raise ValueError("promotion needs a registered model version; mlflow.register_model is off")
    current = tracking.champion_version(cfg)
    champion_auc = None
    if current is not None and current.version != logged.registered_version:
        champion = tracking.load_model(tracking.version_model_uri(cfg, current.version))
        champion_auc = binary_metrics(evaluation_rows.transform(score(champion)))["auc_roc"]
    margin = cfg.model.promotion_margin
    decision = PromotionDecision(
        outcome=decide(challenger_auc, champion_auc, margin),
        challenger_version=logged.registered_version,
        challenger_auc=challenger_auc,
        champion_version=None if current is None else current.version,
        champion_auc=champion_auc,
        margin=margin,
    )
    tracking.set_alias(cfg, decision.alias, decision.challenger_version)
    metrics = {"challenger_auc_roc": challenger_auc}
    if champion_auc is not None:
        metrics["champion_auc_roc"] = champion_auc
    tracking.log_decision(
        logged.run_id,
        params={"champion_version_before": decision.champion_version or "none"},
        metrics=metrics,
        tags={"promotion_outcome": decision.outcome, "model_alias": decision.alias,
              "model_version": decision.challenger_version},
    )
    return decision
