"""Hyper-parameter search picks the candidate that validates best (portrait/model/tuning.py)."""

from __future__ import annotations

import pytest
from pyspark.ml.classification import LogisticRegressionModel

from portrait.config import TuningConfig
from portrait.model.tuning import tune
from tests.test_scoring import LABELLED, SETTINGS, _row


@pytest.mark.parametrize(
    "method", ["train_validation_split", pytest.param("cross_validation", marks=pytest.mark.slow)]
)
def test_tuning_picks_the_candidate_that_is_not_regularised_to_nothing(spark, method):
    """With pure L1 (elasticNetParam 1), regParam 1.0 zeroes every coefficient (AUC 0.5); 0.01 keeps the rule."""
    labelled = spark.createDataFrame([_row(i) for i in range(200)], LABELLED)
    tuning = TuningConfig(enabled=True, method=method, folds=2, reg_params=[1.0, 0.01], elastic_net_params=[1.0],
                          selected_text_features=[3])
    result = tune(SETTINGS.model_copy(update={"tuning": tuning}), labelled)
    assert [c["reg_param"] for c in result.candidates] == [1.0, 0.01]
    by_reg = {c["reg_param"]: c["validation_auc_roc"] for c in result.candidates}
    assert by_reg[1.0] == pytest.approx(0.5)
    assert by_reg[0.01] > 0.9
    assert result.best == {"reg_param": 0.01, "elastic_net_param": 1.0, "selected_text_features": 3.0}
    assert result.params()["best_reg_param"] == 0.01
    assert result.validation_auc_roc == by_reg[0.01]
    lr = result.model.stages[-1]
    assert isinstance(lr, LogisticRegressionModel) and lr.getRegParam() == 0.01
