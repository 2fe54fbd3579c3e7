"""Users and their daily intent: personas, attributes and the user x day grid of the latent state."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from portrait.generate.arrow import _hex_ids, _numbered_ids
from portrait.generate.catalogue import _Items
from portrait.generate.numeric import _choice, _mix64, _sigmoid
from portrait.generate.params import (
    _BOT,
    _BUY_BASE,
    _BUY_INTENT,
    _CHURN,
    _INTENT_MEAN,
    _INTENT_SD,
    _NEW,
    _PHI,
    _PLATFORM_SHARE,
    _RESEARCH_DAYS,
    _SESSION_INTENT,
    _SESSION_RATE,
    _SESSION_RESEARCH,
    BOT_SHARE,
    PERSONA_SHARES,
    PERSONAS,
)


class _Population:
    """Per-user attributes as arrays indexed by user number."""

    persona: np.ndarray
    zh: np.ndarray
    platform: np.ndarray
    fav_cats: np.ndarray
    fav_cdf: np.ndarray
    level: np.ndarray
    activity: np.ndarray
    signup_day: np.ndarray  # window day of signup (new users), negative before the window
    churn_day: np.ndarray
    ids: pa.Array
    device: pa.Array


def _users(rng: np.random.Generator, n: int, days: int, items: _Items, salt: int) -> _Population:
    p = _Population()
    n_bot = round(n * BOT_SHARE) or (1 if n >= 100 else 0)  # at least one bot in any sizeable run
    shares = np.array([PERSONA_SHARES[name] for name in PERSONAS[:-1]])
    persona = np.concatenate([_choice(rng, shares, n - n_bot), np.full(n_bot, _BOT, dtype=np.int32)])
    p.persona = rng.permutation(persona).astype(np.int8)
    p.zh = rng.random(n) < 0.75  # language of the user's searches and reviews
    p.platform = _choice(rng, _PLATFORM_SHARE, n)
    # 1-3 favourite categories drawn by category popularity, weighted 60/30/10 (fewer when k < 3).
    k = 1 + _choice(rng, np.array([0.35, 0.40, 0.25]), n)
    p.fav_cats = _choice(rng, items.cat_weight, n * 3).reshape(n, 3)
    weights = np.array([0.6, 0.3, 0.1])[None, :] * (np.arange(3)[None, :] < k[:, None])
    p.fav_cdf = np.cumsum(weights, axis=1) / weights.sum(axis=1, keepdims=True)
    # Persistent intent level per user, and an activity level independent of intent.
    p.level = _INTENT_MEAN[p.persona] + rng.normal(0.0, 0.5, n)
    p.activity = rng.normal(0.0, 0.4, n)
    # Signup: new users inside the window (from a quarter of the way in), others before it.
    before = -1 - np.floor(rng.exponential(420.0, n)).astype(np.int64)
    inside = rng.integers(int(days * 0.25), days, n) if days > 1 else np.zeros(n, dtype=np.int64)
    p.signup_day = np.where(p.persona == _NEW, inside, np.where(p.persona == _BOT, -1 - rng.integers(0, 60, n), before))
    # Churners fade out linearly from the middle of the window to a churn day in its second half.
    half = days // 2
    p.churn_day = rng.integers(half + 1, max(half + 2, int(days * 0.9)), n)
    p.ids = _numbered_ids(n, "u", 7)
    p.device = _hex_ids(_mix64(np.arange(n, dtype=np.uint64), salt ^ 0xD0), "dev-")
    return p


class _Grid:
    """User x day arrays: intent, lifecycle, purchase days and research phases."""

    x: np.ndarray
    life: np.ndarray
    can_buy: np.ndarray
    buy: np.ndarray
    research: np.ndarray
    rise: np.ndarray
    sessions: np.ndarray


def _user_days(rng: np.random.Generator, pop: _Population, days: int) -> _Grid:
    n = len(pop.persona)
    g = _Grid()
    phi = _PHI[pop.persona]
    z = np.empty((n, days))
    z[:, 0] = rng.standard_normal(n)  # stationary start: the window opens mid-history
    innov = rng.standard_normal((n, days))
    scale = np.sqrt(1.0 - phi**2)
    for d in range(1, days):  # loop over days only; each step is vectorised over users
        z[:, d] = phi * z[:, d - 1] + scale * innov[:, d]
    g.x = pop.level[:, None] + _INTENT_SD[pop.persona][:, None] * z

    day = np.arange(days)[None, :]
    life = np.ones((n, days))
    is_new = (pop.persona == _NEW)[:, None]
    signup = pop.signup_day[:, None]
    # New users browse (anonymously, lightly) in the five days before signing up, nothing earlier.
    life = np.where(is_new & (day < signup), np.where(day >= signup - 5, 0.3, 0.0), life)
    is_churn = (pop.persona == _CHURN)[:, None]
    half = days // 2
    fade = np.clip((pop.churn_day[:, None] - day) / np.maximum(pop.churn_day[:, None] - half, 1), 0.0, 1.0)
    life = np.where(is_churn & (day >= half), fade, life)
    life = np.where((pop.persona == _BOT)[:, None], 0.0, life)  # bots are generated separately
    g.life = life
    g.can_buy = life * (~is_new | (day >= signup))

    persona = pop.persona[:, None]
    p_buy = g.can_buy * _sigmoid(_BUY_BASE[persona] + _BUY_INTENT * g.x)
    g.buy = rng.random((n, days)) < p_buy
    # Research phase: a purchase within the next _RESEARCH_DAYS days.
    research = np.zeros((n, days), dtype=bool)
    for lag in range(1, _RESEARCH_DAYS + 1):
        research[:, :-lag] |= g.buy[:, lag:]
    g.research = research
    # Rise of intent over the last four days: rising intent shows in intent-term searches before the
    # sessions and carts catch up.
    lagged = g.x[:, np.maximum(np.arange(days) - 4, 0)]
    g.rise = np.clip(g.x - lagged, 0.0, None)
    log_rate = pop.activity[:, None] + _SESSION_INTENT * g.x + _SESSION_RESEARCH * research
    rate = life * _SESSION_RATE[persona] * np.exp(log_rate)
    sessions = rng.poisson(rate)
    sessions = np.maximum(sessions, g.buy.astype(sessions.dtype))  # a purchase needs a session
    signup_day = is_new & (day == signup)
    sessions = np.where(signup_day, np.maximum(sessions, 1), sessions)  # registration visit
    g.sessions = sessions.astype(np.int32)
    return g
