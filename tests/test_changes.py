"""portrait_changes: tags gained and lost per user since the previous portrait date, exactly."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.testing import assertDataFrameEqual

from portrait import io
from portrait.lakehouse import Lakehouse
from portrait.publish.changes import tag_changes
from portrait.schemas import PORTRAIT_CHANGES
from portrait.stages import publish
from tests.conftest import make_config
from tests.test_quality_gate import make_portrait_rows

D1, D2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)

# user: (tags on D1, tags on D2); None = no portrait row that day.
TWO_DAYS = {
    "same": (["a", "b"], ["b", "a"]),             # same tags in another order: no change
    "swap": (["a", "b", "c"], ["d", "b", "a"]),   # gained d, lost c
    "grew": (["b"], ["c", "b", "a"]),             # gained a and c (sorted)
    "shrank": (["a", "b"], []),                   # lost everything but stays a user
    "fresh": (None, ["b", "a"]),                  # new user: gained all
    "fresh_untagged": (None, []),                 # new user without tags: still reported
    "gone": (["c", "a"], None),                   # left: lost all
    "idle": ([], []),                             # never tagged: no change
}
EXPECTED = [
    ("swap", "tags_changed", ["d"], ["c"], D1, D2),
    ("grew", "tags_changed", ["a", "c"], [], D1, D2),
    ("shrank", "tags_changed", [], ["a", "b"], D1, D2),
    ("fresh", "new_user", ["a", "b"], [], D1, D2),
    ("fresh_untagged", "new_user", [], [], D1, D2),
    ("gone", "left", [], ["a", "c"], D1, D2),
]


def _portraits(spark):
    def on(day, which):
        return make_portrait_rows(spark, day, [{"user_id": user, "tags": tags[which]}
                                               for user, tags in TWO_DAYS.items() if tags[which] is not None])
    return on(D1, 0), on(D2, 1)


def test_tag_changes_two_day_case_exact(spark):
    day1, day2 = _portraits(spark)
    actual = day2.transform(tag_changes(day1, D1, D2))
    assert [(f.name, f.dataType) for f in actual.schema] == [(f.name, f.dataType) for f in PORTRAIT_CHANGES.schema]
    assertDataFrameEqual(actual, spark.createDataFrame(EXPECTED, PORTRAIT_CHANGES.schema))


def test_the_previous_date_must_be_earlier(spark):
    day1, _ = _portraits(spark)
    with pytest.raises(ValueError, match="must be before"):
        tag_changes(day1, D2, D2)


@pytest.mark.slow  # several Delta commits
def test_publishing_writes_changes_after_the_portrait_and_none_on_the_first_date(spark, tmp_path):
    cfg = make_config(tmp_path, PUBLISH__ENFORCE="false")  # the hand-made days differ more than the gate allows
    day1, day2 = _portraits(spark)
    publish.publish_portrait(Lakehouse(spark, cfg), D1, day1)
    publish.publish_portrait(Lakehouse(spark, cfg), D2, day2)
    publish.publish_portrait(Lakehouse(spark, cfg), D2, day2)  # a re-run replaces D2's changes, no duplicates
    assertDataFrameEqual(io.read_table(spark, cfg, PORTRAIT_CHANGES),
                         spark.createDataFrame(EXPECTED, PORTRAIT_CHANGES.schema))
