"""The tag registry applied to portrait rows, checked by Spark's analyser, and its catalogue.

Tags are configuration, not code: each entry of ``tags:`` in ``conf/base.yml`` (a
:class:`portrait.config.TagDefinition`) names a code and, for a tag that is set on users, a Spark SQL condition
over the ``user_features`` and ``user_portrait`` columns. :func:`apply_tags` turns the live ones into the
``tags`` array of each row; :func:`check_definitions` rejects a definition Spark cannot parse, one naming an
unknown column and one that is not a boolean condition, always naming the tag. The configuration loader has
already rejected duplicate codes, unknown parents and cycles (:func:`portrait.config.check_tag_hierarchy`).

Example::

    portrait_rows = with_scores.transform(apply_tags(cfg.tags))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pyspark.errors import AnalysisException, ParseException
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from portrait.config import TagDefinition
from portrait.schemas import USER_FEATURES, USER_PORTRAIT

Transformation = Callable[[DataFrame], DataFrame]
TAGS_COLUMN = "tags"
_PROBE = "__tag_definition__"


class TagDefinitionError(ValueError):
    """A tag's definition cannot be evaluated on the portrait rows; the message names the tag and why."""


def live_tags(tags: Sequence[TagDefinition]) -> list[TagDefinition]:
    """The tags set on users: status ``live`` and a definition (categories only group), in registry order."""
    return [tag for tag in tags if tag.status == "live" and tag.definition is not None]


def tag_levels(tags: Sequence[TagDefinition]) -> dict[str, int]:
    """Level of every tag in the hierarchy: 1 at the top, parent's level + 1 below (the registry is acyclic)."""
    parents = {tag.code: tag.parent for tag in tags}

    def level(code: str) -> int:
        depth = 1
        while parents[code] is not None:
            code, depth = parents[code], depth + 1
        return depth

    return {tag.code: level(tag.code) for tag in tags}


def tag_input_schema() -> T.StructType:
    """The columns a definition may use: ``user_features`` then the ``user_portrait`` columns it lacks.

    ``dt`` is the portrait date and ``feature_dt`` the feature date, as in ``user_portrait``.
    """
    fields = list(USER_FEATURES.schema.fields)
    names = {f.name for f in fields}
    fields += [f for f in USER_PORTRAIT.schema.fields if f.name not in names and f.name != TAGS_COLUMN]
    return T.StructType(fields)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def check_definitions(tags: Sequence[TagDefinition], frame: DataFrame) -> None:
    """Analyse every definition of draft and live tags against ``frame``'s columns; no Spark job runs.

    Retired tags are skipped: they may name columns that no longer exist. An empty DataFrame with
    :func:`tag_input_schema` checks a registry before any data exists.

    Raises
    ------
    TagDefinitionError
        Naming the tag code, for a definition that is not valid Spark SQL, uses an unknown column or
        function, aggregates over rows, or is not a boolean condition.
    """
    checked = [tag for tag in tags if tag.definition is not None and tag.status != "retired"]
    try:
        # One analysis of all definitions: each separate analysis of the wide portrait schema costs a round trip
        # to the JVM. withColumns (not select) so that an aggregate such as max(x) > 1 is refused like in assembly.
        probed = frame.withColumns({f"{_PROBE}{i}": F.expr(tag.definition) for i, tag in enumerate(checked)})
        types = [probed.schema[f"{_PROBE}{i}"].dataType for i in range(len(checked))]
    except (ParseException, AnalysisException):
        types = [_definition_type(tag, frame) for tag in checked]  # one at a time, to name the tag at fault
    for tag, data_type in zip(checked, types, strict=True):
        if not isinstance(data_type, T.BooleanType):
            raise TagDefinitionError(
                f"tag '{tag.code}': definition {tag.definition!r} is of type {data_type.simpleString()}; a "
                "definition must be a condition (boolean)"
            )


def _definition_type(tag: TagDefinition, frame: DataFrame) -> T.DataType:
    """The type of one tag's definition over ``frame``, or :class:`TagDefinitionError` naming the tag."""
    where = f"tag '{tag.code}': definition {tag.definition!r}"
    try:
        return frame.withColumn(_PROBE, F.expr(tag.definition)).schema[_PROBE].dataType
    except ParseException as exc:
        raise TagDefinitionError(f"{where} is not valid Spark SQL: {_first_line(exc)}") from None
    except AnalysisException as exc:
        parameters = exc.getMessageParameters() or {}
        if "UNRESOLVED_COLUMN" in (exc.getCondition() or ""):
            raise TagDefinitionError(
                f"{where} uses unknown column {parameters.get('objectName', '?')}; definitions may use the "
                "user_features and user_portrait columns listed in docs/DATA.md"
            ) from None
        raise TagDefinitionError(f"{where} cannot be evaluated per row: {_first_line(exc)}") from None


def apply_tags(tags: Sequence[TagDefinition]) -> Transformation:
    """Rows → the same rows with ``tags``: codes of the live tags whose definition is true, registry order.

    A definition that is null for a row (e.g. a comparison with a null column) does not set the tag. The
    definitions are checked against the input's columns first (:func:`check_definitions`).
    """
    live = live_tags(tags)

    def transform(frame: DataFrame) -> DataFrame:
        check_definitions(live, frame)
        if not live:
            return frame.withColumn(TAGS_COLUMN, F.array().cast("array<string>"))
        candidates = F.array(*[F.when(F.expr(tag.definition), F.lit(tag.code)) for tag in live])
        return frame.withColumn(TAGS_COLUMN, F.filter(candidates, lambda code: code.isNotNull()))

    return transform


CATALOG_HEADER = """# Tags

The tag registry: every code that can appear in `user_portrait.tags`, its names, type, place in the
hierarchy, status and definition. This page is generated from `tags:` in `conf/base.yml` by
`portrait tags > docs/TAGS.md`; `tests/test_tags.py` fails when the two differ.

- **Adding a rule tag needs no code**: add an entry with a `definition` (a Spark SQL condition over the
  `user_features` and `user_portrait` columns of [DATA.md](DATA.md)) and `status: live`. `portrait tags`
  and every portrait run check each definition with Spark's analyser first: invalid SQL, an unknown column,
  an aggregate or a non-boolean expression stops the run with an error naming the tag.
- **Status**: only `live` tags are set; `draft` tags are checked but not set, `retired` ones are kept for
  the record (their code may still appear in older portrait dates).
- **Type**: `rule` (fixed thresholds), `statistical` (relative to the day's population, e.g. RFM
  quintiles), `model` (from a model score).
- **Hierarchy**: `parent` names the broader entry; level 1 is the top. An entry without a definition is a
  category: it groups its children and never appears in `tags`. A child does not imply its parent.
- Codes appear in `tags` in registry order. Tag changes per user and date are in `portrait_changes`.
"""


def _cell(text: str | None) -> str:
    return "" if text is None else text.replace("|", "\\|")


def tag_catalog(tags: Sequence[TagDefinition]) -> str:
    """docs/TAGS.md for ``tags``: the explanation above and one Markdown table row per registry entry."""
    levels = tag_levels(tags)
    lines = [
        CATALOG_HEADER,
        "| code | 中文名 | name | type | level | parent | status | definition |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for tag in tags:
        definition = f"`{_cell(tag.definition)}`" if tag.definition else "(category)"
        lines.append(
            f"| `{tag.code}` | {_cell(tag.name_zh)} | {_cell(tag.name_en)} | {tag.type} | {levels[tag.code]} | "
            f"{f'`{tag.parent}`' if tag.parent else ''} | {tag.status} | {definition} |"
        )
    return "\n".join(lines) + "\n"
