"""Sessions and events: people's sessions and interactions, and the crawlers' sessions."""

from __future__ import annotations

import numpy as np

from portrait.generate.catalogue import _Items
from portrait.generate.numeric import _choice, _rank_in_groups, _sigmoid
from portrait.generate.params import (
    _ANONYMOUS_SESSION_SHARE,
    _BARGAIN,
    _BARGAIN_CHANNEL_SHARE,
    _BOT,
    _CART_BASE,
    _CART_CHECKOUT,
    _CART_INTENT,
    _CART_RESEARCH,
    _CHANNEL_SHARE,
    _CHANNELS,
    _FAV_BASE,
    _FAV_INTENT,
    _HOUR_WEIGHTS,
    _NEW,
    _PLATFORM_SHARE,
    _PLATFORMS,
    _PROMO_RESEARCH,
    _SEARCH_RESEARCH,
    _US_PER_SECOND,
    _VIEWS_PER_SESSION,
)
from portrait.generate.people import _Grid, _Population


def _sessions(rng: np.random.Generator, pop: _Population, g: _Grid, items: _Items, midnights: np.ndarray) -> dict[str, np.ndarray]:
    days = g.x.shape[1]
    cells = np.flatnonzero(g.sessions.reshape(-1))
    counts = g.sessions.reshape(-1)[cells]
    cell = np.repeat(cells, counts)
    user = (cell // days).astype(np.int32)
    day = (cell % days).astype(np.int32)
    rank = _rank_in_groups(counts)
    s = len(cell)
    persona = pop.persona[user]
    x = g.x[user, day]
    research = g.research[user, day]
    # The first session of a purchase day ends with checkout (start times are random, so it is not
    # necessarily the day's first session in time).
    purchase = g.buy[user, day] & (rank == 0)
    before_signup = (persona == _NEW) & (day < pop.signup_day[user])
    logged_in = purchase | ((rng.random(s) >= _ANONYMOUS_SESSION_SHARE) & ~before_signup)
    # Start: diurnal hour of the local day, scaled to the day's true length (23 or 25 h on DST days).
    frac = (_choice(rng, _HOUR_WEIGHTS, s) + rng.random(s)) / 24.0
    start = midnights[day] + (frac * (midnights[day + 1] - midnights[day])).astype(np.int64)
    platform = np.where(rng.random(s) < 0.85, pop.platform[user], _choice(rng, _PLATFORM_SHARE, s))
    channel = np.where(
        persona == _BARGAIN, _choice(rng, _BARGAIN_CHANNEL_SHARE, s), _choice(rng, _CHANNEL_SHARE, s)
    )
    focus = _pick_categories(rng, pop, items, user, explore=0.15)
    n_inter = 1 + rng.poisson(_VIEWS_PER_SESSION[persona] * np.exp(0.1 * x)) + purchase
    p_search = _sigmoid(-0.7 + 0.3 * x + _SEARCH_RESEARCH * research + 0.6 * (persona == _BARGAIN))
    n_search = (rng.random(s) < p_search) * (1 + rng.poisson(0.4 + 0.6 * research))
    return {
        "user": user, "day": day, "purchase": purchase, "logged_in": logged_in, "start": start,
        "platform": platform.astype(np.int8), "channel": channel.astype(np.int8), "focus": focus,
        "n_inter": n_inter.astype(np.int64), "n_search": n_search.astype(np.int64),
    }


def _pick_categories(rng: np.random.Generator, pop: _Population, items: _Items, user: np.ndarray, explore: float) -> np.ndarray:
    """A favourite category of each user (by weight), or a popular one with probability ``explore``."""
    u = rng.random(len(user))
    slot = (u[:, None] > pop.fav_cdf[user]).sum(axis=1).clip(0, 2)
    fav = pop.fav_cats[user, slot]
    other = _choice(rng, items.cat_weight, len(user))
    return np.where(rng.random(len(user)) < explore, other, fav).astype(np.int32)


_SEARCH, _VIEW, _FAV, _CART, _REMOVE, _BUY = 0, 1, 2, 3, 4, 5
_STAGE_TYPE = {_SEARCH: "search", _VIEW: "view", _FAV: "fav", _CART: "cart", _REMOVE: "remove_cart", _BUY: "buy"}


def _interactions(
    rng: np.random.Generator, pop: _Population, g: _Grid, s: dict[str, np.ndarray], items: _Items
) -> dict[str, np.ndarray]:
    """Per interaction of every session: a viewed item, maybe followed by favourite, add-to-cart, later
    removal and checkout, with the positions in the session where each of them happens."""
    n_sess = len(s["user"])
    i_sess = np.repeat(np.arange(n_sess), s["n_inter"])
    i_pos = _rank_in_groups(s["n_inter"])
    i_user = s["user"][i_sess]
    persona = pop.persona[i_user]
    x = g.x[i_user, s["day"][i_sess]]
    research = g.research[i_user, s["day"][i_sess]]
    n_i = len(i_sess)
    on_focus = rng.random(n_i) < 0.8  # sessions stay mostly within one category
    cats = np.where(on_focus, s["focus"][i_sess], _pick_categories(rng, pop, items, i_user, explore=0.3))
    # Deal seeking: users about to buy (and bargain hunters anyway) look at promotion items.
    p_promo = _sigmoid(-2.6 + 1.2 * (persona == _BARGAIN) + _PROMO_RESEARCH * research)
    item = items.sample(rng, cats, rng.random(n_i) < p_promo)
    purchase = s["purchase"][i_sess]
    fav = rng.random(n_i) < _sigmoid(_FAV_BASE[persona] + _FAV_INTENT * x)
    cart_logit = _CART_BASE[persona] + _CART_INTENT * x + _CART_RESEARCH * research + _CART_CHECKOUT * purchase
    cart = rng.random(n_i) < _sigmoid(cart_logit)
    last = i_pos == s["n_inter"][i_sess] - 1
    remove = cart & (rng.random(n_i) < np.where(persona == _BARGAIN, 0.3, 0.15)) & ~(purchase & last)
    cart |= purchase & last  # a checkout session buys at least its last carted item
    bought = purchase & cart & ~remove & ((rng.random(n_i) < 0.3) | last)
    # Removal happens at a later point of the same session.
    remaining = s["n_inter"][i_sess] - i_pos
    remove_pos = i_pos + (rng.random(n_i) * remaining).astype(np.int64)
    return {
        "sess": i_sess, "pos": i_pos, "item": item, "fav": fav, "cart": cart, "remove": remove,
        "bought": bought, "remove_pos": remove_pos, "checkout_pos": s["n_inter"][i_sess],
    }


def _ordered_events(
    rng: np.random.Generator, s: dict[str, np.ndarray], it: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Session, type and item of every event, in session order: searches (the first opens the session,
    later ones come before some later view) and the interactions' views, favourites, carts, removals and
    checkout lines."""
    n_sess = len(s["user"])
    q_sess = np.repeat(np.arange(n_sess), s["n_search"])
    q_rank = _rank_in_groups(s["n_search"])
    q_pos = np.where(q_rank == 0, 0, (rng.random(len(q_sess)) * s["n_inter"][q_sess]).astype(np.int64))
    i_sess, i_pos, item = it["sess"], it["pos"], it["item"]
    fav, cart, remove, bought = it["fav"], it["cart"], it["remove"], it["bought"]
    parts = [
        (q_sess, q_pos, _SEARCH, np.full(len(q_sess), -1, np.int32), q_rank),
        (i_sess, i_pos, _VIEW, item, i_pos),
        (i_sess[fav], i_pos[fav], _FAV, item[fav], i_pos[fav]),
        (i_sess[cart], i_pos[cart], _CART, item[cart], i_pos[cart]),
        (i_sess[remove], it["remove_pos"][remove], _REMOVE, item[remove], i_pos[remove]),
        (i_sess[bought], it["checkout_pos"][bought], _BUY, item[bought], i_pos[bought]),
    ]
    sess = np.concatenate([p[0] for p in parts])
    pos = np.concatenate([p[1] for p in parts])
    etype = np.concatenate([np.full(len(p[0]), p[2], np.int8) for p in parts])
    ev_item = np.concatenate([p[3] for p in parts]).astype(np.int32)
    tie = np.concatenate([p[4] for p in parts])
    order = np.lexsort((tie, etype, pos, sess))
    return sess[order], etype[order], ev_item[order]


def _event_offsets(rng: np.random.Generator, sess: np.ndarray, etype: np.ndarray) -> np.ndarray:
    """Microseconds from the session start: cumulative gaps of seconds to minutes; all lines of a checkout
    share the checkout instant.  Carts and favourites follow their view quickly, browsing takes longer."""
    n_ev = len(sess)
    log_gap = np.select(
        [etype == _VIEW, etype == _SEARCH, (etype == _FAV) | (etype == _CART), etype == _REMOVE],
        [3.4, 2.8, 2.2, 3.6],
        default=4.0,
    ) + rng.normal(0.0, 0.8, n_ev)
    gap = (np.clip(np.exp(log_gap), 1.0, 900.0) * _US_PER_SECOND).astype(np.int64)
    first = np.ones(n_ev, dtype=bool)
    first[1:] = sess[1:] != sess[:-1]
    after_buy = np.zeros(n_ev, dtype=bool)
    after_buy[1:] = etype[:-1] == _BUY
    gap[first | ((etype == _BUY) & after_buy)] = 0
    csum = np.cumsum(gap)
    start_of_session = np.maximum.accumulate(np.where(first, np.arange(n_ev), 0))
    return csum - csum[start_of_session]


def _human_events(rng: np.random.Generator, pop: _Population, g: _Grid, s: dict[str, np.ndarray], items: _Items) -> dict[str, np.ndarray]:
    """The events of people's sessions ``s`` as parallel arrays, in session order."""
    sess, etype, ev_item = _ordered_events(rng, s, _interactions(rng, pop, g, s, items))
    time = s["start"][sess] + _event_offsets(rng, sess, etype)
    return {
        "user": s["user"][sess].astype(np.int32),
        "logged_in": s["logged_in"][sess],
        "session": sess.astype(np.int64),
        "time": time.astype(np.int64),
        "etype": etype,
        "item": ev_item,
        "seq": np.arange(len(sess), dtype=np.int64),
        "platform": s["platform"][sess],
        "channel": s["channel"][sess],
        "category": np.where(etype == _SEARCH, s["focus"][sess], -1).astype(np.int32),
        "day": s["day"][sess].astype(np.int32),
    }


def _bot_events(rng: np.random.Generator, pop: _Population, days: int, items: _Items, midnights: np.ndarray) -> dict[str, np.ndarray]:
    """Crawlers: a daily logged-in session at a fixed hour, views at a fixed period in id order."""
    bots = np.flatnonzero(pop.persona == _BOT).astype(np.int32)
    n_bots = len(bots)
    start_sec = rng.integers(3600, 4 * 3600, n_bots)  # each bot runs at its own time, 01:00-04:00
    period_sec = rng.integers(8, 31, n_bots)  # and its own exact period
    cursor0 = rng.integers(0, items.n, n_bots)
    bot = np.repeat(np.arange(n_bots), days)
    day = np.tile(np.arange(days), n_bots)
    views = rng.integers(100, 301, len(bot))
    # The crawl continues each day where it stopped the day before.
    per_day = views.reshape(n_bots, days)
    cursor = (cursor0[:, None] + np.cumsum(per_day, axis=1) - per_day).reshape(-1)
    ev_sess = np.repeat(np.arange(len(bot)), views)
    k = _rank_in_groups(views)
    time = midnights[day][ev_sess] + (start_sec[bot][ev_sess] + k * period_sec[bot][ev_sess]) * _US_PER_SECOND
    item = items.by_number[(cursor[ev_sess] + k) % items.n]
    n_ev = len(ev_sess)
    return {
        "user": bots[bot][ev_sess],
        "logged_in": np.ones(n_ev, dtype=bool),
        "session": -1 - ev_sess.astype(np.int64),  # negative: distinct from human session numbers
        "time": time.astype(np.int64),
        "etype": np.full(n_ev, _VIEW, np.int8),
        "item": item.astype(np.int32),
        "seq": k.astype(np.int64),
        "platform": np.full(n_ev, _PLATFORMS.index("web"), np.int8),
        "channel": np.full(n_ev, _CHANNELS.index("direct"), np.int8),
        "category": np.full(n_ev, -1, np.int32),
        "day": day[ev_sess].astype(np.int32),
    }
