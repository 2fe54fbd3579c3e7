"""BG/NBD and Gamma-Gamma value models (portrait/model/value.py) on buyers of a planted process.

The buyers (portrait/generate/buyers.py) follow exactly the processes the models describe, so the fit must
recover the planted parameters, beat them in likelihood on its own data (it is the maximum), and predict what
the same buyers do in the 90 days after calibration. The reference numbers are those of the established
implementation, ``lifetimes`` 0.11.3 (BetaGeoFitter, GammaGammaFitter, conditional expected purchases), on the
same summary: ``python bench/value_reference.py`` computes them again.
"""

from __future__ import annotations

import collections

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import OptimizeResult

from portrait.generate.buyers import simulate_buyers
from portrait.model import value, value_holdout
from portrait.model.value import BgNbd, GammaGamma, ValueFitError

PLANTED = {"r": 0.25, "alpha": 4.0, "a": 1.5, "b": 4.0, "p": 6.0, "q": 4.0, "gamma": 15.0}
# lifetimes 0.11.3 on the summary of BUYERS (bench/value_reference.py).
REFERENCE_BGNBD = {"r": 0.2518158317505579, "alpha": 3.823777635065394, "a": 1.4667715543874602,
                   "b": 3.6557188811951646}
REFERENCE_GAMMA_GAMMA = {"p": 6.230789046851317, "q": 3.9608265348029095, "v": 14.251607091826742}
REFERENCE_HOLDOUT_PURCHASES = 1791.541090023958


@pytest.fixture(scope="module")
def buyers():
    return simulate_buyers(5000, **PLANTED, ages=(60, 400), holdout=90, seed=7)


@pytest.fixture(scope="module")
def fitted(buyers):
    return value.fit_bgnbd(buyers.x, buyers.t_x, buyers.T), value.fit_gamma_gamma(buyers.x, buyers.m)


def test_the_fit_matches_the_reference_implementation_to_three_significant_digits(buyers, fitted):
    purchases, spend = fitted
    assert {k: getattr(purchases, k) for k in REFERENCE_BGNBD} == pytest.approx(REFERENCE_BGNBD, rel=5e-4)
    assert {k: getattr(spend, k) for k in REFERENCE_GAMMA_GAMMA} == pytest.approx(REFERENCE_GAMMA_GAMMA, rel=5e-4)
    predicted = value.expected_purchases(purchases, 90, buyers.x, buyers.t_x, buyers.T).sum()
    assert predicted == pytest.approx(REFERENCE_HOLDOUT_PURCHASES, rel=5e-4)


def test_the_fit_recovers_the_planted_parameters_and_is_the_maximum(buyers, fitted):
    purchases, spend = fitted
    assert purchases.params == pytest.approx([PLANTED[k] for k in ("r", "alpha", "a", "b")], rel=0.1)
    assert (spend.p, spend.q, spend.v) == pytest.approx((PLANTED["p"], PLANTED["q"], PLANTED["gamma"]), rel=0.1)
    planted_ll = value.bgnbd_log_likelihood([PLANTED[k] for k in ("r", "alpha", "a", "b")],
                                            buyers.x, buyers.t_x, buyers.T).sum()
    assert purchases.log_likelihood > planted_ll
    assert purchases.customers == 5000 and spend.customers == np.count_nonzero(buyers.x > 0)


def test_predictions_match_what_the_buyers_do_next_by_past_frequency(buyers, fitted):
    purchases, _ = fitted
    predicted = value.expected_purchases(purchases, buyers.holdout, buyers.x, buyers.t_x, buyers.T)
    assert predicted.sum() == pytest.approx(buyers.holdout_purchases.sum(), rel=0.05)
    # The calibration/holdout table of the classic papers: mean purchases by past frequency.
    for low, high in ((0, 0), (1, 2), (3, 6), (7, 10_000)):
        group = (buyers.x >= low) & (buyers.x <= high)
        assert predicted[group].mean() == pytest.approx(buyers.holdout_purchases[group].mean(), rel=0.15, abs=0.05)


def test_a_grouped_summary_fits_like_the_customers_it_counts(buyers, fitted):
    counts = collections.Counter(zip(buyers.x, buyers.t_x, buyers.T, strict=True))
    x, t_x, T = (np.array(column) for column in zip(*counts, strict=True))
    grouped = value.fit_bgnbd(x, t_x, T, weight=np.array(list(counts.values())))
    assert grouped.params == pytest.approx(fitted[0].params, rel=1e-4)
    assert grouped.customers == 5000


def test_probability_alive_is_one_without_a_repeat_purchase_and_falls_with_silence():
    model = BgNbd(0.25, 4.0, 1.5, 4.0)
    alive = value.probability_alive(model, [0, 3, 3, 3], [0, 100, 100, 100], [50, 100, 200, 400])
    assert alive[0] == 1.0
    assert 1.0 > alive[1] > alive[2] > alive[3] > 0.0


def test_expected_purchases_hold_when_a_is_at_most_one():
    """a <= 1 makes the purchases until drop-out unbounded in expectation, not those of a 90-day window."""
    planted = {"r": 0.5, "alpha": 30.0, "a": 0.8, "b": 3.0, "p": 6.0, "q": 4.0, "gamma": 40.0}
    buyers = simulate_buyers(8000, **planted, ages=(60, 700), holdout=90, seed=3)
    model = BgNbd(planted["r"], planted["alpha"], planted["a"], planted["b"])
    predicted = value.expected_purchases(model, 90, buyers.x, buyers.t_x, buyers.T)
    assert predicted.sum() == pytest.approx(buyers.holdout_purchases.sum(), rel=0.05)
    for low, high in ((0, 0), (1, 2), (3, 10_000)):
        group = (buyers.x >= low) & (buyers.x <= high)
        assert predicted[group].mean() == pytest.approx(buyers.holdout_purchases[group].mean(), rel=0.15)


def test_order_value_shrinks_a_customers_mean_towards_the_population():
    model = GammaGamma(6.0, 4.0, 15.0)
    assert model.population_mean == pytest.approx(30.0)
    few, many, unknown = value.expected_order_value(model, [1, 1000, 0], [60.0, 60.0, np.nan])
    assert 30.0 < few < many < 60.0 and many == pytest.approx(60.0, rel=0.01)
    assert unknown == pytest.approx(30.0)


def test_clv_of_one_undiscounted_period_is_expected_purchases_times_value_times_margin():
    purchases, spend = BgNbd(0.25, 4.0, 1.5, 4.0), GammaGamma(6.0, 4.0, 15.0)
    x, t_x, T, m = [2.0], [40.0], [90.0], [45.0]
    clv = value.customer_lifetime_value(purchases, spend, x, t_x, T, m, periods=1, margin=0.2, discount_rate=0.0)
    expected = (value.expected_purchases(purchases, value.PERIOD_DAYS, x, t_x, T)
                * value.expected_order_value(spend, x, m) * 0.2)
    assert clv == pytest.approx(expected)
    discounted = value.customer_lifetime_value(purchases, spend, x, t_x, T, m, periods=12, margin=0.2,
                                               discount_rate=0.01)
    undiscounted = value.customer_lifetime_value(purchases, spend, x, t_x, T, m, periods=12, margin=0.2,
                                                 discount_rate=0.0)
    assert clv[0] < discounted[0] < undiscounted[0]


def test_too_few_customers_or_no_repeat_purchase_cannot_be_fitted():
    with pytest.raises(ValueFitError, match="BG/NBD needs at least 100 customers, some with a repeat purchase; "
                                            "the summary has 40, 40 with one"):
        value.fit_bgnbd(np.ones(40), np.ones(40) * 5, np.ones(40) * 10)
    with pytest.raises(ValueFitError, match="the summary has 500, 0 with one"):
        value.fit_bgnbd(np.zeros(500), np.zeros(500), np.full(500, 30.0))
    with pytest.raises(ValueFitError, match="Gamma-Gamma needs at least 50 customers .* the summary has 3"):
        value.fit_gamma_gamma([1, 2, 3, 0], [10.0, 20.0, 30.0, np.nan])


def _held_out_frame(buyers) -> pd.DataFrame:
    rows = pd.DataFrame({"frequency": buyers.x, "recency_days": buyers.t_x, "age_days": buyers.T,
                         "holdout_purchases": buyers.holdout_purchases})
    return rows.groupby(list(rows.columns), as_index=False).size().rename(columns={"size": "weight"})


def test_the_held_out_check_passes_the_fit_and_fails_a_model_that_learnt_nothing(buyers, fitted):
    purchases, _ = fitted
    grouped = _held_out_frame(buyers)
    report = value_holdout.evaluate(purchases, grouped, 90)
    assert report.learnt and report.refusal() is None
    assert report.metrics["holdout_customers"] == len(buyers.x)
    assert report.metrics["holdout_actual_purchases"] == buyers.holdout_purchases.sum()
    assert report.metrics["holdout_predicted_purchases"] == pytest.approx(buyers.holdout_purchases.sum(), rel=0.05)
    table = report.table.set_index("frequency")
    assert list(table.index) == list(range(8)) and table["customers"].sum() == len(buyers.x)
    assert table.loc[0, "mean_naive"] == 0.0 and table.loc[0, "mean_actual"] > 0.0  # one-off buyers buy again
    # Everybody alive and buying at the population's mean rate: a model that ignores who did what.
    flat = BgNbd(1e6, 1e6 / (purchases.r / purchases.alpha), 1e-6, 1e6)
    refused = value_holdout.evaluate(flat, grouped, 90)
    assert not refused.learnt
    assert "does not beat the past-rate yardstick" in refused.refusal()


def test_a_stalled_line_search_is_finished_without_gradients(buyers, fitted, monkeypatch):
    """L-BFGS-B can stop with ABNORMAL_TERMINATION_IN_LNSRCH near the optimum (gradients lost in rounding);
    the fit then finishes from where it stopped instead of leaving a date without value predictions."""
    real = value.minimize
    calls = []

    def stalling(fun, x0, method, options):
        calls.append(method)
        if method == "L-BFGS-B":
            stopped = real(fun, x0, method=method, options={**options, "maxiter": 3})
            return OptimizeResult(x=stopped.x, fun=stopped.fun, success=False,
                                  message="ABNORMAL_TERMINATION_IN_LNSRCH")
        return real(fun, x0, method=method, options=options)

    monkeypatch.setattr(value, "minimize", stalling)
    _, spend = fitted
    again = value.fit_gamma_gamma(buyers.x, buyers.m)
    assert calls == ["L-BFGS-B", "Nelder-Mead"]
    assert (again.p, again.q, again.v) == pytest.approx((spend.p, spend.q, spend.v), rel=1e-4)
