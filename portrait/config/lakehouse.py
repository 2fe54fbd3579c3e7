"""Where the tables live and what they are called: the lakehouse location, the physical table names
(by default the contract names of :mod:`portrait.schemas`) and their file maintenance."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, create_model, field_validator, model_validator

from portrait.config.base import _IDENTIFIER, _Section
from portrait.schemas import ALL_TABLES


class LakehouseConfig(_Section):
    """Where the tables live: a directory of Delta tables, or a catalog.schema in a metastore."""

    path: str | None = Field(None, description="Directory holding one Delta table per sub-folder.")
    catalog: str | None = None
    schema_name: str | None = Field(None, alias="schema")

    @field_validator("path")
    @classmethod
    def _plain_path(cls, value: str | None) -> str | None:
        # The path is quoted into SQL as delta.`<path>`: a backtick or a control character would end the quote.
        if value is not None:
            if not value.strip() or "`" in value or any(ord(c) < 32 for c in value):
                raise ValueError(f"lakehouse path {value!r} must be non-empty, without backticks or control "
                                 "characters")
            if Path(value).exists() and not Path(value).is_dir():
                raise ValueError(f"lakehouse path {value!r} exists and is not a directory")
        return value

    @model_validator(mode="after")
    def _one_location(self) -> LakehouseConfig:
        if (self.path is None) == (self.schema_name is None):
            raise ValueError("set exactly one of 'path' (a directory) or 'schema' (a metastore schema)")
        for part in (self.catalog, self.schema_name):
            if part is not None and not _IDENTIFIER.match(part):
                raise ValueError(f"catalog/schema name {part!r} must be a plain SQL identifier")
        return self


class _TableNames(_Section):
    """Physical table names; each is a plain identifier (it becomes a folder or a metastore table)."""

    @field_validator("*")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError(f"table name {value!r} must be a plain identifier (letters, digits, _)")
        return value


# One field per table contract, named after it and defaulting to the contract's name, so a new contract needs
# no configuration; a key that is no contract's name is an unknown key.
TablesConfig = create_model(
    "TablesConfig",
    __base__=_TableNames,
    __module__=__name__,
    **{name: (str, Field(name, description=f"Physical name of the {name} table.")) for name in ALL_TABLES},
)
TablesConfig.__doc__ = _TableNames.__doc__


class MaintenanceConfig(_Section):
    """``portrait maintain``: file compaction with Z-ordering, then VACUUM (retention: privacy section)."""

    # Z-ordering needs per-file statistics of its columns, and Delta keeps no statistics of raw ids (their
    # minimum and maximum would outlive an erasure in the table's log): a person is found by person_key.
    zorder_by: dict[str, list[str]] = Field(
        default_factory=lambda: {"user_portrait": ["person_key"]},
        description="Columns to Z-order each table's files by (contract name -> columns); others are compacted. "
                    "Not raw-id columns: they carry no statistics to order by.",
    )
