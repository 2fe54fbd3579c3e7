"""Customer value: the BG/NBD purchase model and the Gamma-Gamma spend model, fitted by maximum likelihood.

Pure numerics over a per-customer summary (no Spark): ``x`` repeat purchases (distinct purchase days after the
first), ``t_x`` days from the first to the last purchase, ``T`` days from the first purchase to the end of the
calibration period, and for spend ``m`` the mean value of the repeat purchases. The summary may be grouped
(identical rows once, with a ``weight``): a shop's summary has far fewer distinct rows than customers, which is
what lets the fit run on the driver.

- **BG/NBD** (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): while alive, a customer buys
  as a Poisson process with rate ``lambda ~ Gamma(r, alpha)``; after each purchase they drop out with
  probability ``p ~ Beta(a, b)``. Gives the probability a customer is still alive and the expected purchases in
  the next ``t`` days.
- **Gamma-Gamma** (Fader, Hardie & Lee 2005, "RFM and CLV"; Colombo & Jiang 1999): a customer's order values
  are Gamma(p, nu) with ``nu ~ Gamma(q, gamma)``, independent of the purchase process. Gives the expected
  value of a customer's future orders, shrunk from their own mean towards the population's.
- **CLV** over a horizon: expected purchases per 30-day period times the expected order value and the margin,
  discounted per period.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import gammaln, hyp2f1

# Days per period of the CLV sum; the discount rate is per period.
PERIOD_DAYS = 30


class ValueFitError(ValueError):
    """A value model cannot be fitted: too few customers, or the optimiser did not converge."""


@dataclass(frozen=True)
class BgNbd:
    """Fitted BG/NBD parameters (time in days) and the fit's log-likelihood over the summary it saw."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = float("nan")
    customers: float = 0.0

    @property
    def params(self) -> np.ndarray:
        return np.array([self.r, self.alpha, self.a, self.b])


@dataclass(frozen=True)
class GammaGamma:
    """Fitted Gamma-Gamma parameters (order value in the shop's currency) and the fit's log-likelihood."""

    p: float
    q: float
    v: float
    log_likelihood: float = float("nan")
    customers: float = 0.0

    @property
    def population_mean(self) -> float:
        """Expected order value of a customer about whom nothing is known (needs q > 1)."""
        return self.p * self.v / (self.q - 1.0) if self.q > 1.0 else float("nan")


def _arrays(*columns) -> list[np.ndarray]:
    return [np.asarray(c, dtype=float) for c in columns]


def bgnbd_log_likelihood(params, x, t_x, T) -> np.ndarray:
    """Each summary row's BG/NBD log-likelihood under ``params = (r, alpha, a, b)``."""
    r, alpha, a, b = params
    x, t_x, T = _arrays(x, t_x, T)
    ln_a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    ln_a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    ln_a3 = -(r + x) * np.log(alpha + T)
    repeat = x > 0
    # Only customers with a repeat purchase can have dropped out (after their last one).
    ln_a4 = np.where(repeat, np.log(a) - np.log(np.where(repeat, b + x - 1.0, 1.0)) - (r + x) * np.log(alpha + t_x),
                     -np.inf)
    return ln_a1 + ln_a2 + np.logaddexp(ln_a3, ln_a4)


def gamma_gamma_log_likelihood(params, x, m) -> np.ndarray:
    """Each customer's Gamma-Gamma log-likelihood of their mean repeat order value ``m`` over ``x`` orders."""
    p, q, v = params
    x, m = _arrays(x, m)
    px = p * x
    return (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(v) + (px - 1.0) * np.log(m)
            + px * np.log(x) - (px + q) * np.log(x * m + v))


def _fit(negative_ll, start: np.ndarray, what: str) -> tuple[np.ndarray, float]:
    """Minimise ``negative_ll`` over log-parameters (every parameter is positive); returns (params, ll)."""
    def objective(theta):
        return negative_ll(np.exp(theta))

    result = minimize(objective, np.log(start), method="L-BFGS-B",
                      options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9})
    if np.isfinite(result.fun) and not (result.success or "PRECISION" in str(result.message).upper()):
        # A line search that stalls near the optimum (ABNORMAL_TERMINATION_IN_LNSRCH: the gradient is no longer
        # resolved) is finished without gradients from where it stopped.
        result = minimize(objective, result.x, method="Nelder-Mead",
                          options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 20_000})
    if not np.isfinite(result.fun) or not (result.success or "PRECISION" in str(result.message).upper()):
        raise ValueFitError(f"{what}: the maximum-likelihood fit did not converge ({result.message})")
    return np.exp(result.x), -float(result.fun)


def fit_bgnbd(x, t_x, T, weight=None, min_customers: int = 100) -> BgNbd:
    """Maximum-likelihood BG/NBD parameters of a (grouped) summary; ``weight`` counts identical rows."""
    x, t_x, T = _arrays(x, t_x, T)
    weight = np.ones_like(x) if weight is None else np.asarray(weight, dtype=float)
    customers = float(weight.sum())
    if customers < min_customers or not np.any(x > 0):
        raise ValueFitError(f"BG/NBD needs at least {min_customers} customers, some with a repeat purchase; "
                            f"the summary has {customers:.0f}, {float(weight[x > 0].sum()):.0f} with one")
    scale = float(np.average(T, weights=weight))  # a starting alpha on the scale of the data's time unit

    def negative_ll(params):
        return -float(np.dot(weight, bgnbd_log_likelihood(params, x, t_x, T))) / customers

    params, ll = _fit(negative_ll, np.array([1.0, scale, 1.0, 1.0]), "BG/NBD")
    return BgNbd(*params, log_likelihood=ll * customers, customers=customers)


def fit_gamma_gamma(x, m, weight=None, min_customers: int = 50) -> GammaGamma:
    """Maximum-likelihood Gamma-Gamma parameters over customers with a repeat purchase (``x > 0``, ``m > 0``)."""
    x, m = _arrays(x, m)
    weight = np.ones_like(x) if weight is None else np.asarray(weight, dtype=float)
    keep = (x > 0) & (m > 0)
    x, m, weight = x[keep], m[keep], weight[keep]
    customers = float(weight.sum())
    if customers < min_customers:
        raise ValueFitError(f"Gamma-Gamma needs at least {min_customers} customers with a repeat purchase of "
                            f"known value; the summary has {customers:.0f}")

    def negative_ll(params):
        return -float(np.dot(weight, gamma_gamma_log_likelihood(params, x, m))) / customers

    params, ll = _fit(negative_ll, np.array([1.0, 2.0, float(np.average(m, weights=weight))]), "Gamma-Gamma")
    return GammaGamma(*params, log_likelihood=ll * customers, customers=customers)


def probability_alive(model: BgNbd, x, t_x, T) -> np.ndarray:
    """P(the customer has not dropped out by ``T``); 1 for a customer without a repeat purchase."""
    x, t_x, T = _arrays(x, t_x, T)
    repeat = x > 0
    ln_ratio = (model.r + x) * (np.log(model.alpha + T) - np.log(model.alpha + t_x))
    # Only a customer with a repeat purchase can have dropped out; the others' terms are masked, not computed.
    odds = np.where(repeat, model.a / np.where(repeat, model.b + x - 1.0, 1.0)
                    * np.exp(np.where(repeat, ln_ratio, 0.0)), 0.0)
    return 1.0 / (1.0 + odds)


def expected_purchases(model: BgNbd, t, x, t_x, T) -> np.ndarray:
    """Expected purchases in the ``t`` days after ``T``. Finite for every a > 0 (a <= 1 only makes the purchases
    until drop-out unbounded in expectation, not those of a finite window); NaN where the hypergeometric
    function has a pole (a + b + x - 1 is 0 or a negative integer)."""
    x, t_x, T = _arrays(x, t_x, T)
    r, alpha, a, b = model.params
    t = float(t)
    z = t / (alpha + T + t)
    tail = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t))) * hyp2f1(r + x, b + x, a + b + x - 1.0, z)
    return (a + b + x - 1.0) / (a - 1.0) * (1.0 - tail) * probability_alive(model, x, t_x, T)


def expected_order_value(model: GammaGamma, x, m) -> np.ndarray:
    """Expected value of a customer's future orders: their mean ``m`` over ``x`` repeat orders shrunk towards
    the population's; the population's mean for a customer without one (``x = 0`` or ``m`` unknown)."""
    x, m = _arrays(x, m)
    known = (x > 0) & np.isfinite(m) & (m > 0)
    xs, ms = np.where(known, x, 1.0), np.where(known, m, 1.0)
    own = model.p * (model.v + xs * ms) / (model.p * xs + model.q - 1.0)
    return np.where(known, own, model.population_mean)


def customer_lifetime_value(purchases: BgNbd, spend: GammaGamma, x, t_x, T, m, periods: int, margin: float,
                            discount_rate: float) -> np.ndarray:
    """Expected margin over ``periods`` periods of :data:`PERIOD_DAYS` days, each discounted by
    ``discount_rate`` per period: sum over k of (E[purchases by k] - E[purchases by k-1]) * value * margin /
    (1 + discount_rate)^k."""
    value = expected_order_value(spend, x, m) * margin
    total, before = np.zeros_like(np.asarray(x, dtype=float)), 0.0
    for k in range(1, periods + 1):
        by_k = expected_purchases(purchases, k * PERIOD_DAYS, x, t_x, T)
        total = total + (by_k - before) * value / (1.0 + discount_rate) ** k
        before = by_k
    return total
