"""Ingest throughput: write N Taobao-format rows, time `portrait ingest` on them, print rows per second.

Usage: `.venv/bin/python bench/ingest_throughput.py --rows 1000000 [--workdir /tmp/portrait-bench]`

The file mimics UserBehavior.csv (about 1% purchases, 0.05% bad rows, 0.1% repeated rows). Two runs are
timed: the first load into an empty lakehouse, and a re-ingest of the same file (everything duplicate).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd


def write_taobao(path: Path, rows: int, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    behaviour = rng.choice(np.array(["pv", "cart", "fav", "buy"]), size=rows, p=[0.89, 0.055, 0.045, 0.01])
    bad = rng.random(rows) < 0.0005
    behaviour = np.where(bad, "clik", behaviour)
    frame = pd.DataFrame({
        "user_id": rng.integers(1, 50_000, rows),
        "item_id": rng.integers(1, 2_000_000, rows),
        "category_id": rng.integers(1, 5_000, rows),
        "behavior_type": behaviour,
        "timestamp": rng.integers(1_511_539_200, 1_512_316_800, rows),  # 2017-11-25 .. 2017-12-03
    })
    repeats = frame.sample(frac=0.001, random_state=seed)
    pd.concat([frame, repeats]).to_csv(path, header=False, index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workdir", default="/tmp/portrait-bench")
    args = parser.parse_args()

    from portrait.config import load_config
    from portrait.lakehouse import Lakehouse
    from portrait.spark import get_spark
    from portrait.stages import ingest
    from portrait.stages.ingest import Source

    root = Path(args.workdir)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    source = root / "UserBehavior.csv"
    write_taobao(source, args.rows)
    environ = {
        "PORTRAIT__LAKEHOUSE__PATH": str(root / "lakehouse"),
        "PORTRAIT__MLFLOW__TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
    }
    cfg = load_config(Path(__file__).resolve().parents[1] / "conf" / "local.yml", environ=environ)
    spark = get_spark(cfg)
    now = dt.datetime(2026, 11, 27, tzinfo=dt.timezone.utc)
    for label in ("first load", "re-ingest (all duplicate)"):
        started = time.monotonic()
        report = ingest.load(Lakehouse(spark, cfg), Source("taobao", str(source)), now=now)
        seconds = time.monotonic() - started
        print(report.render())
        print(f"{label}: {report.rows_read:,} rows in {seconds:.1f} s = {report.rows_read / seconds:,.0f} rows/s "
              f"(master {cfg.spark.master}, {cfg.spark.shuffle_partitions} shuffle partitions)\n", flush=True)


if __name__ == "__main__":
    main()
