"""The tag registry: config validation, Spark-analysed definitions, exact tag arrays, the docs catalogue."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pyspark.testing import assertDataFrameEqual

from portrait.config import ConfigError, TagDefinition
from portrait.lakehouse import Lakehouse
from portrait.publish.tags import (
    TagDefinitionError,
    apply_tags,
    check_definitions,
    live_tags,
    tag_catalog,
    tag_input_schema,
    tag_levels,
)
from portrait.stages import publish, score
from tests.conftest import LOCAL_CONF, make_config

TAGS_MD = Path(__file__).resolve().parents[1] / "docs" / "TAGS.md"


def _tag(code: str, definition: str | None = None, **fields) -> TagDefinition:
    return TagDefinition(code=code, name_zh=f"{code}中文", name_en=code.title(), type=fields.pop("type", "rule"),
                         definition=definition, status=fields.pop("status", "live"), **fields)


def _registry_yaml(entries: list[str]) -> str:
    """A PORTRAIT__TAGS value: the registry as a YAML flow list."""
    return "[" + ", ".join(entries) + "]"


# --------------------------------------------------------------------------- configuration


def test_default_registry_loads_with_levels_and_the_moved_tags_live(cfg):
    live = [tag.code for tag in live_tags(cfg.tags)]
    assert live == [
        "lifecycle_new", "lifecycle_active", "lifecycle_sleeping", "lifecycle_churned", "lapsed_customer", "win_back",
        "rfm_champions", "rfm_loyal_customers", "rfm_new_customers", "rfm_potential_loyalists", "rfm_at_risk",
        "rfm_hibernating", "rfm_no_purchase", "high_propensity", "high_churn_risk", "cart_abandoner", "high_value",
        "bot_suspect", "high_refund_rate",
    ]
    levels = tag_levels(cfg.tags)
    assert (levels["lifecycle"], levels["lifecycle_new"], levels["high_value"]) == (1, 2, 2)


def test_a_new_rule_tag_is_configuration_only(tmp_path):
    cfg = make_config(tmp_path, TAGS=_registry_yaml([
        "{code: shoppers, name_zh: 购物者, name_en: Shoppers, type: rule}",
        "{code: big_cart, name_zh: 大购物车, name_en: Big cart, type: rule, parent: shoppers, status: live, "
        "definition: 'carts_7d >= 3'}",
    ]))
    assert [tag.code for tag in live_tags(cfg.tags)] == ["big_cart"]
    assert tag_levels(cfg.tags) == {"shoppers": 1, "big_cart": 2}


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (["{code: a, name_zh: 甲, name_en: A, type: rule, definition: 'carts_7d > 0'}",
          "{code: a, name_zh: 乙, name_en: A2, type: rule, definition: 'buys_7d > 0'}"],
         "tag 'a' is defined more than once"),
        (["{code: a, name_zh: 甲, name_en: A, type: rule, parent: nowhere, definition: 'carts_7d > 0'}"],
         "tag 'a': parent 'nowhere' is not a tag code"),
        (["{code: a, name_zh: 甲, name_en: A, type: rule, parent: b}",
          "{code: b, name_zh: 乙, name_en: B, type: rule, parent: c}",
          "{code: c, name_zh: 丙, name_en: C, type: rule, parent: a}"],
         "tag 'a': its parents form a cycle (a -> b -> c -> a)"),
        (["{code: a, name_zh: 甲, name_en: A, type: rule, parent: a}"], "tag 'a': a tag cannot be its own parent"),
        (["{code: Bad-Code, name_zh: 甲, name_en: A, type: rule}"], "tag code 'Bad-Code' must be lower-case"),
        (["{code: a, name_zh: 甲, name_en: A, type: rule, definition: '  '}"], "tag 'a': definition is empty"),
        (["{code: a, name_zh: 甲, name_en: A, type: guess}"], "key 'tags.0.type'"),
        (["{code: a, name_zh: 甲, name_en: A, type: rule, status: on}"], "key 'tags.0.status'"),
        (["{code: a, name_zh: 甲, name_en: A, type: rule, colour: red}"], "key 'tags.0.colour': unknown key"),
    ],
    ids=["duplicate", "unknown-parent", "cycle", "own-parent", "bad-code", "empty-definition", "bad-type",
         "bad-status", "unknown-field"],
)
def test_config_rejects_an_invalid_registry_naming_the_tag(tmp_path, entries, message):
    with pytest.raises(ConfigError) as error:
        make_config(tmp_path, TAGS=_registry_yaml(entries))
    assert message in str(error.value)
    assert "environment variable PORTRAIT__TAGS" in str(error.value)


# --------------------------------------------------------------------------- definitions checked by Spark


@pytest.fixture(scope="module")
def no_rows(spark):
    """An empty frame with the columns definitions may use: analysis without data."""
    return spark.createDataFrame([], tag_input_schema())


def test_the_default_registry_passes_the_spark_check(spark, cfg, no_rows):
    checked = [t.code for t in cfg.tags if t.definition is not None and t.status != "retired"]
    assert {"lifecycle_new", "cart_abandoner", "bot_suspect", "high_refund_rate"} <= set(checked)
    assert check_definitions(cfg.tags, no_rows) is None
    assert publish.check_tag_registry(Lakehouse(spark, cfg)) is None
    # The pass means something: the same registry with its last checked definition broken is refused by both.
    broken = [t.model_copy(update={"definition": "carts_7d + 1"}) if t.code == checked[-1] else t for t in cfg.tags]
    message = f"tag '{checked[-1]}': definition 'carts_7d \\+ 1' is of type bigint"
    with pytest.raises(TagDefinitionError, match=message):
        check_definitions(broken, no_rows)
    with pytest.raises(TagDefinitionError, match=message):
        publish.check_tag_registry(Lakehouse(spark, cfg.model_copy(update={"tags": broken})))


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ("carts_7d >", "tag 'bad': definition 'carts_7d >' is not valid Spark SQL"),
        ("cartz_7d > 0", "uses unknown column `cartz_7d`"),
        ("carts_7d + 1", "is of type bigint; a definition must be a condition"),
        ("max(carts_7d) > 0", "cannot be evaluated per row"),
        ("no_such_function(carts_7d)", "cannot be evaluated per row"),
    ],
    ids=["syntax", "unknown-column", "not-boolean", "aggregate", "unknown-function"],
)
def test_an_invalid_definition_is_rejected_naming_the_tag(no_rows, definition, message):
    registry = [_tag("fine", "buys_7d > 0"), _tag("bad", definition)]
    with pytest.raises(TagDefinitionError, match="tag 'bad'") as error:
        check_definitions(registry, no_rows)
    assert message in str(error.value)


def test_drafts_are_checked_and_retired_tags_are_not(no_rows):
    with pytest.raises(TagDefinitionError, match="tag 'draft_one'"):
        check_definitions([_tag("draft_one", "gone_column > 0", status="draft")], no_rows)
    check_definitions([_tag("old_one", "gone_column > 0", status="retired")], no_rows)


def test_a_bad_registry_stops_the_portrait_stage_before_any_work(spark, tmp_path):
    cfg = make_config(tmp_path, TAGS=_registry_yaml(
        ["{code: typo, name_zh: 错, name_en: Typo, type: rule, status: live, definition: 'carts_7 > 0'}"]))
    with pytest.raises(TagDefinitionError, match="tag 'typo'.*unknown column `carts_7`"):
        score.write_portrait(Lakehouse(spark, cfg), dt.date(2026, 11, 20), scorer=None)


# --------------------------------------------------------------------------- applying the live tags


def test_apply_tags_sets_exactly_the_live_tags_that_hold_in_registry_order(spark):
    rows = spark.createDataFrame(
        [("u1", 2, 0, "active", 10), ("u2", 0, 1, "new", 3), ("u3", None, 0, "churned", 9), ("u4", 0, 0, "new", 1)],
        "user_id string, carts_7d long, buys_7d long, lifecycle_stage string, propensity_decile int",
    )
    registry = [
        _tag("behaviour", None),                                              # category: never set
        _tag("cart_abandoner", "carts_7d > 0 AND buys_7d = 0", parent="behaviour"),
        _tag("active_or_new", "lifecycle_stage IN ('active', 'new')"),
        _tag("top_decile", "propensity_decile = 10", type="model"),
        _tag("maybe_later", "buys_7d = 0", status="draft"),                   # draft: not set
        _tag("old_rule", "carts_7d = 0", status="retired"),                   # retired: not set
        _tag("high_propensity", "propensity_decile >= 9", type="model"),
    ]
    actual = rows.transform(apply_tags(registry)).select("user_id", "tags")
    expected = spark.createDataFrame(
        [
            ("u1", ["cart_abandoner", "active_or_new", "top_decile", "high_propensity"]),
            ("u2", ["active_or_new"]),
            ("u3", ["high_propensity"]),   # carts_7d null: the condition is null, the tag is not set
            ("u4", ["active_or_new"]),
        ],
        "user_id string, tags array<string>",
    )
    assertDataFrameEqual(actual, expected)


def test_a_registry_without_live_tags_gives_empty_arrays(spark):
    rows = spark.createDataFrame([("u1", 1)], "user_id string, carts_7d long")
    actual = rows.transform(apply_tags([_tag("later", "carts_7d > 0", status="draft")])).select("user_id", "tags")
    assertDataFrameEqual(actual, spark.createDataFrame([("u1", [])], "user_id string, tags array<string>"))


# --------------------------------------------------------------------------- catalogue


def test_docs_tags_md_is_the_catalogue_of_the_configured_registry():
    from portrait.config import load_config

    registry = load_config(LOCAL_CONF, environ={}).tags
    assert TAGS_MD.read_text(encoding="utf-8") == tag_catalog(registry), (
        "docs/TAGS.md is out of date: run `portrait tags > docs/TAGS.md`")


def test_catalogue_lists_every_entry_once_and_escapes_pipes():
    registry = [_tag("group", None), _tag("either", "carts_7d > 0 || buys_7d > 0", parent="group")]
    lines = [line for line in tag_catalog(registry).splitlines() if line.startswith("| `")]
    assert lines == [
        "| `group` | group中文 | Group | rule | 1 |  | live | (category) |",
        "| `either` | either中文 | Either | rule | 2 | `group` | live | `carts_7d > 0 \\|\\| buys_7d > 0` |",
    ]
