"""Small vectorised helpers: sigmoid, ranks within groups, seeded draws, id hashing and local dates."""

from __future__ import annotations

import datetime as _dt

import numpy as np
import pandas as pd


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _rank_in_groups(counts: np.ndarray) -> np.ndarray:
    """0, 1, ..., n-1 for each group of the given sizes, concatenated."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(total, dtype=np.int64) - starts


def _choice(rng: np.random.Generator, probs: np.ndarray, size: int) -> np.ndarray:
    """Category indices drawn with the given probabilities (inverse CDF; stable across numpy versions)."""
    cdf = np.cumsum(probs / probs.sum())
    cdf[-1] = 1.0
    return np.searchsorted(cdf, rng.random(size), side="right").astype(np.int32)


def _mix64(values: np.ndarray, salt: int) -> np.ndarray:
    """SplitMix64 finaliser of ``values ^ salt``: a bijection on uint64, so distinct inputs stay distinct."""
    z = values.astype(np.uint64) ^ np.uint64(salt & 0xFFFFFFFFFFFFFFFF)
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _local_dates(instants_us: np.ndarray, time_zone: str) -> np.ndarray:
    """Local calendar date (days since 1970-01-01) of UTC instants in ``time_zone``, DST-aware."""
    utc = pd.DatetimeIndex(instants_us.astype("datetime64[us]")).tz_localize("UTC")
    local = utc.tz_convert(time_zone).tz_localize(None)
    return local.values.astype("datetime64[D]").astype(np.int64).astype(np.int32)


def _local_midnights_us(first_day: _dt.date, count: int, time_zone: str) -> np.ndarray:
    """UTC instants (µs) of local midnight for ``count`` consecutive days; a DST gap moves it forward."""
    naive = pd.date_range(pd.Timestamp(first_day), periods=count, freq="D")
    local = naive.tz_localize(time_zone, ambiguous=np.zeros(count, dtype=bool), nonexistent="shift_forward")
    return local.tz_convert("UTC").as_unit("us").asi8.astype(np.int64)
