"""The daily job's fixed cost: consecutive daily runs on a small shop, with the driver's calls into the JVM.

    .venv/bin/python bench/daily_fixed_cost.py [--users 200] [--days 30] [--runs 3] [--json out.json]
        [--conf key=value ...]

On a small shop a daily run's time is not its events: it is query planning, Delta commits and the round
trips between the Python driver and the JVM (every DataFrame and Column call is one or more). This generates
the shop of the spark-submit tests (``--users`` × ``--days``, the small test model), then runs
``graph.run_daily`` (the job as scheduled) for ``--runs`` consecutive dates in one session and reports each
run's seconds, its number of Py4J round trips and, per task, its seconds, Spark jobs and round trips (job
ids are sequential in a session, so a task's jobs are the difference of the highest id before and after it).
The first run pays the JVM's warm-up and trains the first model; the later ones are the steady state.
``--conf`` sets session settings over portrait's own (e.g.
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
    tasks: dict[str, dict] = {}

    def measured(name, task):
        def run(lake, params):
            jobs, trips, started = _last_job(lake.spark), round_trips, time.monotonic()
            try:
                return task(lake, params)
            finally:
                tasks[name] = {"seconds": round(time.monotonic() - started, 1), "py4j_round_trips":
                               round_trips - trips, "spark_jobs": _last_job(lake.spark) - jobs}
        return run

    graph.TASKS.update({name: measured(name, task) for name, task in graph.TASKS.items()})
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
            round_trips, jobs, started = 0, _last_job(spark), time.monotonic()
            tasks.clear()
            graph.run_daily(Lakehouse(spark, cfg), day)
            runs.append({"date": day.isoformat(), "seconds": round(time.monotonic() - started, 1),
                         "py4j_round_trips": round_trips, "spark_jobs": _last_job(spark) - jobs,
                         "tasks": dict(tasks)})
    finally:
        spark.stop()
        shutil.rmtree(root, ignore_errors=True)  # the shop is regenerated on every run

    result = {"users": args.users, "days": args.days, "settings": settings, "session_start_seconds":
              round(session_seconds, 1), "runs": runs, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "python": platform.python_version(), "command": " ".join(["bench/daily_fixed_cost.py", *sys.argv[1:]])}
    print("| run | date | seconds | Spark jobs | Py4J round trips | per task: seconds / jobs |")
    print("|---|---|---:|---:|---:|---|")
    for k, run in enumerate(runs, 1):
        per_task = ", ".join(f"{name} {t['seconds']} s / {t['spark_jobs']}" for name, t in run["tasks"].items())
        print(f"| {k} | {run['date']} | {run['seconds']} | {run['spark_jobs']} | {run['py4j_round_trips']:,} "
              f"| {per_task} |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


def _last_job(spark) -> int:
    """The highest Spark job id so far (ids count up from 0 in a session; -1 before the first job)."""
    return max(spark.sparkContext.statusTracker().getJobIdsForGroup(None), default=-1)


if __name__ == "__main__":
    raise SystemExit(main())
