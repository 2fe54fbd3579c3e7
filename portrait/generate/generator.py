"""``generate_tables``: the whole synthetic shop, from seeded random streams to the five input tables."""

from __future__ import annotations

import datetime as _dt
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from portrait.generate.catalogue import _Catalogue, _Items
from portrait.generate.events import _bot_events, _human_events, _sessions
from portrait.generate.numeric import _local_dates, _local_midnights_us
from portrait.generate.people import _Grid, _Population, _user_days, _users
from portrait.generate.tables import (
    _clickstream_table,
    _items_table,
    _orders_table,
    _reviews_table,
    _users_table,
)


class _Streams(NamedTuple):
    """Independent random streams per part, so e.g. review sampling never shifts the clickstream."""

    items: np.random.Generator
    users: np.random.Generator
    intent: np.random.Generator
    sessions: np.random.Generator
    interactions: np.random.Generator
    text: np.random.Generator
    orders: np.random.Generator
    bots: np.random.Generator


def _streams(seed: int) -> tuple[_Streams, int]:
    """The random streams of ``seed``, and the salt of the hashed ids (different seeds, different ids)."""
    streams = np.random.SeedSequence([seed, 0x70727472]).spawn(8)
    salt = int(np.random.SeedSequence([seed, 0x1D5]).generate_state(1, dtype=np.uint64)[0])
    return _Streams(*(np.random.default_rng(s) for s in streams)), salt


def _events(
    rngs: _Streams, pop: _Population, grid: _Grid, items: _Items, midnights: np.ndarray, time_zone: str,
    first_dt: int, last_dt: int,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every event of people and bots sorted by (time, session, seq), and its local date; events whose local
    date falls outside the window (sessions running over midnight on the last day) are dropped."""
    days = last_dt - first_dt + 1
    sess = _sessions(rngs.sessions, pop, grid, items, midnights)
    ev = _human_events(rngs.interactions, pop, grid, sess, items)
    bot = _bot_events(rngs.bots, pop, days, items, midnights)
    ev = {k: np.concatenate([ev[k], bot[k]]) for k in ev}
    ev_dt = _local_dates(ev["time"], time_zone)
    keep = (ev_dt >= first_dt) & (ev_dt <= last_dt)
    ev = {k: v[keep] for k, v in ev.items()}
    ev_dt = ev_dt[keep]
    order = np.lexsort((ev["seq"], ev["session"], ev["time"]))
    ev = {k: v[order] for k, v in ev.items()}
    return ev, ev_dt[order]


def generate_tables(
    users: int,
    days: int,
    end_date: _dt.date,
    seed: int,
    time_zone: str = "Asia/Shanghai",
) -> dict[str, pa.Table]:
    """Synthetic clickstream, orders, items, users and reviews for ``days`` days ending on ``end_date``.

    Returns a dict keyed "clickstream", "orders", "items", "users", "reviews"; each table has exactly
    ``arrow_schema`` of its contract.  Deterministic for given arguments.
    """
    if users < 1 or days < 1 or seed < 0:
        raise ValueError("users and days must be at least 1 and seed non-negative")
    if isinstance(end_date, _dt.datetime):
        end_date = end_date.date()
    first_day = end_date - _dt.timedelta(days=days - 1)
    rngs, salt = _streams(seed)
    cat = _Catalogue()
    items = _Items(rngs.items, cat, max(500, users // 5))
    midnights = _local_midnights_us(first_day, days + 1, time_zone)
    first_dt = (first_day - _dt.date(1970, 1, 1)).days
    last_dt = first_dt + days - 1

    pop = _users(rngs.users, users, days, items, salt)
    grid = _user_days(rngs.intent, pop, days)
    ev, ev_dt = _events(rngs, pop, grid, items, midnights, time_zone, first_dt, last_dt)
    clickstream = _clickstream_table(rngs.text, cat, items, pop, grid, ev, ev_dt, salt)
    orders, paid_lines = _orders_table(rngs.orders, cat, items, pop, ev, ev_dt, salt)
    reviews = _reviews_table(rngs.orders, pop, items, paid_lines, last_dt, time_zone, salt)
    return {
        "clickstream": clickstream,
        "orders": orders,
        "items": _items_table(cat, items),
        "users": _users_table(rngs.users, pop, first_dt),
        "reviews": reviews,
    }
