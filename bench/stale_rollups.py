"""What finding stale rollups costs a run: the per-day input counts, the records and the append.

    .venv/bin/python bench/stale_rollups.py [--users 2000] [--days 60] [--repeats 4]

Generates a shop, rolls up every day once (``ensure_rollups``), then times, each ``--repeats`` times in the
same warm session: ``ensure_rollups`` with nothing stale (the clickstream, orders and reviews counts per day
and the read of ``rollup_inputs``), the read of the records alone, the count of rollup rows per day that the
records replaced, and the append of one record (what each rollup pass adds).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUN_DATE = dt.date(2026, 11, 20)


def _timed(repeats: int, action: Callable[[], object]) -> list[float]:
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()

    from portrait.config import load_config
    from portrait.lakehouse import Lakehouse
    from portrait.schemas import USER_DAILY_ACTIVITY
    from portrait.schemas.partitions import between_days
    from portrait.spark import get_spark
    from portrait.stages import ingest, rollups

    root = Path(tempfile.mkdtemp(prefix="stale-rollups-"))
    cfg = load_config(REPO / "conf" / "local.yml", environ={
        "PORTRAIT__LAKEHOUSE__PATH": str(root / "lakehouse"),
        "PORTRAIT__MLFLOW__TRACKING_URI": f"sqlite:///{root}/mlflow.db"})
    spark = get_spark(cfg)
    ingest.generate(Lakehouse(spark, cfg), end_date=RUN_DATE, users=args.users, days=args.days)
    started = time.perf_counter()
    rollups.ensure(Lakehouse(spark, cfg), [RUN_DATE])
    print(f"{args.users} users, {args.days} days: every day rolled up in {time.perf_counter() - started:.1f} s")
    lookback = (RUN_DATE - dt.timedelta(days=90), RUN_DATE)
    rows = {
        "ensure_rollups, nothing stale": lambda: rollups.ensure(Lakehouse(spark, cfg), [RUN_DATE], refresh=False),
        "read the records (rollup_inputs)": lambda: rollups.recorded_inputs(Lakehouse(spark, cfg), *lookback),
        "count rollup rows per day (replaced)": lambda: Lakehouse(spark, cfg).rows_per_day(
            USER_DAILY_ACTIVITY, between_days(*lookback)),
        "append one record": lambda: rollups.record_inputs(
            Lakehouse(spark, cfg), {RUN_DATE: (1, 1, 1, 1)}, dt.datetime.now(dt.timezone.utc)),
    }
    print("| step | runs (s) | median (s) |\n|---|---|---|")
    for name, action in rows.items():
        seconds = _timed(args.repeats, action)
        print(f"| {name} | {' / '.join(f'{s:.2f}' for s in seconds)} | {statistics.median(seconds):.2f} |")
    # The appended test records make RUN_DATE stale in this throw-away lakehouse; nothing else reads it.


if __name__ == "__main__":
    main()
