"""The tag registry's entries and the checks of its hierarchy (docs/TAGS.md)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from portrait.config.base import _Section

TAG_CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class TagDefinition(_Section):
    """One entry of the tag registry (``tags:``): a code to select users by, its names and its rule.

    A tag with a ``definition`` is set on every portrait row where the expression is true, once its status
    is ``live``. A tag without one is a category that only groups its children in the hierarchy.
    """

    code: str = Field(description="Stable code stored in user_portrait.tags: lower-case letters, digits, _.")
    name_zh: str = Field(min_length=1, description="Chinese name shown to marketing and in BI tools.")
    name_en: str = Field(min_length=1, description="English name.")
    type: Literal["rule", "statistical", "model"] = Field(
        description="rule: fixed thresholds; statistical: relative to the day's population; model: from a score."
    )
    parent: str | None = Field(None, description="Code of the broader tag or category; null at the top level.")
    definition: str | None = Field(
        None, description="Spark SQL boolean expression over user_features and user_portrait columns; null for "
                          "a category."
    )
    status: Literal["draft", "live", "retired"] = Field(
        "draft", description="Only live tags are set; draft and retired ones are kept for the catalogue."
    )

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        if not TAG_CODE.match(value):
            raise ValueError(f"tag code {value!r} must be lower-case letters, digits and _, starting with a letter")
        return value

    @model_validator(mode="after")
    def _definition_text(self) -> TagDefinition:
        if self.definition is not None and not self.definition.strip():
            raise ValueError(f"tag '{self.code}': definition is empty; write a condition or null for a category")
        if self.parent == self.code:
            raise ValueError(f"tag '{self.code}': a tag cannot be its own parent")
        return self


def check_tag_hierarchy(tags: list[TagDefinition]) -> None:
    """Raise ValueError naming the tag for a duplicate code, an unknown parent or a cycle of parents."""
    seen: set[str] = set()
    for tag in tags:
        if tag.code in seen:
            raise ValueError(f"tag '{tag.code}' is defined more than once; tag codes must be unique")
        seen.add(tag.code)
    parents = {tag.code: tag.parent for tag in tags}
    for tag in tags:
        if tag.parent is not None and tag.parent not in parents:
            raise ValueError(f"tag '{tag.code}': parent '{tag.parent}' is not a tag code of the registry")
    for tag in tags:
        chain, code = [tag.code], tag.parent
        while code is not None:
            if code in chain:
                raise ValueError(f"tag '{tag.code}': its parents form a cycle ({' -> '.join([*chain, code])})")
            chain.append(code)
            code = parents[code]
