"""The daily job end to end on generated data: portrait written, model round-trips, a re-run changes nothing."""

from __future__ import annotations

import functools

import mlflow
import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from portrait import graph, io
from portrait.features.population import with_customers
from portrait.lakehouse import Lakehouse
from portrait.model import tracking
from portrait.model.scoring import SCORE, score
from portrait.privacy import person_key_of, pseudonym_key
from portrait.schemas import (
    CLICKSTREAM,
    CUSTOMER_VALUE,
    IDENTITY_GRAPH,
    ITEMS,
    MONITORING,
    ORDERS,
    PORTRAIT_LATEST,
    REVIEWS,
    SEGMENT_DAILY,
    USER_FEATURES,
    USER_PORTRAIT,
    USERS,
)
from portrait.stages import train
from tests.shops import RUN_DATE

pytestmark = [pytest.mark.slow, pytest.mark.mission]


@pytest.fixture(scope="module")
def default_run(daily_shop):
    """The session's daily shop (tests/shops.py): ``make run``'s run, both targets."""
    return daily_shop.cfg, daily_shop.summary, daily_shop.trained


def _portrait(spark, cfg, day):
    return io.read_table(spark, cfg, USER_PORTRAIT).where(F.col("dt") == F.lit(day).cast("date"))


def test_daily_run_writes_one_portrait_row_per_user_and_date(spark, default_run):
    cfg, summary, _ = default_run
    assert summary.generated
    # The generator plants a purchase signal the configured model must find at this scale.
    assert summary.metrics["auc_roc"] >= 0.70, summary.metrics
    portrait = spark.read.format("delta").load(io.table_ref(cfg, USER_PORTRAIT).path)
    assert portrait.count() == summary.portrait_rows > 0
    assert summary.table_versions["user_portrait"] == io.table_version(spark, cfg, USER_PORTRAIT)
    assert portrait.groupBy("user_id", "dt").count().where("count > 1").count() == 0
    assert {r["dt"] for r in portrait.select("dt").distinct().collect()} == {RUN_DATE}
    features = io.read_table(spark, cfg, USER_FEATURES).where(F.col("dt") == F.lit(RUN_DATE).cast("date"))
    customers = io.read_table(spark, cfg, CUSTOMER_VALUE).where(F.col("dt") == F.lit(RUN_DATE).cast("date"))
    # Who has a row: everyone active in the lookback and every customer of the retention window, once.
    population = features.select("user_id").union(customers.select("user_id")).distinct()
    assert portrait.select("user_id").exceptAll(population).isEmpty()
    assert population.exceptAll(portrait.select("user_id")).isEmpty()
    stats = portrait.agg(F.min(SCORE), F.max(SCORE), F.min("propensity_decile"), F.max("propensity_decile")).first()
    assert 0.0 <= stats[0] < stats[1] <= 1.0
    assert (stats[2], stats[3]) == (1, 10)
    assert portrait.where(F.size("tags") == 0).count() == 0
    assert [r[0] for r in portrait.select("model_run_id").distinct().collect()] == [summary.mlflow_run_id]
    # Monitoring of a fresh shop's first day raises no drift breach (features that grow with time are not
    # compared with the training snapshot weeks earlier).
    checks = io.read_table(spark, cfg, MONITORING).where(F.col("dt") == F.lit(RUN_DATE).cast("date"))
    assert checks.count() > 0
    assert [r["check"] + " " + r["subject"] for r in checks.where("breached").collect()] == []


def test_portrait_rows_carry_churn_attributes_interests_risk_and_lineage(spark, default_run):
    cfg, summary, _ = default_run
    portrait = _portrait(spark, cfg, RUN_DATE).cache()
    # churn: scored by the churn champion, deciles over the whole population
    churn = portrait.agg(F.count("churn_score"), F.count(F.lit(1)), F.min("churn_decile"), F.max("churn_decile"),
                         F.countDistinct("churn_model_run_id")).first()
    assert churn[0] == churn[1] > 0 and (churn[2], churn[3], churn[4]) == (1, 10, 1)
    assert "churn_auc_roc" in summary.metrics
    assert portrait.where(F.size("churn_reason_codes") > 0).count() > churn[1] // 2  # the churn model explains
    churn_cfg = train.target_config(cfg, "churn")
    champion = tracking.champion_version(churn_cfg)
    assert portrait.select("churn_model_run_id").first()[0] == champion.run_id
    assert portrait.select("model_version").distinct().collect() == [(tracking.champion_version(cfg).version,)]
    # the pseudonym BI reads is the HMAC of the id with the environment's key
    sample = portrait.select("user_id", "person_key").limit(20).collect()
    assert all(r["person_key"] == person_key_of(r["user_id"], pseudonym_key()) for r in sample)
    # base attributes are the users table's, where it has the person
    users = io.read_table(spark, cfg, USERS)
    joined = portrait.alias("p").join(users.alias("u"), "user_id")
    differing = joined.where(
        ~F.col("p.gender").eqNullSafe(F.col("u.gender")) | ~F.col("p.age_band").eqNullSafe(F.col("u.age_band"))
        | ~F.col("p.tenure_days").eqNullSafe(F.datediff(F.col("p.feature_dt"), F.col("u.signup_date"))))
    assert differing.count() == 0 and joined.count() > 0
    # interests and risk come from the feature row of the same person
    features = io.read_table(spark, cfg, USER_FEATURES).where(F.col("dt") == F.lit(RUN_DATE).cast("date"))
    carried = ["top_categories", "top_brands", "price_tier", "preferred_daypart", "preferred_channel", "bot_suspect"]
    assert portrait.select("user_id", *carried).exceptAll(features.select("user_id", *carried)).count() == 0
    flags = portrait.join(features.select("user_id", "refund_rate_90d"), "user_id").where(
        F.col("high_refund_rate") != F.coalesce(F.col("refund_rate_90d") >= 0.5, F.lit(False)))
    assert flags.count() == 0
    # value tiers follow the predicted value: ordered CLV ranges; a person without a CLV is no customer (none)
    tiers = portrait.where(F.col("clv").isNotNull()).groupBy("value_tier").agg(F.min("clv"), F.max("clv")).collect()
    ranges = {r[0]: (r[1], r[2]) for r in tiers}
    assert set(ranges) == {"high", "mid", "low"}
    assert ranges["low"][1] <= ranges["mid"][0] and ranges["mid"][1] <= ranges["high"][0]
    assert portrait.where(F.col("clv").isNull() & (F.col("value_tier") != "none")).isEmpty()
    # lineage: the versions of the input tables the run read
    versions = portrait.select("input_versions").distinct().collect()
    assert len(versions) == 1
    recorded = {entry["table"]: entry["version"] for entry in versions[0][0]}
    assert recorded == {c.name: io.table_version(spark, cfg, c) for c in (CLICKSTREAM, ORDERS, ITEMS, USERS, REVIEWS,
                                                                              IDENTITY_GRAPH) if io.table_version(spark, cfg, c) is not None}
    portrait.unpersist()


def test_every_customer_with_a_paid_order_has_a_value_row_that_the_portrait_repeats(spark, default_run):
    cfg, _, _ = default_run
    values = io.read_table(spark, cfg, CUSTOMER_VALUE).where(F.col("dt") == F.lit(RUN_DATE).cast("date")).cache()
    paid = io.read_table(spark, cfg, ORDERS).where((F.col("status") == "paid") & (F.col("dt") <= RUN_DATE))
    assert values.select("user_id").exceptAll(paid.select("user_id").distinct()).isEmpty()
    assert values.count() == paid.select("user_id").distinct().count() > 0
    # The models were fitted on this history: one MLflow run, every customer predicted.
    [(run_id,)] = values.select("value_model_run_id").distinct().collect()
    run = mlflow.MlflowClient().get_run(run_id)
    assert run.data.metrics["bgnbd_customers"] == values.count()
    predicted = values.agg(*[F.count(c).alias(c) for c in ("p_alive", "expected_purchases_90d", "clv")]).first()
    assert set(predicted) == {values.count()}
    assert values.where((F.col("p_alive") < 0) | (F.col("p_alive") > 1) | (F.col("clv") < 0)).isEmpty()
    assert values.where((F.col("frequency") == 0) & (F.col("p_alive") != 1.0)).isEmpty()
    # Repeat buyers are expected to buy more than one-off buyers of the same age.
    by_repeat = {r[0]: r[1] for r in values.groupBy(F.col("frequency") > 0).agg(F.avg("expected_purchases_90d"))
                 .collect()}
    assert by_repeat[True] > by_repeat[False]
    # The portrait repeats the value columns of its persons; persons without a paid order have none.
    columns = ["p_alive", "expected_purchases_90d", "expected_order_value", "clv"]
    portrait = _portrait(spark, cfg, RUN_DATE)
    joined = portrait.join(values.select("user_id", *[F.col(c).alias(f"v_{c}") for c in columns]), "user_id", "left")
    same = functools.reduce(lambda a, b: a & b, [F.col(c).eqNullSafe(F.col(f"v_{c}")) for c in columns])
    differing = joined.where(~same)
    assert differing.isEmpty() and joined.where(F.col("p_alive").isNotNull()).count() > 0
    values.unpersist()


def test_mlflow_holds_the_run_with_params_metrics_and_a_registered_model(default_run):
    cfg, summary, _ = default_run
    mlflow.set_tracking_uri(cfg.mlflow.tracking_uri)
    run = mlflow.get_run(summary.mlflow_run_id)
    assert run.data.params["config_fingerprint"] == cfg.fingerprint()
    assert run.data.params["run_date"] == RUN_DATE.isoformat()
    assert int(run.data.params["input_version_clickstream"]) >= 0
    assert int(run.data.params["train_rows"]) > int(run.data.params["test_rows"]) > 0
    assert 0.5 < run.data.metrics["auc_roc"] <= 1.0
    assert {"auc_pr", "log_loss", "base_rate"} <= set(run.data.metrics)
    versions = mlflow.MlflowClient().search_model_versions(f"name = '{cfg.model.name}'")
    assert [v.run_id for v in versions] == [summary.mlflow_run_id]


def test_model_loaded_from_mlflow_scores_exactly_like_the_in_memory_model(spark, default_run):
    cfg, summary, trained_by_target = default_run
    trained = trained_by_target["purchase"]  # the model the daily run trained, still in memory
    assert trained.model_uri == summary.model_uri
    day = F.col("dt") == F.lit(RUN_DATE).cast("date")
    features = io.read_table(spark, cfg, USER_FEATURES).where(day).transform(
        with_customers(io.read_table(spark, cfg, CUSTOMER_VALUE).where(day), cfg.features))
    in_memory = features.transform(score(trained.model)).select("user_id", SCORE)
    loaded = tracking.load_model(trained.model_uri)
    from_mlflow = features.transform(score(loaded)).select("user_id", SCORE)
    assertDataFrameEqual(from_mlflow, in_memory, rtol=0.0, atol=0.0)
    assert tracking.run_id_of(trained.model_uri) == trained.run_id


def test_rerunning_the_date_leaves_identical_content(spark, daily_shop, tmp_path):
    """A re-run of the date (a retried job) on a copy of the shop: every published table's rows for the date
    are the same, each written in one commit, and the champions are reused rather than retrained."""
    cfg = daily_shop.copy(tmp_path / "shop")
    published = (USER_FEATURES, USER_PORTRAIT, PORTRAIT_LATEST, SEGMENT_DAILY)
    on_date = {c.name: F.col("dt") == F.lit(RUN_DATE).cast("date") for c in published if c is not PORTRAIT_LATEST}

    def rows(contract):
        frame = io.read_table(spark, cfg, contract)
        return frame.where(on_date[contract.name]) if contract.name in on_date else frame

    before = {c.name: rows(c).localCheckpoint(eager=True) for c in published}
    versions = {c.name: io.table_version(spark, cfg, c) for c in published}
    rerun = graph.run_daily(Lakehouse(spark, cfg), RUN_DATE, generate_if_missing=False)
    assert not rerun.generated and rerun.mlflow_run_id == daily_shop.summary.mlflow_run_id
    assert rerun.portrait_rows == daily_shop.summary.portrait_rows > 0
    for contract in published:
        assertDataFrameEqual(rows(contract), before[contract.name], rtol=0.0, atol=0.0)
        assert io.table_version(spark, cfg, contract) == versions[contract.name] + 1, contract.name


def test_missing_input_table_without_generation_is_a_clear_error(spark, cfg):
    with pytest.raises(io.TableNotFoundError, match="table 'clickstream' does not exist"):
        graph.run_daily(Lakehouse(spark, cfg), RUN_DATE, generate_if_missing=False)
    assert not io.table_exists(spark, io.table_ref(cfg, USER_PORTRAIT))
