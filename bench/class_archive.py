"""Cold starts with and without the set-up step's class-data archive (``python -m portrait.spark class-archive``).

    .venv/bin/python bench/class_archive.py [--pairs 5] [--json out.json]

Each run is a fresh Python process that starts portrait's local session (``get_spark`` with the local
configuration) and writes and reads back a small Delta table, the first thing a job does; runs alternate
without and with the archive, ``--pairs`` times. Reported per run: seconds to the session, seconds of the
first Delta write and read, and the process's wall time. Builds the archive first when there is none
(timed: that is what the set-up step pays once).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, time
started = time.perf_counter()
from portrait import spark as portrait_spark
from portrait.config import load_config
if sys.argv[2] == "without":
    portrait_spark.class_archive = lambda: None
cfg = load_config(sys.argv[3], environ={"PORTRAIT__LAKEHOUSE__PATH": sys.argv[1]})
session = portrait_spark.get_spark(cfg)
ready = time.perf_counter()
rows = session.range(1000).selectExpr("id", "id % 7 AS key")
rows.write.format("delta").mode("overwrite").save(sys.argv[1] + "/table")
session.read.format("delta").load(sys.argv[1] + "/table").groupBy("key").count().collect()
done = time.perf_counter()
session.stop()
print(json.dumps({"session_seconds": round(ready - started, 2), "first_delta_seconds": round(done - ready, 2)}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from portrait.spark import build_class_archive, class_archive

    build_seconds = None
    if class_archive() is None:
        started = time.perf_counter()
        build_class_archive()
        build_seconds = round(time.perf_counter() - started, 1)
    archive = class_archive()
    runs = []
    for pair in range(args.pairs):
        for mode in ("without", "with"):
            with tempfile.TemporaryDirectory(prefix="portrait-class-archive-") as lakehouse:
                started = time.perf_counter()
                done = subprocess.run([sys.executable, "-c", CHILD, lakehouse, mode, str(REPO / "conf" / "local.yml")],
                                      capture_output=True, text=True, cwd=REPO,
                                      env={**os.environ, "PORTRAIT_PSEUDONYM_KEY": "bench-only-key"})
                seconds = time.perf_counter() - started
            if done.returncode != 0:
                print(done.stderr[-3000:], file=sys.stderr)
                return 1
            run = {"mode": mode, "pair": pair + 1, "process_seconds": round(seconds, 2),
                   **json.loads(done.stdout.strip().splitlines()[-1])}
            runs.append(run)
            print(json.dumps(run), flush=True)
    print(f"\narchive: {archive} ({archive.stat().st_size / 2**20:.0f} MiB)"
          + (f", built in {build_seconds} s" if build_seconds else ""))
    print("| archive | session start, median | first Delta write and read, median | process, median |")
    print("|---|---|---|---|")
    for mode in ("without", "with"):
        mine = [r for r in runs if r["mode"] == mode]
        cells = [statistics.median(r[key] for r in mine) for key in
                 ("session_seconds", "first_delta_seconds", "process_seconds")]
        print(f"| {mode} | " + " | ".join(f"{c:.1f} s" for c in cells) + " |")
    if args.json:
        args.json.write_text(json.dumps({"archive_mib": round(archive.stat().st_size / 2**20),
                                         "build_seconds": build_seconds, "runs": runs}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
