"""An orders-only shop with two years of history (generate.kind: buyers): every customer has a portrait row,
and the long-horizon propensity model, with the purchase history as features, ranks at least as well as
BG/NBD on the same held-out rows."""

from __future__ import annotations

import mlflow
import pytest
from pyspark.sql import functions as F

from portrait import graph, io
from portrait.lakehouse import Lakehouse
from portrait.schemas import CUSTOMER_VALUE, ORDERS, USER_FEATURES, USER_PORTRAIT
from tests.conftest import make_config
from tests.shops import RUN_DATE

pytestmark = [pytest.mark.slow, pytest.mark.mission]

BUYERS_SHOP = {"GENERATE__KIND": "buyers", "GENERATE__USERS": "2000", "GENERATE__DAYS": "730",
               "MODEL__LABEL_HORIZON_DAYS": "90", "MODEL__TARGETS": "[purchase, purchase_30d]"}


@pytest.fixture(scope="module")
def buyers_run(spark, tmp_path_factory):
    cfg = make_config(tmp_path_factory.mktemp("buyers_shop"), **BUYERS_SHOP)
    summary = graph.run_daily(Lakehouse(spark, cfg), RUN_DATE)
    return cfg, summary


def _on_run_date(frame):
    return frame.where(F.col("dt") == F.lit(RUN_DATE).cast("date"))


def test_every_customer_has_a_portrait_row_with_value_columns(spark, buyers_run):
    cfg, summary = buyers_run
    mlflow.set_tracking_uri(cfg.mlflow.tracking_uri)
    portrait = _on_run_date(io.read_table(spark, cfg, USER_PORTRAIT)).cache()
    customers = io.read_table(spark, cfg, ORDERS).where(F.col("status") == "paid").select("user_id").distinct()
    active = _on_run_date(io.read_table(spark, cfg, USER_FEATURES)).count()
    # Two years of customers, of whom the 90-day lookback sees a minority: the rest are dormant, still portrayed.
    assert portrait.count() == customers.count() == 2000 > 3 * active
    assert portrait.select("user_id").exceptAll(customers).isEmpty()
    unvalued = portrait.where(F.col("clv").isNull() | F.col("p_alive").isNull() | F.col("purchase_days").isNull())
    assert unvalued.isEmpty()
    dormant = portrait.where(F.col("days_since_last_purchase") >= 90)
    assert dormant.count() == portrait.where(F.array_contains("tags", "lapsed_customer")).count() > 0
    assert dormant.where(F.col("lifecycle_stage") != "churned").isEmpty()
    assert portrait.where(F.array_contains("tags", "win_back")).count() > 0
    # Every customer is scored, the dormant too, and ranked by the model into all ten deciles.
    assert portrait.where(F.col("purchase_propensity").isNull()).isEmpty()
    assert {r[0] for r in portrait.select("propensity_decile").distinct().collect()} == set(range(1, 11))
    assert _on_run_date(io.read_table(spark, cfg, CUSTOMER_VALUE)).count() == 2000
    # A further horizon: its own model's probability for everyone, named by target, with the model's run.
    horizons = portrait.select(F.col("horizon_propensities")["purchase_30d"].alias("p30"),
                               F.col("horizon_model_run_ids")["purchase_30d"].alias("run"))
    assert horizons.where(F.col("p30").isNull() | (F.col("p30") < 0) | (F.col("p30") > 1)).isEmpty()
    [(run_id,)] = horizons.select("run").distinct().collect()
    assert mlflow.get_run(run_id).data.params["label_horizon_days"] == "30"
    # Buying within 30 days is rarer than within 90: the shorter horizon's probabilities are lower on average.
    means = portrait.agg(F.avg(F.col("horizon_propensities")["purchase_30d"]), F.avg("purchase_propensity")).first()
    assert means[0] < means[1]
    portrait.unpersist()


def test_the_long_horizon_model_ranks_at_least_as_well_as_bgnbd_on_the_same_rows(buyers_run):
    cfg, summary = buyers_run
    mlflow.set_tracking_uri(cfg.mlflow.tracking_uri)
    metrics = mlflow.get_run(summary.mlflow_run_id).data.metrics
    baselines = {name: metrics[f"baseline_{name}_auc_roc"] for name in ("bgnbd", "order_count", "recency", "rfm")}
    assert metrics["auc_roc"] >= baselines["bgnbd"] > 0.6, (metrics["auc_roc"], baselines)
    assert metrics["auc_roc"] > max(baselines["order_count"], baselines["recency"], baselines["rfm"]), baselines
    # The holdout table by past frequency: persons who bought more often buy again more often.
    artifacts = mlflow.artifacts.load_dict(f"runs:/{summary.mlflow_run_id}/evaluation/holdout_by_frequency.json")
    table = {row["purchase_days"]: row for row in artifacts} if isinstance(artifacts, list) else None
    assert table is not None and table[1]["observed_rate"] < table[4]["observed_rate"]
