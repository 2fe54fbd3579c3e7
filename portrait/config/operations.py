"""Settings of the runtime and of the stages around the model: Spark, synthetic data, monitoring, privacy,
the publishing quality gate and the BI side."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from portrait.config.base import _Section


class GenerateConfig(_Section):
    """Synthetic data used when the input tables do not exist yet."""

    kind: Literal["shop", "buyers"] = Field(
        "shop", description="shop: the behaviour shop of portrait/generate (clickstream, orders, items, users, "
                            "reviews); buyers: an orders-only purchase history whose customers follow a planted "
                            "BG/NBD + Gamma-Gamma process (portrait/generate/history.py), users = customers.")
    users: int = Field(4000, ge=10)
    days: int = Field(60, ge=7, le=3650)
    seed: int = 7


class MonitoringConfig(_Section):
    """Drift and volume checks run after each daily portrait."""

    enabled: bool = True
    psi_threshold: float = Field(0.25, gt=0.0)
    volume_max_relative_change: float = Field(0.5, gt=0.0)
    volume_trailing_days: int = Field(7, ge=1, le=90)
    fail_on_breach: bool = False


class PrivacyConfig(_Section):
    """Aggregate privacy of BI exports and erasure (``portrait forget``); keys come only from the environment."""

    min_group_size: int = Field(
        10, ge=1, description="Segment counts and audiences smaller than this are suppressed in BI tables."
    )
    noise_epsilon: float | None = Field(
        None, gt=0.0, description="Laplace noise on exported segment counts (privacy.laplace_noised); null = none."
    )
    vacuum_retention_hours: int = Field(
        168, ge=0, description="VACUUM after erasure keeps files younger than this (Delta's check is 168 h)."
    )


class PublishConfig(_Section):
    """Quality gate before a date's user_portrait partition is written, and the tables' owner."""

    enforce: bool = Field(True, description="A failed check stops the write (else it is only recorded).")
    max_row_count_change: float = Field(
        0.3, gt=0.0, description="|rows / rows of the previous portrait date - 1| above this fails."
    )
    max_null_rate: float = Field(0.5, ge=0.0, le=1.0, description="Share of nulls any column may have.")
    null_rate_overrides: dict[str, float] = Field(
        default_factory=dict, description="Per-column limits replacing max_null_rate, by portrait column name."
    )
    min_tag_coverage: float = Field(0.9, ge=0.0, le=1.0, description="Share of rows with at least one tag.")
    segment_columns: list[str] = Field(
        default_factory=lambda: ["rfm_segment", "lifecycle_stage"],
        description="Portrait columns whose value shares are compared with the previous portrait date.",
    )
    max_segment_share_change: float = Field(
        0.1, gt=0.0, le=1.0, description="Largest change of one segment's share of users (0.1 = 10 points)."
    )
    score_columns: list[str] = Field(
        default_factory=lambda: ["purchase_propensity"], description="Scores whose distribution is compared."
    )
    max_score_psi: float = Field(0.25, gt=0.0, description="PSI of a score against the previous portrait date.")
    owner: str = Field("portrait-team", min_length=1, description="Table property portrait.owner.")

    @field_validator("owner")
    @classmethod
    def _owner(cls, value: str) -> str:
        # The owner is written into ALTER TABLE ... SET TBLPROPERTIES as a string literal.
        if not re.fullmatch(r"[\w.@ -]+", value):
            raise ValueError(f"owner {value!r} may contain letters, digits, space and . @ _ - only")
        return value

    @field_validator("null_rate_overrides")
    @classmethod
    def _rates(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {column: rate for column, rate in value.items() if not 0.0 <= rate <= 1.0}
        if bad:
            raise ValueError(f"null rates must lie in [0, 1], got {bad}")
        return value


class BiConfig(_Section):
    """BI side: the SQL endpoint (`portrait serve-bi`), segment noise and the daily report."""

    host: str = Field("127.0.0.1", description="Thrift Server bind address; loopback unless BI runs elsewhere.")
    port: int = Field(10000, ge=1, le=65535, description="HiveServer2 (JDBC) port of the Thrift Server.")
    database: str = Field("portrait", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                          description="Metastore database the lakehouse tables are registered in.")
    noise_seed: int = Field(7, description="Seed of the Laplace noise on segment counts (with the date).")
    reports_path: str | None = Field(None, description="Daily HTML reports folder; null = <lakehouse.path>/reports.")


class SparkConfig(_Section):
    """Session settings for local mode; on a cluster the existing session is reused."""

    master: str = "local[2]"
    app_name: str = "portrait"
    shuffle_partitions: int = Field(4, ge=1)
    driver_memory: str = "4g"
    rollup_events_per_pass: int = Field(
        10_000_000, ge=1,
        description="A rollup of many days reads at most this many clickstream events per pass (whole days): "
                    "the events of a pass are cached and shuffled at once, so memory follows this, not the "
                    "history's length. Scale it with driver memory and shuffle_partitions.")
    options: dict[str, str] = Field(default_factory=dict)

    @field_validator("driver_memory")
    @classmethod
    def _memory(cls, value: str) -> str:
        if not re.fullmatch(r"\d+[kmgt]", value.lower()):
            raise ValueError(f"driver_memory {value!r} must look like 4g or 2048m")
        return value
