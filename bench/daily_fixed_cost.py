"""The daily job's fixed cost: consecutive daily runs on a small shop, with the driver's calls into the JVM.

    .venv/bin/python bench/daily_fixed_cost.py [--users 200] [--days 30] [--runs 3] [--json out.json]
        [--conf key=value ...]

On a small shop a daily run's time is not its events: it is query planning, Delta commits and the round
trips between the Python driver and the JVM (every DataFrame and Column call is one or more). This generates
the shop of the spark-submit tests (``--users`` × ``--days``, the small test model), then runs
``graph.run_daily`` (the job as scheduled) for ``--runs`` consecutive dates in one session and reports each
run's seconds and its number of Py4J round trips. The first run pays the JVM's warm-up and trains the first
model; the later ones are the steady state. ``--conf`` sets session settings over portrait's own (e.g.
``--conf spark.python.sql.dataFrameDebugging.enabled=true`` to measure what portrait turns off, or
``--conf 'spark.driver.extraJavaOptions=-XX:+UseG1GC -XX:TieredStopAtLevel=1'`` for JVM flags).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    settings = dict(kv.split("=", 1) for kv in args.conf)

    os.environ.setdefault("PORTRAIT_PSEUDONYM_KEY", "bench-only-pseudonym-key-not-a-secret")
    from conftest import FAST_MODEL, make_config
    from py4j.clientserver import ClientServerConnection

    from portrait import graph
    from portrait import spark as portrait_spark
    from portrait.lakehouse import Lakehouse
    from portrait.stages import ingest

    round_trips = 0
    send = ClientServerConnection.send_command

    def counted(self, command):
        nonlocal round_trips
        round_trips += 1
        return send(self, command)

    ClientServerConnection.send_command = counted
    portrait_spark._LOCAL_SETTINGS.update(settings)  # applied after portrait's own, so they win

    root = Path(tempfile.mkdtemp(prefix="portrait-fixed-cost-"))
    # SPARK__OPTIONS: production's query compilation, not the interpreted expressions of the tests' configuration.
    cfg = make_config(root, **{"GENERATE__USERS": str(args.users), "GENERATE__DAYS": str(args.days), **FAST_MODEL,
                               "SPARK__OPTIONS": "{}"})
    started = time.monotonic()
    spark = portrait_spark.get_spark(cfg)
    session_seconds = time.monotonic() - started
    last = dt.date(2026, 11, 20)
    runs = []
    try:
        ingest.generate(Lakehouse(spark, cfg), end_date=last + dt.timedelta(days=1))
        for k in range(args.runs):
            day = last - dt.timedelta(days=args.runs - 1 - k)
            round_trips, started = 0, time.monotonic()
            graph.run_daily(Lakehouse(spark, cfg), day)
            runs.append({"date": day.isoformat(), "seconds": round(time.monotonic() - started, 1),
                         "py4j_round_trips": round_trips})
    finally:
        spark.stop()
        shutil.rmtree(root, ignore_errors=True)  # the shop is regenerated on every run

    result = {"users": args.users, "days": args.days, "settings": settings, "session_start_seconds":
              round(session_seconds, 1), "runs": runs, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "python": platform.python_version(), "command": " ".join(["bench/daily_fixed_cost.py", *sys.argv[1:]])}
    print("| run | date | seconds | Py4J round trips |\n|---|---|---:|---:|")
    for k, run in enumerate(runs, 1):
        print(f"| {k} | {run['date']} | {run['seconds']} | {run['py4j_round_trips']:,} |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
