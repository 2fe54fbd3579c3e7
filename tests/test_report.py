"""The daily HTML report: written beside the tables, logged to MLflow, showing exactly the day's numbers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import mlflow
import pytest

from portrait import io
from portrait.lakehouse import Lakehouse
from portrait.publish.report import tag_change_counts
from portrait.schemas import PORTRAIT_CHANGES, USER_FEATURES, USER_PORTRAIT
from portrait.stages import bi
from tests.bi_helpers import DAY, contract_rows, features, portrait
from tests.conftest import make_config

PREVIOUS = DAY - dt.timedelta(days=1)
# (user, rfm_segment, top_category, propensity, tags)
PEOPLE = [
    ("a", "champions", "phones", 0.91, ["high_propensity"]),
    ("b", "champions", "phones", 0.92, ["high_propensity"]),
    ("c", "champions", "phones", 0.93, ["high_propensity"]),
    ("d", "at_risk", "books", 0.11, []),
    ("e", "at_risk", "books", 0.12, []),
    ("f", "hibernating", "toys", 0.55, []),
]
# gained high_propensity: a, b (2 persons); lost it: d (1 person, below the minimum of 2)
CHANGES = [
    {"user_id": "a", "change_kind": "tags_changed", "gained": ["high_propensity"], "lost": []},
    {"user_id": "b", "change_kind": "tags_changed", "gained": ["high_propensity"], "lost": []},
    {"user_id": "d", "change_kind": "tags_changed", "gained": [], "lost": ["high_propensity"]},
]


def _changes(spark):
    return contract_rows(spark, PORTRAIT_CHANGES, [{**c, "previous_dt": PREVIOUS, "dt": DAY} for c in CHANGES])


def test_tag_change_counts_suppress_small_counts(spark):
    assert tag_change_counts(_changes(spark), min_group_size=2) == [("high_propensity", 2, 0)]
    assert tag_change_counts(_changes(spark), min_group_size=1) == [("high_propensity", 2, 1)]
    assert tag_change_counts(_changes(spark), min_group_size=3) == []


@pytest.fixture
def published(spark, tmp_path):
    cfg = make_config(tmp_path, PRIVACY__MIN_GROUP_SIZE="2")
    rows = [{"user_id": u, "rfm_segment": rfm, "lifecycle_stage": "active", "top_category": category,
             "purchase_propensity": score, "tags": tags, "dt": DAY} for u, rfm, category, score, tags in PEOPLE]
    io.replace_partition(spark, cfg, USER_PORTRAIT, portrait(spark, rows), DAY)
    io.replace_partition(spark, cfg, USER_FEATURES, features(
        spark, [{"user_id": u, "spend_90d": 10.0, "orders_90d": 1, "dt": DAY} for u, *_ in PEOPLE]), DAY)
    io.replace_partition(spark, cfg, PORTRAIT_CHANGES, _changes(spark), DAY)
    bi.write_tables(Lakehouse(spark, cfg), DAY)
    return cfg


@pytest.mark.slow
def test_daily_report_is_written_beside_the_tables_with_the_days_numbers_and_logged(spark, published):
    cfg = published
    path = bi.write_report(Lakehouse(spark, cfg), DAY)
    assert path.resolve() == (Path(cfg.lakehouse.path) / "reports" / "portrait_2026-11-20.html").resolve()
    page = path.read_text(encoding="utf-8")
    for expected in [
        "<td>persons</td><td>6</td>",
        "<td>average purchase propensity</td><td>0.5900</td>",
        # segment sizes (from segment_daily): hibernating has 1 person, below the minimum of 2
        "<td>champions</td><td>3</td><td>0.9200</td>",
        "<td>at_risk</td><td>2</td><td>0.1150</td>",
        "<td>active</td><td>6</td><td>0.5900</td>",
        "<td>high_propensity</td><td>3</td><td>0.9200</td>",
        # score distribution in 0.05 bins
        "<td>0.90</td><td>3</td>", "<td>0.10</td><td>2</td>", "<td>0.55</td><td>1</td>", "<td>0.00</td><td>0</td>",
        # top interests, toys (1 person) left out
        "<td>phones</td><td>3</td>", "<td>books</td><td>2</td>",
        # tag changes: 2 gained, the single loss shown as 0
        "<td>high_propensity</td><td>2</td><td>0</td>",
    ]:
        assert expected in page, expected
    assert "hibernating" not in page and "toys" not in page
    assert page.count('src="data:image/png;base64,') == 6  # rfm, lifecycle, tags, scores, interests, changes

    mlflow.set_tracking_uri(cfg.mlflow.tracking_uri)
    (run,) = mlflow.search_runs(experiment_names=[cfg.mlflow.experiment],
                                filter_string=f"tags.`portrait.job` = 'report' AND tags.`portrait.date` = '{DAY}'",
                                output_format="list")
    assert run.data.metrics["persons"] == 6.0
    artifacts = [a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "report")]
    assert artifacts == ["report/portrait_2026-11-20.html"]
