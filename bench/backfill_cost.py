"""Backfilling N feature dates: incremental rollups vs N independent full recomputes.

    .venv/bin/python bench/backfill_cost.py --users 4000 --days 120 --dates 30 [--json out.json]

Generates the shop once (the project's generator), then times, each in a fresh lakehouse copy:

- incremental: ``ensure_rollups`` for all N dates (every day of events read once, contiguous days in one
  pass), then ``run_features`` for each date from the stored rollups;
- full recompute: for each date, ``build_user_features`` straight from the input tables (the 90 days of
  rollups computed in memory, nothing reused) written to ``user_features``.

Both write identical feature partitions (checked on the last date). Prints a Markdown table and JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))


def _differing_columns(a, b) -> list[str]:
    """Columns whose values differ beyond 1e-9 (sums of doubles may differ in the last bits with the order)."""
    import math

    if list(a["user_id"]) != list(b["user_id"]):
        return ["user_id"]

    def same(x, y) -> bool:
        if isinstance(x, float) or isinstance(y, float):
            if x is None or y is None or math.isnan(x) or math.isnan(y):
                return (x is None or math.isnan(x)) and (y is None or math.isnan(y))
            return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9)
        if hasattr(x, "__len__") and not isinstance(x, str):  # top_categories / top_brands: (key, score) entries
            pairs = [(dict(e) if not isinstance(e, dict) else e for e in side) for side in (x, y)]
            left, right = ([(e["key"], e["score"]) for e in side] for side in pairs)
            return len(left) == len(right) and all(
                k1 == k2 and math.isclose(s1, s2, abs_tol=1e-6) for (k1, s1), (k2, s2) in zip(left, right, strict=True))
        return x == y

    return [c for c in a.columns if not all(same(x, y) for x, y in zip(a[c], b[c], strict=True))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=4000)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--dates", type=int, default=30)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from conftest import make_config
    from pyspark.sql import functions as F

    from portrait import io
    from portrait.features.user_features import build_user_features
    from portrait.lakehouse import Lakehouse
    from portrait.schemas import CLICKSTREAM, USER_FEATURES
    from portrait.spark import get_spark
    from portrait.stages import features, ingest, rollups

    root = Path(tempfile.mkdtemp(prefix="portrait-backfill-"))
    end = dt.date(2026, 11, 20)
    dates = [end - dt.timedelta(days=k) for k in range(args.dates - 1, -1, -1)]
    # The tests' configuration with production's query compilation (tests interpret: tests/conftest.py).
    source = make_config(root / "source", SPARK__OPTIONS="{}")
    spark = get_spark(source)
    ingest.generate(Lakehouse(spark, source), end_date=end, users=args.users, days=args.days)
    events = io.read_table(spark, source, CLICKSTREAM).count()

    def fresh(name: str):
        shutil.copytree(root / "source" / "lakehouse", root / name / "lakehouse")
        return make_config(root / name, SPARK__OPTIONS="{}")

    incremental = fresh("incremental")
    started = time.perf_counter()
    rollups.ensure(Lakehouse(spark, incremental), dates)
    for day in dates:
        features.compute(Lakehouse(spark, incremental), day, rollups_ready=True)
    incremental_seconds = time.perf_counter() - started

    full = fresh("full")
    started = time.perf_counter()
    for day in dates:
        tables = rollups.feature_inputs(Lakehouse(spark, full))
        features = build_user_features(day, full.features, tables["clickstream"], tables["orders"],
                                       tables["items"], tables["reviews"])
        io.replace_partition(spark, full, USER_FEATURES, features, day)
    full_seconds = time.perf_counter() - started

    last = F.col("dt") == F.lit(dates[-1])
    a = io.read_table(spark, incremental, USER_FEATURES).where(last).toPandas().sort_values("user_id")
    b = io.read_table(spark, full, USER_FEATURES).where(last).toPandas().sort_values("user_id")
    differing = _differing_columns(a.reset_index(drop=True), b.reset_index(drop=True))
    result = {
        "users": args.users, "days": args.days, "events": events, "feature_dates": args.dates,
        "incremental_seconds": round(incremental_seconds, 1), "full_recompute_seconds": round(full_seconds, 1),
        "speedup": round(full_seconds / incremental_seconds, 2),
        "last_date_columns_differing_beyond_1e-9": differing,
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores", "python": platform.python_version(),
        "spark": spark.version,
    }
    print(f"| feature dates | events | incremental (rollups once) | {args.dates} full recomputes | ratio |")
    print("|---|---|---|---|---|")
    print(f"| {args.dates} | {events:,} | {incremental_seconds:.1f} s | {full_seconds:.1f} s | "
          f"{full_seconds / incremental_seconds:.1f}× |")
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    spark.stop()
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
