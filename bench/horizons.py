"""The propensity model against the purchase-history rankings, by label horizon, on an orders-only shop.

    .venv/bin/python bench/horizons.py [--customers 20000] [--days 1095] [--horizons 30,90,180]
                                       [--json docs/bench/horizons.json]

A buyers shop (``generate.kind: buyers``, portrait/generate/history.py: customers acquired evenly over the
history, purchases and drop-out of a planted BG/NBD process, no clickstream) is written to a scratch
lakehouse; ``portrait daily`` runs once at the last date with the first horizon, then the purchase target is
trained again for each other horizon on the same lakehouse. Every run evaluates on its newest snapshot
(held out) the model and, on the same rows, the BG/NBD ranking (expected purchases), the order count, the
recency and RFM; the AUC-ROC of each is printed and written as JSON, with the seconds each step took and
the share of customers the portrait covers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from pyspark.sql import functions as F

from portrait import graph
from portrait.config import load_config
from portrait.lakehouse import Lakehouse
from portrait.schemas import ORDERS, USER_FEATURES, USER_PORTRAIT
from portrait.spark import get_spark
from portrait.stages import train

RUN_DATE = dt.date(2026, 11, 20)
LOCAL_CONF = Path(__file__).resolve().parents[1] / "conf" / "local.yml"
RANKINGS = ("bgnbd", "order_count", "recency", "rfm", "random")


def _config(root: Path, customers: int, days: int, horizon: int):
    environ = {
        "PORTRAIT__LAKEHOUSE__PATH": str(root / "lakehouse"),
        "PORTRAIT__MLFLOW__TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "PORTRAIT__MLFLOW__ARTIFACT_LOCATION": str(root / "mlartifacts"),
        "PORTRAIT__GENERATE__KIND": "buyers", "PORTRAIT__GENERATE__USERS": str(customers),
        "PORTRAIT__GENERATE__DAYS": str(days), "PORTRAIT__MODEL__LABEL_HORIZON_DAYS": str(horizon),
        "PORTRAIT__MODEL__TARGETS": "[purchase]",
    }
    return load_config(LOCAL_CONF, environ={**os.environ, **environ})


def _row(horizon: int, metrics: dict[str, float], registered: bool, seconds: float) -> dict:
    return {"horizon_days": horizon, "test_rows": int(metrics["rows"]), "base_rate": round(metrics["base_rate"], 4),
            "model": round(metrics["auc_roc"], 4),
            **{name: round(metrics[f"baseline_{name}_auc_roc"], 4) for name in RANKINGS},
            "registered": registered, "seconds": round(seconds, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=1095)
    parser.add_argument("--horizons", default="30,90,180")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    horizons = [int(h) for h in args.horizons.split(",")]
    os.environ.setdefault("PORTRAIT_PSEUDONYM_KEY", "bench-only-pseudonym-key-not-a-secret")
    with tempfile.TemporaryDirectory(prefix="bench-horizons-") as scratch:
        root = Path(scratch)
        cfg = _config(root, args.customers, args.days, horizons[0])
        spark = get_spark(cfg)
        lake = Lakehouse(spark, cfg)
        started = time.perf_counter()
        summary = graph.run_daily(lake, RUN_DATE)
        daily_seconds = time.perf_counter() - started
        day = F.col("dt") == F.lit(RUN_DATE).cast("date")
        coverage = {"customers": lake.read(ORDERS).select("user_id").distinct().count(),
                    "portrait_rows": lake.read(USER_PORTRAIT).where(day).count(),
                    "active_in_lookback": lake.read(USER_FEATURES).where(day).count()}
        registered = summary.promotion is not None and not summary.promotion.startswith("not registered")
        rows = [_row(horizons[0], summary.metrics, registered,
                     daily_seconds)]
        for horizon in horizons[1:]:
            started = time.perf_counter()
            result = train.train(lake.with_config(_config(root, args.customers, args.days, horizon)), RUN_DATE)
            rows.append(_row(horizon, result.metrics, result.refusal is None, time.perf_counter() - started))
    report = {"customers": args.customers, "days": args.days, "run_date": RUN_DATE.isoformat(), **coverage,
              "daily_seconds": round(daily_seconds, 1), "horizons": rows}
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
