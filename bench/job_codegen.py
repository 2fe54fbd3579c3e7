"""A cold daily job on a small shop with Spark's query compilation against interpreted expressions.

    .venv/bin/python bench/job_codegen.py [--users 200] [--days 30] [--pairs 2] [--json out.json]

Spark compiles every new query shape to Java (whole-stage code generation and generated projections). On a
small shop a job process spends much of its time warming up, and compiling is part of that; on large data
compiled code is what makes the work fast. This generates the shop of the spark-submit tests (``--users`` ×
``--days``, the small test model), then runs the daily job (``jobs/daily.py``) by spark-submit in local mode
on fresh copies of it, alternating ``compiled`` (Spark's defaults, as production runs) and ``interpreted``
(``spark.sql.codegen.wholeStage=false``, ``spark.sql.codegen.factoryMode=NO_CODEGEN``, as the tests run),
``--pairs`` times. Each run reports the process's seconds and the daily run's own (its summary line).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

MODES = {
    "compiled": [],
    "interpreted": ["--conf", "spark.sql.codegen.wholeStage=false",
                    "--conf", "spark.sql.codegen.factoryMode=NO_CODEGEN"],
}
RUN_DATE = dt.date(2026, 11, 20)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    os.environ.setdefault("PORTRAIT_PSEUDONYM_KEY", "bench-only-pseudonym-key-not-a-secret")
    from conftest import FAST_MODEL, LOCAL_CONF, config_environ, make_config, run_process

    from portrait.lakehouse import Lakehouse
    from portrait.spark import get_spark, submit_args
    from portrait.stages import ingest

    # The shop's settings; SPARK__OPTIONS empty so only the mode's own --conf options differ between runs.
    shop = {"GENERATE__USERS": str(args.users), "GENERATE__DAYS": str(args.days), **FAST_MODEL, "SPARK__OPTIONS": "{}"}
    root = Path(tempfile.mkdtemp(prefix="portrait-codegen-"))
    source = root / "source"
    source_cfg = make_config(source, **shop)
    spark = get_spark(source_cfg)
    ingest.generate(Lakehouse(spark, source_cfg), end_date=RUN_DATE + dt.timedelta(days=1))
    spark.stop()

    results = []
    for pair in range(args.pairs):
        for mode, options in MODES.items():
            run_root = root / f"{mode}-{pair}"
            shutil.copytree(source, run_root)
            command = [str(Path(sys.executable).parent / "spark-submit"), "--master", "local[2]", *submit_args(),
                       *options, str(REPO / "jobs" / "daily.py"), "--conf", str(LOCAL_CONF), "--date", str(RUN_DATE)]
            started = time.perf_counter()
            done = run_process(command, config_environ(run_root, **shop), timeout=1800)
            seconds = time.perf_counter() - started
            if done.returncode != 0:
                print(done.stderr[-4000:], file=sys.stderr)
                return 1
            daily = re.search(r"finished in ([\d.]+) s", done.stdout)
            results.append({"mode": mode, "pair": pair + 1, "process_seconds": round(seconds, 1),
                            "daily_run_seconds": float(daily.group(1)) if daily else None})
            print(json.dumps(results[-1]), flush=True)
            shutil.rmtree(run_root)
    shutil.rmtree(root)
    print("\n| mode | " + " | ".join(f"pair {p + 1}: process / daily run" for p in range(args.pairs)) + " |")
    print("|---|" + "---|" * args.pairs)
    for mode in MODES:
        cells = [f"{r['process_seconds']} / {r['daily_run_seconds']} s" for r in results if r["mode"] == mode]
        print(f"| {mode} | " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps({"users": args.users, "days": args.days, "runs": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
