"""An orders-only shop whose customers follow a known BG/NBD + Gamma-Gamma process (``generate.kind: buyers``).

What a shop that only exports its orders looks like, with the truth known: customers are acquired evenly
over the history (their first purchase day), then buy as :mod:`portrait.generate.buyers` plants (Poisson
purchases while alive, a Beta-distributed drop-out chance after each repeat purchase, Gamma-Gamma order
values). There is no clickstream (the table is written empty), so everything portrait learns comes from the
orders: the shop the value models are for, and the case where a 90-day behaviour window sees few customers.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from portrait import schemas
from portrait.generate.arrow import _make_table, _numbered_ids, arrow_schema
from portrait.generate.buyers import repeat_purchase_times
from portrait.generate.numeric import _local_midnights_us


@dataclass(frozen=True)
class BuyerProcess:
    """The planted parameters: purchase rates ~ Gamma(r, alpha) per day, drop-out ~ Beta(a, b), order values
    ~ Gamma(p, nu) with nu ~ Gamma(q, gamma) (shape, rate)."""

    r: float = 0.5
    alpha: float = 30.0
    a: float = 0.8
    b: float = 3.0
    p: float = 6.0
    q: float = 4.0
    gamma: float = 40.0


def _orders(customers: int, days: int, first_day: int, process: BuyerProcess, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x0B6]))
    rates = rng.gamma(process.r, 1.0 / process.alpha, customers)
    dropouts = rng.beta(process.a, process.b, customers)
    spend_rates = rng.gamma(process.q, 1.0 / process.gamma, customers)
    acquired = rng.uniform(0.0, days, customers)
    customer, times = [], []
    for i in range(customers):
        repeat = acquired[i] + repeat_purchase_times(rng, rates[i], dropouts[i])
        bought = np.r_[acquired[i], repeat[repeat < days]]
        customer.append(np.full(len(bought), i))
        times.append(bought)
    who, when = np.concatenate(customer), np.concatenate(times)
    amount = np.round(rng.gamma(process.p, 1.0 / spend_rates[who]), 2)
    order = np.lexsort((who, when))
    return {"customer": who[order], "day": first_day + np.floor(when[order]).astype(np.int64),
            "seconds": np.round((when[order] % 1.0) * 86_400).astype(np.int64), "amount": np.maximum(amount[order], 0.01)}


def purchase_history(customers: int, days: int, end_date: _dt.date, seed: int, time_zone: str = "Asia/Shanghai",
                     process: BuyerProcess = BuyerProcess()) -> dict[str, pa.Table]:
    """``clickstream`` (empty) and ``orders`` (one paid single-line order per purchase) of ``customers`` over
    the ``days`` ending on ``end_date`` (dates local to ``time_zone``); deterministic for the arguments."""
    if customers < 1 or days < 1 or seed < 0:
        raise ValueError("customers and days must be at least 1 and seed non-negative")
    first_day = end_date - _dt.timedelta(days=days - 1)
    first_dt = (first_day - _dt.date(1970, 1, 1)).days
    rows = _orders(customers, days, first_dt, process, seed)
    n = len(rows["day"])
    midnights = _local_midnights_us(first_day, days + 1, time_zone)
    instants = midnights[rows["day"] - first_dt] + np.minimum(rows["seconds"], 86_399) * 1_000_000
    orders = _make_table(schemas.ORDERS, {
        "order_id": _numbered_ids(n, "o", 8),
        "line_number": pa.array(np.ones(n, dtype=np.int32)),
        "user_id": _numbered_ids(customers, "c", 6).take(pa.array(rows["customer"])),
        "order_time": pa.array(instants, type=pa.timestamp("us", tz="UTC")),
        "status": pa.array(np.full(n, "paid")),
        "item_id": pa.array(np.full(n, "i-any")),
        "category_id": pa.nulls(n, pa.string()),
        "quantity": pa.array(np.ones(n, dtype=np.int32)),
        "unit_price": pa.array(rows["amount"]),
        "discount": pa.array(np.zeros(n)),
        "dt": pa.array(rows["day"].astype(np.int32)).view(pa.date32()),
    })
    return {"clickstream": arrow_schema(schemas.CLICKSTREAM).empty_table(), "orders": orders}

