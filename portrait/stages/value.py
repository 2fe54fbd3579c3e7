"""The value step of a scoring run: the ``customer_value`` partition of a date, every customer with a paid
order in ``value.retention_days``, with BG/NBD and Gamma-Gamma predictions (portrait/model/value.py).

The models are fitted afresh each date on the history to that date (a fit takes a fraction of a second on the
grouped summary); parameters, likelihoods and the held-out check go to MLflow. Too few customers, no repeat
purchase to learn from, or a fit whose held-out error does not beat each customer's past rate: the rows are
written with null predictions and a warning says why.
"""

from __future__ import annotations

import datetime as dt
import logging

from pyspark.sql import DataFrame

from portrait.lakehouse import Lakehouse
from portrait.model import tracking, value, value_holdout
from portrait.model.value_frames import fit_input, holdout_input, value_summary, with_predictions
from portrait.model.value_holdout import HoldoutReport
from portrait.schemas import CUSTOMER_VALUE, ORDERS
from portrait.stages.base import timed
from portrait.stages.rollups import stitched

log = logging.getLogger(__name__)


def _held_out(orders: DataFrame, day: dt.date, settings) -> HoldoutReport | None:
    """The held-out check of a fit on the history to ``day - value.holdout_days``; None when that history is
    too short to fit (a young shop: the predictions are published unchecked, and the MLflow run says so)."""
    grouped = holdout_input(orders, day, settings)
    try:
        model = value.fit_bgnbd(grouped["frequency"], grouped["recency_days"], grouped["age_days"],
                                grouped["weight"], min_customers=settings.min_customers)
    except value.ValueFitError as exc:
        log.info("customer value %s: no held-out check (%s)", day, exc)
        return None
    return value_holdout.evaluate(model, grouped, settings.holdout_days)


def _fit(lake: Lakehouse, day: dt.date, summary: DataFrame,
         orders: DataFrame) -> tuple[value.BgNbd | None, value.GammaGamma | None, str | None]:
    """The fitted models and their MLflow run, or (None, None, None) when the history cannot be fitted or the
    fit does not pass the held-out check (portrait/model/value_holdout.py)."""
    settings = lake.cfg.value
    grouped, spend_rows = fit_input(summary, settings)
    try:
        purchases = value.fit_bgnbd(grouped["frequency"], grouped["recency_days"], grouped["age_days"],
                                    grouped["weight"], min_customers=settings.min_customers)
        spend = value.fit_gamma_gamma(spend_rows["frequency"], spend_rows["mean_repeat_value"],
                                      min_customers=max(10, settings.min_customers // 2))
    except value.ValueFitError as exc:
        log.warning("customer value %s: no fit, the value columns stay null: %s", day, exc)
        return None, None, None
    held_out = _held_out(orders, day, settings)
    params = {"r": purchases.r, "alpha": purchases.alpha, "a": purchases.a, "b": purchases.b,
              "p": spend.p, "q": spend.q, "v": spend.v}
    metrics = {"bgnbd_log_likelihood": purchases.log_likelihood, "bgnbd_customers": purchases.customers,
               "gamma_gamma_log_likelihood": spend.log_likelihood, "gamma_gamma_customers": spend.customers,
               "population_order_value": spend.population_mean, **(held_out.metrics if held_out else {})}
    refusal = None if held_out is None else held_out.refusal()
    run_id = tracking.log_value_fit(lake.cfg, day, params, metrics, held_out, refusal)
    if refusal is not None:
        log.warning("customer value %s: the fit is not published, the value columns stay null: %s (MLflow run %s)",
                    day, refusal, run_id)
        return None, None, None
    log.info("customer value %s: BG/NBD r=%.4g alpha=%.4g a=%.4g b=%.4g over %.0f customers; Gamma-Gamma "
             "p=%.4g q=%.4g v=%.4g (MLflow run %s)", day, purchases.r, purchases.alpha, purchases.a, purchases.b,
             purchases.customers, spend.p, spend.q, spend.v, run_id)
    return purchases, spend, run_id


def compute(lake: Lakehouse, day: dt.date) -> DataFrame | None:
    """Write the ``customer_value`` partition of ``day`` from the orders of the retention window and return
    its rows; None when ``value.enabled`` is off."""
    settings = lake.cfg.value
    if not settings.enabled:
        return None
    with timed(f"customer value {day}"):
        orders = stitched(lake, ORDERS)
        summary = orders.transform(value_summary(day, settings.retention_days)).cache()
        try:
            purchases, spend, run_id = _fit(lake, day, summary, orders)
            lake.replace_day(CUSTOMER_VALUE, summary.transform(with_predictions(purchases, spend, settings, run_id)),
                             day)
        finally:
            summary.unpersist()
    return lake.read_day(CUSTOMER_VALUE, day)


def ensure(lake: Lakehouse, days: list[dt.date]) -> DataFrame | None:
    """The ``customer_value`` rows of ``days`` (training snapshots), computing the partitions that do not
    exist yet; None when ``value.enabled`` is off. Each date's models see only the orders to that date."""
    if not lake.cfg.value.enabled:
        return None
    present = lake.dates_present(CUSTOMER_VALUE, days)
    for day in days:
        if day not in present:
            compute(lake, day)
    return lake.read_days(CUSTOMER_VALUE, days)
