"""File ingestion (``portrait ingest``): plausibility limits, the generic format's layout and identity
stitching."""

from __future__ import annotations

import datetime
import re
from typing import Literal

from pydantic import Field, field_validator

from portrait.config.base import _Section
from portrait.schemas import EVENT_TYPES

# Fields a generic source may map, by clickstream contract name (plus order_id and quantity for purchases).
GENERIC_TARGET_FIELDS: tuple[str, ...] = (
    "event_id", "user_id", "anonymous_id", "session_id", "event_time", "event_type", "item_id", "category_id",
    "brand", "price", "search_query", "channel", "platform", "order_id", "quantity",
)


class GenericFormatConfig(_Section):
    """How ``portrait ingest --format generic`` reads a file: layout, column mapping and value mapping."""

    file_format: Literal["csv", "json", "parquet"] = "csv"
    header: bool = Field(True, description="CSV only: the first line of every file names the columns.")
    delimiter: str = Field(",", min_length=1, max_length=1)
    columns: list[str] = Field(default_factory=list, description="CSV without header: column names in order.")
    mapping: dict[str, str | None] = Field(
        default_factory=lambda: {f: f for f in GENERIC_TARGET_FIELDS if f not in ("order_id", "quantity")},
        description="clickstream field -> source column; null = not mapped (mappings merge key by key).",
    )
    event_types: dict[str, str] = Field(
        default_factory=lambda: {t: t for t in EVENT_TYPES},
        description="source event type value -> clickstream event type.",
    )
    time_format: str = Field(
        "yyyy-MM-dd HH:mm:ss", min_length=1,
        description="'seconds' or 'millis' (Unix epoch numbers) or a Spark datetime pattern.",
    )

    @field_validator("mapping")
    @classmethod
    def _known_targets(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        unknown = sorted(set(value) - set(GENERIC_TARGET_FIELDS))
        if unknown:
            raise ValueError(f"unknown target field(s) {unknown}; allowed: {list(GENERIC_TARGET_FIELDS)}")
        mapped = {k for k, v in value.items() if v}
        if not {"event_time", "event_type"} <= mapped or not {"user_id", "anonymous_id"} & mapped:
            raise ValueError("map at least event_time, event_type and one of user_id / anonymous_id")
        return value

    @field_validator("event_types")
    @classmethod
    def _known_event_types(cls, value: dict[str, str]) -> dict[str, str]:
        bad = sorted(v for v in value.values() if v not in EVENT_TYPES)
        if bad or not value:
            raise ValueError(f"event types {bad} are not clickstream types {list(EVENT_TYPES)}")
        return value


class IngestConfig(_Section):
    """File ingestion (``portrait ingest``): plausibility limits and the quarantine threshold."""

    min_event_date: datetime.date = Field(datetime.date(2000, 1, 1), description="Older events are quarantined.")
    max_future_hours: int = Field(24, ge=0, description="Events later than run time + this are quarantined.")
    max_quarantine_share: float = Field(
        0.05, ge=0.0, le=1.0, description="Above this share of quarantined rows the run fails and commits nothing."
    )
    generic: GenericFormatConfig = GenericFormatConfig()


class IdentityConfig(_Section):
    """Identity stitching: anonymous/device ids linked to the users that logged in on them."""

    enabled: bool = Field(True, description="Rebuild identity_graph after ingest and use it in features.")
    max_ids_per_person: int = Field(3, ge=1, description="Most user ids one person (component) may merge.")
    excluded_ids: list[str] = Field(default_factory=list, description="Ids never used to link (shared/test).")
    excluded_pattern: str | None = Field(None, description="Java regex: matching ids are never used to link.")
    max_iterations: int = Field(30, ge=1, le=1000)

    @field_validator("excluded_pattern")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value
