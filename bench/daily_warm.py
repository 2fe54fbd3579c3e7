"""The scheduled daily job run several times in one process: what a cold JVM costs against a warm one.

    .venv/bin/python bench/daily_warm.py --events 10M --workdir /tmp/portrait-scale [--runs 2] [--json FILE]

Needs the build ``bench/scale.py --spark-parts build`` left for that size in ``--workdir``. Copies it (as
``--daily-repeats`` does), starts one Spark session, then runs ``graph.run_daily`` of D ``--runs`` times in
that session, each a full re-run of the same date (the day's rollup, features, scoring with both champions,
portrait, BI tables, report, monitoring). The first run pays for the JVM warming up (class loading, the JIT
compiler, code generation); the later ones show the work itself. Prints, per run, its seconds and those of
each logged stage.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
from pathlib import Path

import scale

_STAGE_DONE = re.compile(r"stage (?P<name>.+): done in (?P<seconds>[0-9.]+) s")


class _StageTimes(logging.Handler):
    """Collects the ``stage …: done in N s`` lines portrait's pipeline logs."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.stages: list[tuple[str, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        found = _STAGE_DONE.match(record.getMessage())
        if found:
            self.stages.append((found["name"], float(found["seconds"])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", default="10M", help="the size whose build to use, e.g. 10M")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/portrait-scale"))
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write the runs and their stages here")
    args = parser.parse_args()

    os.environ.setdefault("PORTRAIT_PSEUDONYM_KEY", "bench-only-pseudonym-key-not-a-secret")
    built = args.workdir / f"run-{scale.label(scale.parse_count(args.events))}-spark-0"
    run_dir = scale.copy_of_build(built, "warm")
    from portrait import graph
    from portrait.lakehouse import Lakehouse
    from portrait.spark import get_spark

    stage_times = _StageTimes()
    logging.getLogger("portrait").addHandler(stage_times)
    logging.getLogger("portrait").setLevel(logging.INFO)
    started = time.perf_counter()
    cfg = scale._bench_config(run_dir)
    spark = get_spark(cfg)
    session_seconds = time.perf_counter() - started
    print(f"session start {session_seconds:.1f} s", flush=True)
    runs = []
    for index in range(args.runs):
        stage_times.stages.clear()
        started = time.perf_counter()
        graph.run_daily(Lakehouse(spark, cfg), scale.END_DATE, generate_if_missing=False)
        seconds = time.perf_counter() - started
        runs.append({"run": index + 1, "seconds": round(seconds, 1),
                     "stages": [{"stage": name, "seconds": value} for name, value in stage_times.stages]})
        print(f"run {index + 1}: {seconds:.1f} s", flush=True)
        for name, value in stage_times.stages:
            print(f"    {name}: {value:.1f} s", flush=True)
    spark.stop()
    if args.json:
        args.json.write_text(json.dumps({"command": "python bench/daily_warm.py " + " ".join(sys.argv[1:]),
                                         "session_seconds": round(session_seconds, 1), "runs": runs},
                                        indent=2) + "\n")


if __name__ == "__main__":
    main()
