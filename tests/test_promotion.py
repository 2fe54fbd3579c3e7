"""Champion/challenger promotion, evaluation artifacts and champion-only scoring (promotion.py, tracking.py)."""

from __future__ import annotations

import random

import mlflow
import pytest

from portrait.cli import main
from portrait.model import tracking
from portrait.model.evaluation import binary_metrics, evaluate_model
from portrait.model.explain import explain_model
from portrait.model.pipeline import build_pipeline
from portrait.model.promotion import FIRST_CHAMPION, KEPT_CHAMPION, PROMOTED, decide, promote
from portrait.model.scoring import SCORE, score
from portrait.model.tracking import NoModelError
from portrait.stages import train
from portrait.stages.score import load_scorer
from tests.conftest import LOCAL_CONF, config_environ, make_config
from tests.test_scoring import LABELLED, SETTINGS, _row


@pytest.mark.parametrize(
    ("challenger", "champion", "margin", "expected"),
    [
        (0.70, None, 0.0, FIRST_CHAMPION),
        (0.70, 0.70, 0.0, PROMOTED),       # equal is enough with no margin
        (0.71, 0.70, 0.0, PROMOTED),
        (0.69, 0.70, 0.0, KEPT_CHAMPION),
        (0.72, 0.70, 0.05, KEPT_CHAMPION),  # better, but not by the margin
        (0.75, 0.70, 0.05, PROMOTED),
    ],
)
def test_decide(challenger, champion, margin, expected):
    assert decide(challenger, champion, margin) == expected


def test_no_champion_is_a_clear_error_naming_the_model_and_what_to_run(tmp_path):
    cfg = make_config(tmp_path)
    assert tracking.champion_version(cfg) is None
    with pytest.raises(NoModelError, match=r"model 'purchase_propensity' has no 'champion' version .*"
                                           r"run `portrait train` \(or `portrait daily`\)"):
        tracking.champion_model_uri(cfg)


def test_cli_score_without_a_champion_exits_2_with_the_message(tmp_path, monkeypatch, capsys):
    # With model.daily_training: never a scoring run does not train the missing champion itself.
    for name, value in config_environ(tmp_path, MODEL__DAILY_TRAINING="never").items():
        monkeypatch.setenv(name, value)
    assert main(["score", "--conf", str(LOCAL_CONF), "--date", "2024-06-30"]) == 2
    assert "error: model 'purchase_propensity' has no 'champion' version" in capsys.readouterr().err


def _register_champion(cfg, snapshot_dates: str) -> str:
    """A registered version (no model files: only the registry is read) whose run trained on ``snapshot_dates``,
    under the champion alias; returns its version."""
    with mlflow.start_run(experiment_id=tracking.use_experiment(cfg)) as run:
        mlflow.log_param("snapshot_dates", snapshot_dates)
    name, client = tracking.registered_name(cfg), mlflow.MlflowClient()
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    version = client.create_model_version(name, f"{run.info.artifact_uri}/model", run.info.run_id).version
    tracking.set_alias(cfg, tracking.CHAMPION, str(version))
    return str(version)


def test_a_scoring_run_retrains_the_champion_an_erasure_marked_as_daily_training_allows(tmp_path):
    policies = {policy: make_config(tmp_path, MODEL__TARGETS="[purchase, churn]", MODEL__DAILY_TRAINING=policy)
                for policy in ("if_no_champion", "always", "never")}

    def to_train() -> dict[str, list[str]]:
        return {policy: train.targets_to_train(cfg) for policy, cfg in policies.items()}

    both = ["purchase", "churn"]
    assert to_train() == {"if_no_champion": both, "always": both, "never": []}  # no champion yet
    cfg = policies["if_no_champion"]
    purchase, churn = (train.target_config(cfg, target) for target in both)
    _register_champion(purchase, "2026-10-30,2026-11-06")
    _register_champion(churn, "2026-10-07,2026-10-14")
    assert to_train() == {"if_no_champion": [], "always": both, "never": []}
    # The erased person had feature rows on 2026-11-06: only the purchase champion learnt from them.
    marked = tracking.mark_for_retraining(cfg, [tracking.registered_name(purchase), tracking.registered_name(churn)],
                                          {"2026-11-06"}, "request-1")
    assert marked == [f"{tracking.registered_name(purchase)}/1"]
    assert to_train() == {"if_no_champion": ["purchase"], "always": both, "never": []}
    # A retrained version becomes the champion: the marked one no longer serves, nothing is left to retrain.
    _register_champion(purchase, "2026-11-13")
    assert to_train() == {"if_no_champion": [], "always": both, "never": []}


# ---------------------------------------------------------------------------------------------
# One registry, three versions: a bad first champion, a better challenger, a worse challenger
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def labelled(spark):
    return spark.createDataFrame([_row(i) for i in range(200)], LABELLED)


@pytest.fixture(scope="module")
def shuffled(spark):
    """The same rows with their labels shuffled: a model fitted on them has learned nothing."""
    rows = [_row(i) for i in range(200)]
    labels = [r[-2] for r in rows]
    random.Random(0).shuffle(labels)
    return spark.createDataFrame([(*r[:-2], y, r[-1]) for r, y in zip(rows, labels, strict=True)], LABELLED)


@pytest.fixture(scope="module")
def registry(tmp_path_factory, labelled, shuffled):
    """Register bad, good, bad (in this order) and promote each against the champion on ``labelled``."""
    cfg = make_config(tmp_path_factory.mktemp("registry"))
    good = build_pipeline(SETTINGS).fit(labelled)
    bad = build_pipeline(SETTINGS).fit(shuffled)
    steps = []
    for name, model in (("bad", bad), ("good", good), ("bad-again", bad)):
        scored = labelled.transform(score(model))
        report = evaluate_model(scored, seed=SETTINGS.seed) if name == "good" else None
        metrics = report.metrics if report else binary_metrics(scored)
        explanation = explain_model(model, labelled, max_tokens=100) if name == "good" else None
        logged = tracking.log_training_run(cfg, model, labelled, {"step": name}, metrics, run_name=name,
                                           evaluation=report, explanation=explanation)
        steps.append((logged, promote(cfg, logged, labelled, metrics["auc_roc"])))
    return cfg, good, steps


def _aliases(cfg) -> dict[str, str]:
    client = mlflow.MlflowClient()
    return {alias: str(version) for alias, version in client.get_registered_model(cfg.model.name).aliases.items()}


@pytest.mark.slow  # three models logged to and two loaded from a registry: minutes on 2 cores
def test_first_version_becomes_champion_and_a_better_one_takes_over(registry):
    cfg, _, steps = registry
    (first, first_decision), (second, second_decision), _ = steps
    assert first_decision.outcome == FIRST_CHAMPION and first_decision.champion_auc is None
    assert second_decision.outcome == PROMOTED
    assert second_decision.champion_version == first.registered_version
    assert second_decision.challenger_auc > 0.9 > second_decision.champion_auc
    run = mlflow.get_run(second.run_id)
    assert run.data.tags["promotion_outcome"] == PROMOTED
    assert run.data.tags["model_alias"] == "champion"
    assert run.data.params["champion_version_before"] == first.registered_version
    assert run.data.metrics["champion_auc_roc"] == pytest.approx(second_decision.champion_auc)
    assert run.data.metrics["challenger_auc_roc"] == pytest.approx(second_decision.challenger_auc)


@pytest.mark.slow
def test_a_worse_challenger_does_not_move_the_champion(registry):
    cfg, _, steps = registry
    (_, _), (second, _), (third, third_decision) = steps
    assert third_decision.outcome == KEPT_CHAMPION
    assert third_decision.champion_auc > 0.9 > third_decision.challenger_auc
    assert _aliases(cfg) == {"champion": second.registered_version, "challenger": third.registered_version}
    assert tracking.champion_version(cfg).run_id == second.run_id
    run = mlflow.get_run(third.run_id)
    assert (run.data.tags["promotion_outcome"], run.data.tags["model_alias"]) == (KEPT_CHAMPION, "challenger")


@pytest.mark.slow
def test_champion_uri_loads_the_champion_with_its_explanation(registry, labelled):
    cfg, good, _ = registry
    uri = tracking.champion_model_uri(cfg)
    assert uri == f"models:/{cfg.model.name}@champion"
    loaded = tracking.load_model(uri)
    expected = {r["user_id"]: r[SCORE] for r in labelled.transform(score(good)).select("user_id", SCORE).collect()}
    actual = {r["user_id"]: r[SCORE] for r in labelled.transform(score(loaded)).select("user_id", SCORE).collect()}
    assert actual == expected
    explanation = tracking.load_explanation(uri)
    assert explanation is not None and len(explanation.coefficients) == len(explanation.feature_names)


@pytest.mark.slow
def test_training_run_logs_plots_tables_and_top_features(registry):
    _, _, steps = registry
    run_id = steps[1][0].run_id
    client = mlflow.MlflowClient()
    evaluation = {a.path for a in client.list_artifacts(run_id, "evaluation")}
    for name in ("roc.png", "pr.png", "calibration.png", "lift.png", "deciles.csv", "deciles.json",
                 "calibration.csv", "curve.csv", "curve_baseline_rfm.csv"):
        assert f"evaluation/{name}" in evaluation
    top_level = {a.path for a in client.list_artifacts(run_id)}
    assert {"explanation.json", "top_features.csv", "top_features.json", "model"} <= top_level
    top = mlflow.artifacts.load_text(f"runs:/{run_id}/top_features.csv").splitlines()
    assert top[0] == "feature,tokens,coefficient,std,standardised_coefficient,direction"
    assert "coupon" in "\n".join(top[1:3])
    metrics = mlflow.get_run(run_id).data.metrics
    assert {"baseline_random_auc_roc", "baseline_rfm_auc_roc", "auc_roc_lift_over_rfm", "brier",
            "lift_top_decile"} <= set(metrics)


@pytest.mark.slow
def test_a_model_is_registered_aliased_and_loaded_under_a_three_level_name(tmp_path, labelled):
    """Unity Catalog names a model catalog.schema.model: registration, the champion alias and loading all use
    that name (the local registry accepts it too, so the path is the same one a workspace takes)."""
    cfg = make_config(tmp_path, MLFLOW__MODEL_CATALOG="main", MLFLOW__MODEL_SCHEMA="portrait")
    model = build_pipeline(SETTINGS).fit(labelled)
    metrics = binary_metrics(labelled.transform(score(model)))
    logged = tracking.log_training_run(cfg, model, labelled, {"step": "uc"}, metrics, run_name="uc")
    assert promote(cfg, logged, labelled, metrics["auc_roc"]).outcome == FIRST_CHAMPION
    name = "main.portrait.purchase_propensity"
    aliases = mlflow.MlflowClient().get_registered_model(name).aliases
    assert {alias: str(version) for alias, version in aliases.items()} == {"champion": logged.registered_version}
    assert tracking.champion_model_uri(cfg) == f"models:/{name}@champion"
    scorer = load_scorer(tracking.champion_model_uri(cfg))
    assert (scorer.run_id, scorer.version) == (logged.run_id, logged.registered_version)
    expected = {r["user_id"]: r[SCORE] for r in labelled.transform(score(model)).select("user_id", SCORE).collect()}
    loaded = labelled.transform(score(scorer.model)).select("user_id", SCORE).collect()
    assert {r["user_id"]: r[SCORE] for r in loaded} == expected
