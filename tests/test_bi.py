"""BI tables: pseudonymised newest rows, segment sizes with small groups suppressed, exact audience exports."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from portrait import io, privacy
from portrait.cli import main
from portrait.lakehouse import Lakehouse
from portrait.publish.bi import audience, newest_per_user, pseudonymised, segment_daily, with_feature_values
from portrait.schemas import (
    ALL_TABLES,
    PORTRAIT_LATEST,
    SEGMENT_DAILY,
    USER_FEATURES,
    USER_PORTRAIT,
)
from portrait.stages import bi
from tests.bi_helpers import DAY, features, portrait
from tests.conftest import LOCAL_CONF, TEST_PSEUDONYM_KEY, config_environ, make_config

KEY = TEST_PSEUDONYM_KEY.encode()
NEXT = DAY + dt.timedelta(days=1)


def pk(user_id: str) -> str:
    return privacy.person_key_of(user_id, KEY)


# Eight persons on DAY: (user, rfm_segment, lifecycle, decile, propensity, tags, spend_90d, orders_90d)
PEOPLE = [
    ("u1", "champions", "active", 10, 0.9, ["high_propensity", "cart_abandoner"], 100.0, 1),
    ("u2", "champions", "active", 10, 0.8, ["cart_abandoner", "high_propensity"], 200.0, 2),
    ("u3", "champions", "active", 10, 0.7, ["high_propensity", "cart_abandoner"], 300.0, 3),
    ("u4", "champions", "active", 5, 0.4, ["cart_abandoner", "cart_abandoner"], 400.0, 4),
    ("u5", "at_risk", "active", 5, 0.3, [], 0.0, 0),
    ("u6", "at_risk", "active", 5, 0.2, [], 0.0, 0),
    ("u7", "at_risk", "churned", 5, 0.1, [], 50.0, 1),
    ("u8", "hibernating", "churned", 5, 0.05, ["high_value"], 10.0, 1),
]


def _portrait_rows(spark, day=DAY, people=PEOPLE):
    return portrait(spark, [
        {"user_id": u, "rfm_segment": rfm, "lifecycle_stage": stage, "propensity_decile": decile,
         "purchase_propensity": score, "tags": tags, "dt": day}
        for u, rfm, stage, decile, score, tags, _, _ in people])


def _feature_rows(spark, day=DAY, people=PEOPLE):
    rows = [{"user_id": u, "spend_90d": spend, "orders_90d": orders, "dt": day}
            for u, _, _, _, _, _, spend, orders in people]
    # Another date's feature row must not be joined to the portrait of DAY.
    rows.append({"user_id": "u1", "spend_90d": 9999.0, "orders_90d": 99, "dt": day - dt.timedelta(days=1)})
    return features(spark, rows)


def test_bi_facing_contracts_hold_no_raw_id_and_the_portrait_columns():
    bi_facing = [c for c in ALL_TABLES.values() if c.bi_facing]
    assert {c.name for c in bi_facing} >= {PORTRAIT_LATEST.name, SEGMENT_DAILY.name}
    assert all(not c.id_columns for c in bi_facing)
    # user_portrait carries both ids (user_id for CRM activation, person_key for BI); the BI copy only the key.
    assert USER_PORTRAIT.columns[:2] == ["user_id", "person_key"]
    assert PORTRAIT_LATEST.columns == ["person_key"] + USER_PORTRAIT.columns[2:]


def test_pseudonymised_rows_carry_the_hmac_person_key_instead_of_the_user_id(spark):
    rows = _portrait_rows(spark).transform(pseudonymised(KEY))
    assert rows.columns == PORTRAIT_LATEST.columns
    assert sorted((r["person_key"], r["purchase_propensity"]) for r in rows.collect()) == sorted(
        (pk(u), score) for u, _, _, _, score, _, _, _ in PEOPLE)


def test_newest_per_user_keeps_each_users_latest_date(spark):
    rows = portrait(spark, [
        {"user_id": "a", "purchase_propensity": 0.1, "dt": DAY},
        {"user_id": "a", "purchase_propensity": 0.2, "dt": NEXT},
        {"user_id": "b", "purchase_propensity": 0.3, "dt": DAY},
    ])
    newest = rows.transform(newest_per_user).select("user_id", "purchase_propensity", "dt")
    assertDataFrameEqual(newest, spark.createDataFrame(
        [("a", 0.2, NEXT), ("b", 0.3, DAY)], "user_id string, purchase_propensity double, dt date"))


def test_segment_daily_counts_and_averages_and_suppresses_small_groups(spark):
    segments = (_portrait_rows(spark).transform(with_feature_values(_feature_rows(spark)))
                .transform(segment_daily(min_group_size=3)))
    assert segments.columns == SEGMENT_DAILY.columns
    expected = spark.createDataFrame([
        # hibernating (1 person), churned (2), high_value (1) are below 3 persons: not published
        ("rfm_segment", "champions", 4, 0.7, 250.0, 2.5, DAY),
        ("rfm_segment", "at_risk", 3, 0.2, 50.0 / 3, 1.0 / 3, DAY),
        ("lifecycle_stage", "active", 6, 0.55, 1000.0 / 6, 10.0 / 6, DAY),
        ("propensity_decile", "10", 3, 0.8, 200.0, 2.0, DAY),
        ("propensity_decile", "5", 5, 0.21, 92.0, 1.2, DAY),
        ("tag", "high_propensity", 3, 0.8, 200.0, 2.0, DAY),
        ("tag", "cart_abandoner", 4, 0.7, 250.0, 2.5, DAY),  # u4 carries it twice: counted once
    ], SEGMENT_DAILY.schema)
    assertDataFrameEqual(segments, expected, rtol=1e-9)


def test_segment_noise_changes_counts_reproducibly_and_never_reveals_small_groups(spark):
    base = _portrait_rows(spark).transform(with_feature_values(_feature_rows(spark)))
    exact = {(r[0], r[1]): r[2] for r in base.transform(segment_daily(3)).select(
        "segment_kind", "segment", "users").collect()}
    noised = [{(r[0], r[1]): r[2] for r in base.transform(segment_daily(3, noise_epsilon=0.5, noise_seed=11))
               .select("segment_kind", "segment", "users").collect()} for _ in range(2)]
    assert noised[0] == noised[1]
    assert set(noised[0]) == set(exact)  # the same groups: suppression happens before the noise
    assert noised[0] != exact
    # Scale 1/epsilon = 2: a deviation over 40 has probability e^-20; a wrong scale would show here.
    assert all(abs(noised[0][group] - exact[group]) <= 40 for group in exact)


def test_segment_daily_rejects_a_bad_minimum():
    with pytest.raises(ValueError, match="privacy.min_group_size"):
        segment_daily(0)


def test_audience_selects_persons_with_every_tag_and_the_minimum_score_best_first(spark):
    rows = _portrait_rows(spark).transform(pseudonymised(KEY))
    both = rows.transform(audience(["high_propensity", "cart_abandoner"], 0.75))
    assert [tuple(r) for r in both.collect()] == [
        (pk("u1"), 0.9, 10, ["cart_abandoner", "high_propensity"]),
        (pk("u2"), 0.8, 10, ["cart_abandoner", "high_propensity"]),
    ]
    carts = rows.transform(audience(["cart_abandoner"]))
    assert [(r["person_key"], r["score"]) for r in carts.collect()] == [
        (pk("u1"), 0.9), (pk("u2"), 0.8), (pk("u3"), 0.7), (pk("u4"), 0.4)]


@pytest.mark.parametrize(("tags", "min_score", "message"), [
    ([], 0.0, "at least one tag"), (["a", ""], 0.0, "non-empty"), (["a"], 1.5, "between 0 and 1")])
def test_audience_rejects_bad_arguments(tags, min_score, message):
    with pytest.raises(ValueError, match=message):
        audience(tags, min_score)


# --------------------------------------------------------------------------- the stages on real Delta tables

NEXT_PEOPLE = [("u1", "champions", "active", 10, 0.95, ["high_propensity"], 120.0, 2),
               ("u9", "no_purchase", "new", 1, 0.01, [], 0.0, 0)]


def _publish(spark, cfg, day, people):
    io.replace_partition(spark, cfg, USER_PORTRAIT, _portrait_rows(spark, day, people), day)
    io.replace_partition(spark, cfg, USER_FEATURES,
                         _feature_rows(spark, day, people).where(F.col("dt") == F.lit(day)), day)


@pytest.fixture(scope="module")
def lakehouse(spark, tmp_path_factory):
    """user_portrait and user_features of DAY (PEOPLE); tests using it only read them."""
    cfg = make_config(tmp_path_factory.mktemp("bi"), PRIVACY__MIN_GROUP_SIZE="2")
    _publish(spark, cfg, DAY, PEOPLE)
    return cfg


def _latest(spark, cfg):
    return {r["person_key"]: (r["purchase_propensity"], r["dt"])
            for r in io.read_table(spark, cfg, PORTRAIT_LATEST).collect()}


def _last_operation(spark, cfg, contract):
    path = io.table_ref(cfg, contract).path
    return spark.sql(f"DESCRIBE HISTORY delta.`{path}` LIMIT 1").first()["operation"]


@pytest.mark.slow
def test_portrait_latest_is_built_then_merged_forward_and_rebuilt_on_a_rerun(spark, tmp_path):
    cfg = make_config(tmp_path, PRIVACY__MIN_GROUP_SIZE="2")
    _publish(spark, cfg, DAY, PEOPLE)
    first = bi.write_tables(Lakehouse(spark, cfg), DAY)
    assert first == {"portrait_latest": 8, "segment_daily": 8}
    assert _latest(spark, cfg) == {pk(u): (score, DAY) for u, _, _, _, score, _, _, _ in PEOPLE}

    _publish(spark, cfg, NEXT, NEXT_PEOPLE)  # u1 scored again, u9 new
    bi.write_tables(Lakehouse(spark, cfg), NEXT)
    assert _last_operation(spark, cfg, PORTRAIT_LATEST) == "MERGE"
    after_next = _latest(spark, cfg)
    assert after_next == {**{pk(u): (score, DAY) for u, _, _, _, score, _, _, _ in PEOPLE},
                          pk("u1"): (0.95, NEXT), pk("u9"): (0.01, NEXT)}

    bi.write_tables(Lakehouse(spark, cfg), DAY)  # re-running an older date keeps the newer rows
    assert _last_operation(spark, cfg, PORTRAIT_LATEST) != "MERGE"
    assert _latest(spark, cfg) == after_next
    stored = spark.read.format("delta").load(io.table_ref(cfg, PORTRAIT_LATEST).path)
    assert "user_id" not in stored.columns
    segments = io.read_table(spark, cfg, SEGMENT_DAILY)
    assert {r["dt"] for r in segments.select("dt").distinct().collect()} == {DAY}  # NEXT: every group < 2
    assert segments.where("segment_kind = 'rfm_segment' AND segment = 'champions'").first()["users"] == 4


def test_bi_tables_without_a_pseudonym_key_fail_with_a_clear_message(spark, lakehouse, monkeypatch):
    monkeypatch.delenv(privacy.PSEUDONYM_KEY_ENV)
    with pytest.raises(privacy.PseudonymKeyError, match="PORTRAIT_PSEUDONYM_KEY is not set"):
        bi.write_tables(Lakehouse(spark, lakehouse), DAY)
    assert not io.table_exists(spark, io.table_ref(lakehouse, PORTRAIT_LATEST))


def test_audience_export_csv_is_exact(spark, lakehouse, tmp_path):
    output = tmp_path / "out" / "carts.csv"
    persons = bi.export_audience(Lakehouse(spark, lakehouse), DAY, ["cart_abandoner"], 0.5, str(output))
    assert persons == 3
    with output.open(newline="", encoding="utf-8") as handle:
        assert list(csv.reader(handle)) == [
            ["person_key", "score", "decile", "tags"],
            [pk("u1"), "0.9", "10", "cart_abandoner|high_propensity"],
            [pk("u2"), "0.8", "10", "cart_abandoner|high_propensity"],
            [pk("u3"), "0.7", "10", "cart_abandoner|high_propensity"],
        ]
    assert [p.name for p in output.parent.iterdir()] == ["carts.csv"]  # no staging folder left behind


def test_audience_export_parquet_via_the_cli_is_exact(spark, lakehouse, tmp_path, monkeypatch, capsys):
    root = Path(lakehouse.lakehouse.path).parent
    for name, value in config_environ(root, PRIVACY__MIN_GROUP_SIZE="2").items():
        monkeypatch.setenv(name, value)
    output = tmp_path / "high.parquet"
    code = main(["audience", "--conf", str(LOCAL_CONF), "--date", DAY.isoformat(), "--tag", "high_propensity",
                 "--tag", "cart_abandoner", "--min-score", "0.75", "--output", str(output), "--format", "parquet"])
    assert code == 0, capsys.readouterr().err
    assert "2 persons" in capsys.readouterr().out
    assert pq.read_table(output).to_pylist() == [
        {"person_key": pk("u1"), "score": 0.9, "decile": 10, "tags": ["cart_abandoner", "high_propensity"]},
        {"person_key": pk("u2"), "score": 0.8, "decile": 10, "tags": ["cart_abandoner", "high_propensity"]},
    ]


@pytest.mark.parametrize(("tags", "min_score", "message"), [
    (["cart_abandonner"], 0.0, "cart_abandonner are on no person"),
    (["cart_abandoner"], 0.85, "1 person"),
])
def test_audience_refuses_unknown_tags_and_too_small_audiences_and_writes_nothing(
        spark, lakehouse, tmp_path, tags, min_score, message):
    output = tmp_path / "audience.csv"
    with pytest.raises(bi.AudienceError, match=message):
        bi.export_audience(Lakehouse(spark, lakehouse), DAY, tags, min_score, str(output))
    assert list(tmp_path.iterdir()) == []
