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
``--call-sites N`` also lists, for the last run, the N portrait call sites that started the most Spark jobs,
and those whose calls into the JVM took the most time (with their round trips): what is left of the run's
seconds is Python's own (the job counter is read and the stack walked around every call into the JVM, so that
run's seconds and round trips do not compare with the others).
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
import traceback
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
    parser.add_argument("--call-sites", type=int, default=0, metavar="N")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    settings = dict(kv.split("=", 1) for kv in args.conf)

    os.environ.setdefault("PORTRAIT_PSEUDONYM_KEY", "bench-only-pseudonym-key-not-a-secret")
    from conftest import FAST_MODEL, make_config

    from portrait import graph
    from portrait import spark as portrait_spark
    from portrait.lakehouse import Lakehouse
    from portrait.stages import ingest

    counter = Counter()
    graph.TASKS.update({name: counter.measured(name, task) for name, task in graph.TASKS.items()})
    portrait_spark._LOCAL_SETTINGS.update(settings)  # applied after portrait's own, so they win

    root = Path(tempfile.mkdtemp(prefix="portrait-fixed-cost-"))
    # SPARK__OPTIONS: production's query compilation, not the interpreted expressions of the tests' configuration.
    cfg = make_config(root, **{"GENERATE__USERS": str(args.users), "GENERATE__DAYS": str(args.days), **FAST_MODEL,
                               "SPARK__OPTIONS": "{}"})
    started = time.monotonic()
    spark = portrait_spark.get_spark(cfg)
    counter.spark, session_seconds = spark, time.monotonic() - started
    last = dt.date(2026, 11, 20)
    runs = []
    try:
        ingest.generate(Lakehouse(spark, cfg), end_date=last + dt.timedelta(days=1))
        for k in range(args.runs):
            day = last - dt.timedelta(days=args.runs - 1 - k)
            counter.attributing = bool(args.call_sites) and k == args.runs - 1
            runs.append(counter.run(day.isoformat(), lambda day=day: graph.run_daily(Lakehouse(spark, cfg), day)))
    finally:
        spark.stop()
        shutil.rmtree(root, ignore_errors=True)  # the shop is regenerated on every run

    result = {"users": args.users, "days": args.days, "settings": settings, "session_start_seconds":
              round(session_seconds, 1), "runs": runs, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "python": platform.python_version(), "command": " ".join(["bench/daily_fixed_cost.py", *sys.argv[1:]])}
    _print(result, args.call_sites)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


class Counter:
    """Py4J round trips and Spark jobs of runs and tasks, and optionally the call sites that started the jobs."""

    def __init__(self) -> None:
        from py4j.clientserver import ClientServerConnection

        self.spark, self.round_trips, self.tasks, self.attributing = None, 0, {}, False
        self.call_sites: collections.Counter[str] = collections.Counter()
        self.site_trips: collections.Counter[str] = collections.Counter()
        self.site_seconds: collections.Counter[str] = collections.Counter()
        send, counter, busy = ClientServerConnection.send_command, self, threading.local()

        def counted(connection, command):
            counter.round_trips += 1
            if not counter.attributing or getattr(busy, "counting", False):
                return send(connection, command)
            busy.counting = True  # the counter's own calls into the JVM are not attributed
            try:
                before, clock = counter.last_job(), time.perf_counter()
                answer = send(connection, command)
                seconds, started = time.perf_counter() - clock, counter.last_job() - before
            finally:
                busy.counting = False
            site = _call_site()
            counter.site_trips[site] += 1
            counter.site_seconds[site] += seconds
            if started:
                counter.call_sites[site] += started
            return answer

        ClientServerConnection.send_command = counted

    def last_job(self) -> int:
        """The highest Spark job id so far (ids count up from 0 in a session; -1 before the first job)."""
        return self.spark.sparkContext._jsc.sc().dagScheduler().nextJobId() - 1

    def measured(self, name, task):
        def run(lake, params):
            jobs, trips, started = self.last_job(), self.round_trips, time.monotonic()
            try:
                return task(lake, params)
            finally:
                self.tasks[name] = {"seconds": round(time.monotonic() - started, 1), "py4j_round_trips":
                                    self.round_trips - trips, "spark_jobs": self.last_job() - jobs}
        return run

    def run(self, date: str, daily) -> dict:
        self.round_trips, jobs, started = 0, self.last_job(), time.monotonic()
        self.tasks.clear()
        daily()
        result = {"date": date, "seconds": round(time.monotonic() - started, 1), "py4j_round_trips": self.round_trips,
                  "spark_jobs": self.last_job() - jobs, "tasks": dict(self.tasks)}
        if self.attributing:
            result["jobs_by_call_site"] = dict(self.call_sites.most_common())
            result["jvm_seconds_by_call_site"] = {site: round(seconds, 2)
                                                  for site, seconds in self.site_seconds.most_common()}
            result["round_trips_by_call_site"] = dict(self.site_trips.most_common())
            self.attributing = False
        return result


def _call_site() -> str:
    """The innermost three portrait frames of the current stack, innermost first."""
    frames = [f for f in traceback.extract_stack() if f"{os.sep}portrait{os.sep}" in f.filename
              and f"{os.sep}bench{os.sep}" not in f.filename]
    return " < ".join(f"{Path(f.filename).stem}.{f.name}:{f.lineno}" for f in reversed(frames[-3:])) or "(outside)"


def _print(result: dict, call_sites: int) -> None:
    print("| run | date | seconds | Spark jobs | Py4J round trips | per task: seconds / jobs |")
    print("|---|---|---:|---:|---:|---|")
    for k, run in enumerate(result["runs"], 1):
        per_task = ", ".join(f"{name} {t['seconds']} s / {t['spark_jobs']}" for name, t in run["tasks"].items())
        print(f"| {k} | {run['date']} | {run['seconds']} | {run['spark_jobs']} | {run['py4j_round_trips']:,} "
              f"| {per_task} |")
    sites = result["runs"][-1].get("jobs_by_call_site", {}) if result["runs"] else {}
    if sites:
        print("\n| Spark jobs, last run | started by (innermost portrait frames first) |\n|---:|---|")
        for site, jobs in list(sites.items())[:call_sites]:
            print(f"| {jobs} | `{site}` |")
        last = result["runs"][-1]
        seconds, trips = last["jvm_seconds_by_call_site"], last["round_trips_by_call_site"]
        print(f"\n{sum(seconds.values()):.1f} s of the last run waited on {sum(trips.values()):,} calls into the JVM"
              "\n\n| seconds in JVM calls | round trips | made by (innermost portrait frames first) |\n|---:|---:|---|")
        for site, spent in list(seconds.items())[:call_sites]:
            print(f"| {spent} | {trips[site]:,} | `{site}` |")


if __name__ == "__main__":
    raise SystemExit(main())
