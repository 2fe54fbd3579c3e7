"""What every configuration section shares: the error type, the frozen strict base model, identifiers."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ConfigError(ValueError):
    """A configuration problem, with the key and the file it came from in the message."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_identifier(value: str, what: str) -> str:
    """``value`` if it is a plain SQL identifier (letters, digits, _; not starting with a digit), else ValueError."""
    if not _IDENTIFIER.match(value):
        raise ValueError(f"{what} {value!r} must be a plain SQL identifier (letters, digits, _)")
    return value
