"""Feature engineering settings (families and definitions in docs/FEATURES.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from portrait.config.base import _Section


class LifecycleRules(_Section):
    """Lifecycle stage rules, first match wins: new, then active, then sleeping, else churned."""

    new_max_tenure_days: int = Field(13, ge=0, description="new: first activity at most this many days ago.")
    active_max_idle_days: int = Field(7, ge=0, description="active: last activity at most this many days ago.")
    sleeping_max_idle_days: int = Field(30, ge=0, description="sleeping: last activity at most this many days ago.")

    @model_validator(mode="after")
    def _ordered(self) -> LifecycleRules:
        if self.sleeping_max_idle_days < self.active_max_idle_days:
            raise ValueError("sleeping_max_idle_days must be at least active_max_idle_days")
        return self


class FeaturesConfig(_Section):
    """Feature engineering settings (families and definitions in docs/FEATURES.md)."""

    text_window_days: int = Field(30, ge=1, le=90)
    max_tokens_per_user: int = Field(200, ge=10, le=10_000)
    min_token_length: int = Field(1, ge=1, le=10)
    session_gap_minutes: int = Field(30, ge=1, le=24 * 60, description="Inactivity that ends a session.")
    affinity_half_life_days: float = Field(14.0, gt=0, description="Interest weight halves every this many days.")
    affinity_weights: dict[Literal["view", "search", "cart", "remove_cart", "fav", "buy"], float] = Field(
        default_factory=lambda: {"view": 1.0, "cart": 3.0, "fav": 2.0, "buy": 5.0},
        description="Interest weight of one event per type; types not listed weigh nothing.",
    )
    top_k: int = Field(5, ge=1, le=50, description="Categories and brands kept in top_categories/top_brands.")
    price_tier_edges: tuple[float, float] = Field(
        (1 / 3, 2 / 3), description="price_percentile_90d below the first is low, from the second high."
    )
    lifecycle: LifecycleRules = LifecycleRules()
    bot_max_events_per_day: int = Field(
        5000, ge=100, description="A person-day above this is a bot day: counted, but no sessions or text."
    )
    bot_events_per_active_day: float = Field(1000.0, gt=0, description="bot_suspect above this 30-day rate.")
    bot_max_gap_cv: float = Field(0.1, ge=0, description="bot_suspect when in-session gaps vary less than this.")
    bot_min_gaps: int = Field(50, ge=2, description="Gaps needed before their regularity is judged.")
    high_refund_rate: float = Field(
        0.5, gt=0.0, le=1.0,
        description="user_portrait.high_refund_rate (risk flag) when refund_rate_90d is at least this.")

    @field_validator("price_tier_edges")
    @classmethod
    def _edges_ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 < value[0] < value[1] < 1:
            raise ValueError("price_tier_edges must be two increasing numbers strictly between 0 and 1")
        return value
