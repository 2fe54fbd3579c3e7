"""Quality-gated publishing: exact check values, and a failed gate leaves every published row untouched."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from pyspark.sql import DataFrame
from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

from portrait import audit, io
from portrait.config import PublishConfig
from portrait.lakehouse import Lakehouse
from portrait.publish import quality
from portrait.publish.quality import CheckResult, QualityGateFailed
from portrait.schemas import JOB_RUNS, PUBLISH_CHECKS, USER_PORTRAIT
from portrait.stages import publish
from tests.conftest import make_config
from tests.contract_values import column_default

D1, D2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)

# Values for portrait columns a test does not care about; they satisfy the contract's NOT NULL and CHECKs.
_DEFAULT_BY_COLUMN = {"lifecycle_stage": "active", "rfm_segment": "champions", "model_name": "m",
                      "model_run_id": "r", "purchase_propensity": 0.5}


def _default(field: T.StructField, day: dt.date):
    return _DEFAULT_BY_COLUMN.get(field.name, column_default(field, day))


def make_portrait_rows(spark, day: dt.date, rows: list[dict]) -> DataFrame:
    """``user_portrait`` rows of ``day``: each dict gives some columns, the others get harmless defaults."""
    fields = USER_PORTRAIT.schema.fields
    data = [tuple(row.get(f.name, day if f.name == "dt" else _default(f, day)) for f in fields) for row in rows]
    return spark.createDataFrame(data, USER_PORTRAIT.schema)


# --------------------------------------------------------------------------- the checks, exactly


def test_row_count_check_is_the_relative_change_and_passes_without_a_previous_date():
    assert quality.row_count_check(150, 100, 0.3, D1) == CheckResult("row_count", "user_portrait", 0.5, 0.3, False, D1)
    assert quality.row_count_check(75, 100, 0.3, D1) == CheckResult("row_count", "user_portrait", -0.25, 0.3, True, D1)
    assert quality.row_count_check(69, 100, 0.3, D1).passed is False
    assert quality.row_count_check(5, None, 0.3) == CheckResult("row_count", "user_portrait", None, 0.3, True, None)
    assert quality.row_count_check(5, 0, 0.3, D1).value == math.inf


def test_null_rates_coverage_and_segment_shares_exact(spark):
    frame = make_portrait_rows(spark, D2, [
        {"user_id": "a", "top_category": None, "tags": ["t1"], "rfm_segment": "champions"},
        {"user_id": "b", "top_category": "c1", "tags": [], "rfm_segment": "champions"},
        {"user_id": "c", "top_category": None, "tags": ["t1", "t2"], "rfm_segment": "at_risk"},
        {"user_id": "d", "top_category": None, "tags": ["t2"], "rfm_segment": "at_risk"},
    ])
    rows, nulls, tagged = quality.profile(frame)
    assert (rows, tagged, nulls["top_category"], nulls["user_id"]) == (4, 3, 3, 0)
    by_column = {c.subject: c for c in quality.null_rate_checks(rows, nulls, 0.5, {"top_category": 0.8})}
    assert by_column["top_category"] == CheckResult("null_rate", "top_category", 0.75, 0.8, True)
    assert by_column["user_id"] == CheckResult("null_rate", "user_id", 0.0, 0.5, True)
    assert quality.null_rate_checks(rows, nulls, 0.5, {})[USER_PORTRAIT.columns.index("top_category")].passed is False
    assert quality.tag_coverage_check(rows, tagged, 0.9) == CheckResult("tag_coverage", "tags", 0.75, 0.9, False)

    current = quality.segment_counts(frame, "rfm_segment")
    assert current == {"champions": 2, "at_risk": 2}
    checks = quality.segment_share_checks("rfm_segment", current, {"champions": 3, "hibernating": 1}, 0.3, D1)
    assert checks == [
        CheckResult("segment_share", "rfm_segment=at_risk", 0.5, 0.3, False, D1),
        CheckResult("segment_share", "rfm_segment=champions", 0.25, 0.3, True, D1),
        CheckResult("segment_share", "rfm_segment=hibernating", 0.25, 0.3, True, D1),
    ]


def test_score_psi_is_zero_for_the_same_distribution_and_fails_for_a_shift(spark):
    before = make_portrait_rows(spark, D1, [{"user_id": f"u{k}", "purchase_propensity": k / 100} for k in range(100)])
    same = make_portrait_rows(spark, D2, [{"user_id": f"u{k}", "purchase_propensity": k / 100} for k in range(100)])
    shifted = make_portrait_rows(spark, D2, [{"user_id": f"u{k}", "purchase_propensity": 0.9 + k / 1000}
                                             for k in range(100)])
    (stable,) = quality.score_psi_checks(same, before, ["purchase_propensity"], 0.25, D1)
    assert stable == CheckResult("score_psi", "purchase_propensity", 0.0, 0.25, True, D1)
    (drifted,) = quality.score_psi_checks(shifted, before, ["purchase_propensity"], 0.25, D1)
    assert drifted.passed is False and drifted.value > 1.0
    assert quality.score_psi_checks(same, None, ["purchase_propensity"], 0.25) == [
        CheckResult("score_psi", "purchase_propensity", None, 0.25, True, None)]


def test_first_date_passes_every_check_that_needs_a_previous_date(spark):
    frame = make_portrait_rows(spark, D1, [{"user_id": "a", "tags": ["t"]}, {"user_id": "b", "tags": ["t"]}])
    checks = quality.gate_checks(frame, None, None, PublishConfig())
    assert all(c.passed for c in checks)
    needing_previous = [c for c in checks if c.check in ("row_count", "segment_share", "score_psi")]
    assert needing_previous and all(c.value is None and c.reference_dt is None for c in needing_previous)


def test_a_configured_column_that_is_not_a_portrait_column_is_named(spark):
    frame = make_portrait_rows(spark, D1, [{"user_id": "a"}])
    with pytest.raises(ValueError, match=r"publish.segment_columns names \['rfm_segmnt'\]"):
        quality.gate_checks(frame, None, None, PublishConfig(segment_columns=["rfm_segmnt"]))


# --------------------------------------------------------------------------- the gate in the publishing stage


def _day_rows(spark, day: dt.date, users: int, tag: str = "t", prefix: str = "u") -> DataFrame:
    return make_portrait_rows(spark, day, [
        {"user_id": f"{prefix}{k:03d}", "tags": [tag], "purchase_propensity": (k % 10) / 10 + 0.05}
        for k in range(users)
    ])


def _stored(spark, cfg) -> DataFrame:
    return io.read_table(spark, cfg, USER_PORTRAIT)


@pytest.mark.slow  # several Delta commits
def test_a_failed_gate_leaves_the_previous_and_the_same_date_partition_untouched(spark, tmp_path):
    cfg = make_config(tmp_path)
    day1, day2 = _day_rows(spark, D1, 40), _day_rows(spark, D2, 42, tag="t2")
    publish.publish_portrait(Lakehouse(spark, cfg), D1, day1)            # first date: nothing to compare with
    publish.publish_portrait(Lakehouse(spark, cfg), D2, day2)            # +5 % rows: passes
    published = _stored(spark, cfg).collect()
    version = io.table_version(spark, cfg, USER_PORTRAIT)

    # A re-run of D2 that lost most users (10 against D1's 40): the row count check fails, nothing is written ...
    broken = _day_rows(spark, D2, 10, tag="t3", prefix="v")
    expected_failure = r"row_count user_portrait = -0\.7500 \(max 0\.3\)"
    with pytest.raises(QualityGateFailed, match=expected_failure) as failure, audit.recorded(Lakehouse(spark, cfg), "daily", D2):
        publish.publish_portrait(Lakehouse(spark, cfg), D2, broken)
    assert [c.check for c in failure.value.failed] == ["row_count"]

    # ... the previous date and the earlier version of D2 are exactly as before, in the same table version,
    assertDataFrameEqual(_stored(spark, cfg), published)
    assertDataFrameEqual(_stored(spark, cfg).where("dt = DATE'2026-11-01'"), day1)
    assertDataFrameEqual(_stored(spark, cfg).where("dt = DATE'2026-11-02'"), day2)
    assert io.table_version(spark, cfg, USER_PORTRAIT) == version
    # ... the failure is in publish_checks (one row per check; D1's rows kept) and job_runs says failed.
    checks = io.read_table(spark, cfg, PUBLISH_CHECKS)
    failed = checks.where("NOT passed").select("dt", "check", "subject", "threshold", "reference_dt").collect()
    assert [tuple(r) for r in failed] == [(D2, "row_count", "user_portrait", 0.3, D1)]
    # D1 (first date) keeps its checks: the row count, one null rate per portrait column, the tag coverage, one
    # share per segment present (every D1 row is a champion and active) and the PSI of the one score.
    expected_d1 = sorted([("row_count", "user_portrait"), ("tag_coverage", "tags"),
                          ("segment_share", "rfm_segment=champions"), ("segment_share", "lifecycle_stage=active"),
                          ("score_psi", "purchase_propensity")]
                         + [("null_rate", column) for column in USER_PORTRAIT.columns])
    d1_checks = checks.where("dt = DATE'2026-11-01'").select("check", "subject").collect()
    assert sorted(tuple(r) for r in d1_checks) == expected_d1
    run = io.read_table(spark, cfg, JOB_RUNS).first()
    assert (run["status"], run["error_message"].split(":")[0]) == ("failed", "QualityGateFailed")


@pytest.mark.slow  # several Delta commits
def test_with_enforce_off_a_failure_is_recorded_and_the_date_still_published(spark, tmp_path):
    cfg = make_config(tmp_path, PUBLISH__ENFORCE="false", PUBLISH__MIN_TAG_COVERAGE="1.0")
    rows = make_portrait_rows(spark, D1, [{"user_id": "a", "tags": ["t"]}, {"user_id": "b", "tags": []}])
    published = publish.publish_portrait(Lakehouse(spark, cfg), D1, rows)
    assert published.rows == 2
    assert [c for c in published.checks if not c.passed] == [CheckResult("tag_coverage", "tags", 0.5, 1.0, False)]
    assertDataFrameEqual(_stored(spark, cfg), rows)


@pytest.mark.slow  # several Delta commits
def test_the_segment_and_score_checks_compare_with_the_latest_earlier_date(spark, tmp_path):
    cfg = make_config(tmp_path)
    publish.publish_portrait(Lakehouse(spark, cfg), D1, _day_rows(spark, D1, 40))
    d3 = D2 + dt.timedelta(days=1)  # D2 was never published: D3 is compared with D1
    moved = make_portrait_rows(spark, d3, [
        {"user_id": f"u{k:03d}", "tags": ["t"], "rfm_segment": "at_risk" if k < 10 else "champions",
         "purchase_propensity": (k % 10) / 10 + 0.05} for k in range(40)
    ])
    with pytest.raises(QualityGateFailed) as failure:
        publish.publish_portrait(Lakehouse(spark, cfg), d3, moved)
    assert failure.value.failed == [
        CheckResult("segment_share", "rfm_segment=at_risk", 0.25, 0.1, False, D1),
        CheckResult("segment_share", "rfm_segment=champions", 0.25, 0.1, False, D1),
    ]
    assert publish.previous_portrait_date(Lakehouse(spark, cfg), d3) == D1
