"""jieba against rjieba (the Rust port, its Python binding) on the distinct texts a shop's text features segment.

    .venv/bin/pip install -e ".[bench]"     # rjieba is a bench extra, not a dependency
    .venv/bin/python bench/segmenter.py [--users 20000] [--days 30] [--repeats 3] [--json out.json]

The texts are the distinct search queries, item titles and review texts of a generated shop (what
``portrait.features.text.segment_text`` segments: distinct strings only). Each segmenter loads its dictionary
first (timed apart), then cuts every text ``--repeats`` times; the best repeat counts. Tokens are compared after
portrait's own clean-up (lower case, no stop words, no punctuation-only tokens), so a difference is one a feature
would see. Pure Python, no Spark: run it beside nothing else for the seconds to mean something.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import time

from portrait.features.text import _NOT_A_WORD, STOP_WORDS
from portrait.generate import generate_tables


def _texts(users: int, days: int) -> dict[str, list[str]]:
    tables = generate_tables(users=users, days=days, end_date=dt.date(2026, 11, 20), seed=7)
    columns = {"search_query": ("clickstream", "search_query"), "title": ("items", "title"),
               "review_text": ("reviews", "review_text")}
    texts = {}
    for name, (table, column) in columns.items():
        values = tables[table].column(column).drop_null().unique().to_pylist()
        texts[name] = sorted(v for v in values if v)
    return texts


def _clean(words) -> tuple[str, ...]:
    words = (w.strip().lower() for w in words)
    return tuple(w for w in words if w and w not in STOP_WORDS and not _NOT_A_WORD.match(w))


def _measure(cut, texts: list[str], repeats: int) -> tuple[float, list[tuple[str, ...]]]:
    best, tokens = float("inf"), []
    for _ in range(repeats):
        started = time.perf_counter()
        tokens = [_clean(cut(text)) for text in texts]
        best = min(best, time.perf_counter() - started)
    return best, tokens


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args(argv)

    import jieba
    import rjieba

    jieba.setLogLevel(60)
    texts = _texts(args.users, args.days)
    everything = [text for group in texts.values() for text in group]
    loads = {}
    started = time.perf_counter()
    jieba.initialize()
    loads["jieba"] = time.perf_counter() - started
    started = time.perf_counter()
    rjieba.cut("预热")  # rjieba loads its dictionary on the first cut
    loads["rjieba"] = time.perf_counter() - started
    seconds_jieba, tokens_jieba = _measure(jieba.lcut, everything, args.repeats)
    seconds_rjieba, tokens_rjieba = _measure(rjieba.cut, everything, args.repeats)
    differing = [(text, a, b) for text, a, b in zip(everything, tokens_jieba, tokens_rjieba, strict=True) if a != b]
    result = {
        "texts": {name: len(group) for name, group in texts.items()}, "users": args.users, "days": args.days,
        "dictionary_load_seconds": {k: round(v, 3) for k, v in loads.items()},
        "cut_seconds": {"jieba": round(seconds_jieba, 3), "rjieba": round(seconds_rjieba, 3)},
        "speedup": round(seconds_jieba / seconds_rjieba, 2) if seconds_rjieba else None,
        "texts_with_different_tokens": len(differing),
        "examples": [{"text": t, "jieba": list(a), "rjieba": list(b)} for t, a, b in differing[:10]],
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
    }
    print(json.dumps(result, ensure_ascii=False, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(result, out, ensure_ascii=False, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
