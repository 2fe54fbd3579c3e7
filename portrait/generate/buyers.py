"""Buyers whose purchases follow a known BG/NBD process and whose order values follow a Gamma-Gamma model.

The planted process of portrait/model/value.py, so a test can show the fit recovers what was planted and that
its predictions match what the same buyers then do. Every buyer makes a first purchase at day 0 (not counted:
the models describe repeat purchases); while alive they buy at Poisson rate ``lambda ~ Gamma(r, alpha)`` per
day, and after each repeat purchase drop out with probability ``p ~ Beta(a, b)``. A buyer's order values are
Gamma(p_value, nu) with ``nu ~ Gamma(q, gamma)`` (shape, rate).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PlantedBuyers:
    """Per buyer: the calibration summary (``x``, ``t_x``, ``T``, mean repeat order value ``m``, NaN without a
    repeat purchase) and the repeat purchases made in the ``holdout`` days after ``T``."""

    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    m: np.ndarray
    holdout_purchases: np.ndarray
    holdout: float


def repeat_purchase_times(rng: np.random.Generator, rate: float, dropout: float) -> np.ndarray:
    """Days after the first purchase of one buyer's repeat purchases, until they drop out (after the k-th,
    k ~ Geometric(dropout)): the BG/NBD process of a buyer with purchase ``rate`` per day."""
    purchases = min(int(rng.geometric(dropout)), 100_000)
    return np.cumsum(rng.exponential(1.0 / rate, purchases))


def simulate_buyers(n: int, r: float, alpha: float, a: float, b: float, p: float, q: float, gamma: float,
                    ages: tuple[float, float], holdout: float, seed: int) -> PlantedBuyers:
    """``n`` buyers observed for ``T ~ Uniform(ages)`` days after their first purchase, then ``holdout`` days."""
    rng = np.random.default_rng(seed)
    rates = rng.gamma(r, 1.0 / alpha, n)
    dropouts = rng.beta(a, b, n)
    spend_rates = rng.gamma(q, 1.0 / gamma, n)
    ages_drawn = rng.uniform(ages[0], ages[1], n)
    x, t_x, m, later = np.zeros(n), np.zeros(n), np.full(n, np.nan), np.zeros(n)
    for i in range(n):
        times = repeat_purchase_times(rng, rates[i], dropouts[i])
        seen = times[times <= ages_drawn[i]]
        x[i] = len(seen)
        t_x[i] = seen[-1] if len(seen) else 0.0
        later[i] = np.count_nonzero((times > ages_drawn[i]) & (times <= ages_drawn[i] + holdout))
        if len(seen):
            m[i] = rng.gamma(p, 1.0 / spend_rates[i], len(seen)).mean()
    return PlantedBuyers(x, t_x, ages_drawn, m, later, holdout)
