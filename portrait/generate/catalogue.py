"""The catalogue: word lists flattened into arrays, and the sampled items with Zipf popularity."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from portrait.generate.arrow import _join_words, _numbered_ids
from portrait.generate.numeric import _rank_in_groups
from portrait.generate.words import (
    _DEAL_TAGS_EN,
    _DEAL_TAGS_ZH,
    _GROUPS,
    _INTENT_TERMS_EN,
    _INTENT_TERMS_ZH,
    _MODEL_TOKENS,
)


class _Catalogue:
    """Static word lists flattened into arrays, plus the sampled items."""

    def __init__(self) -> None:
        leaves = [(g, leaf) for g, group in enumerate(_GROUPS) for leaf in group[5]]
        self.n_categories = len(leaves)
        self.cat_group = np.array([g for g, _ in leaves], dtype=np.int32)
        self.cat_ids = pa.array([f"c{c + 1:03d}" for c in range(self.n_categories)])
        self.cat_paths = pa.array([f"{_GROUPS[g][0]} > {leaf[0]}" for g, leaf in leaves])
        self.noun_zh = pa.array([leaf[1] for _, leaf in leaves])
        self.noun_en = pa.array([leaf[2] for _, leaf in leaves])
        self.median_price = np.array([leaf[3] for _, leaf in leaves])
        self.brands = pa.array([b for group in _GROUPS for b in group[2]])
        self.brands_per_group = len(_GROUPS[0][2])
        self.desc_zh = pa.array([w for group in _GROUPS for w in group[3]])
        self.desc_en = pa.array([w for group in _GROUPS for w in group[4]])
        self.desc_per_group = len(_GROUPS[0][3])
        self.model_tokens = pa.array([m for group in _MODEL_TOKENS for m in group])
        self.models_per_group = len(_MODEL_TOKENS[0])
        self.intent_zh = pa.array(_INTENT_TERMS_ZH)
        self.intent_en = pa.array(_INTENT_TERMS_EN)


class _Items:
    """Items sorted by category (internal index); ids are a random permutation of numbers."""

    def __init__(self, rng: np.random.Generator, cat: _Catalogue, n_items: int) -> None:
        n_cat = cat.n_categories
        # Zipf popularity of categories: a random category gets rank 1.
        cat_rank = rng.permutation(n_cat)
        self.cat_weight = 1.0 / (cat_rank + 1.0) ** 0.8
        self.cat_weight /= self.cat_weight.sum()
        # Popular categories also have more items; every category has at least three.
        counts = 3 + rng.multinomial(n_items - 3 * n_cat, self.cat_weight)
        self.n = n_items
        self.category = np.repeat(np.arange(n_cat, dtype=np.int32), counts)
        self.cat_start = np.cumsum(counts) - counts
        # Zipf popularity of items within their category, a random item taking rank 1.
        within = _rank_in_groups(counts)
        shuffled = np.argsort(self.category + rng.random(n_items), kind="stable")
        rank = np.empty(n_items, dtype=np.int64)
        rank[shuffled] = within
        weight = 1.0 / (rank + 1.0) ** 1.1
        # Promotion items (about 12%, at least one per category) carry a deal tag in their title;
        # users about to buy look at deals more (see _human_events).
        self.promo = (rng.random(n_items) < 0.12) | (rank == counts[self.category] // 2)
        self.cdf = self._cdf(weight)
        self.promo_cdf = self._cdf(weight * self.promo)
        # Brand from the category's group; price log-normal around the category median, shop-style.
        group = cat.cat_group[self.category]
        self.brand = group * cat.brands_per_group + rng.integers(0, cat.brands_per_group, n_items)
        raw = np.exp(np.log(cat.median_price[self.category]) + rng.normal(0.0, 0.45, n_items))
        self.price = np.where(raw >= 10, np.floor(raw) + 0.9, np.round(raw, 2))
        # Ids: numbers in random order, so id order carries no category information.
        self.number = rng.permutation(n_items)
        self.by_number = np.argsort(self.number)
        self.ids = _numbered_ids(n_items, "i", 6, self.number)
        self.title = self._titles(rng, cat, group)

    def _cdf(self, weight: np.ndarray) -> np.ndarray:
        """Per-category CDF of ``weight`` offset by the category index, so one searchsorted samples
        items of many categories at once; zero-weight items are never drawn."""
        n_cat = len(self.cat_start)
        totals = np.bincount(self.category, weights=weight, minlength=n_cat)
        counts = np.bincount(self.category, minlength=n_cat)
        cum = np.cumsum(weight) - np.repeat(np.cumsum(totals) - totals, counts)
        cdf = cum / totals[self.category]
        cdf[self.cat_start + counts - 1] = 1.0
        return self.category + cdf

    def _titles(self, rng: np.random.Generator, cat: _Catalogue, group: np.ndarray) -> pa.Array:
        """Brand, model, noun and two different descriptors of the item's group, Chinese or English."""
        n = self.n
        per = cat.desc_per_group
        d1 = rng.integers(0, per, n)
        d2 = (d1 + 1 + rng.integers(0, per - 1, n)) % per
        d1, d2 = pa.array(group * per + d1), pa.array(group * per + d2)
        model = cat.model_tokens.take(pa.array(group * cat.models_per_group + rng.integers(0, cat.models_per_group, n)))
        noun = pa.array(self.category)
        deal = pa.array(rng.integers(0, len(_DEAL_TAGS_ZH), n))
        no_deal = pa.scalar("", pa.string())
        deal_zh = pc.if_else(pa.array(self.promo), pa.array(_DEAL_TAGS_ZH).take(deal), no_deal)
        deal_en = pc.if_else(pa.array(self.promo), pa.array(_DEAL_TAGS_EN).take(deal), no_deal)
        brand = cat.brands.take(pa.array(self.brand))
        title_zh = _join_words(
            brand, model, cat.noun_zh.take(noun), cat.desc_zh.take(d1), cat.desc_zh.take(d2), deal_zh
        )
        title_en = _join_words(
            brand, cat.noun_en.take(noun), cat.desc_en.take(d1), cat.desc_en.take(d2), model, deal_en
        )
        return pc.if_else(pa.array(rng.random(n) < 0.6), title_zh, title_en)

    def sample(self, rng: np.random.Generator, category: np.ndarray, promo: np.ndarray | None = None) -> np.ndarray:
        """One Zipf-popular item of each given category, a promotion item where ``promo`` is set."""
        u = np.maximum(1.0 - rng.random(len(category)), 1e-9)  # in (0, 1]: never leaves its category
        item = np.searchsorted(self.cdf, category + u, side="left")
        if promo is not None:
            item = np.where(promo, np.searchsorted(self.promo_cdf, category + u, side="left"), item)
        return item.astype(np.int32)
