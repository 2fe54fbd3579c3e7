"""Daily stages at 1M / 10M / 30M events: portrait on Spark beside DuckDB and pandas + scikit-learn.

    make bench                                   # = the command below with the defaults
    .venv/bin/python bench/scale.py --events 1M,10M,30M --repeats 3 --workdir /tmp/portrait-scale \\
        --json docs/bench/scale.json --markdown docs/bench/scale.md

For every size the project's generator (:func:`portrait.generate.generate_tables`) writes the input Delta
tables once (``--days`` days, shards of at most 5M events with seeds ``seed + k``, so user ids never collide),
then each engine runs ``--repeats`` times, every repeat in a fresh process and, for Spark, a fresh lakehouse
over the same input tables (symlinked):

- **spark** (portrait itself, ``conf/local.yml``): session start; ``rollups`` (every day up to D-1 rolled up
  in one pass: the cold feature stage reads all events once); ``features`` of D-1 from the rollups;
  ``train purchase`` and ``train churn`` (the weekly job: point-in-time snapshots, fit, evaluation, MLflow
  logging and registration); ``portrait`` (scoring with both champions, reason codes, tags, quality gate,
  write); ``bi tables``. Then, in another fresh process, ``daily D``: the scheduled job of the next day
  as ``portrait daily`` runs it (``graph.run_daily``: that day's rollup, features, scoring,
  portrait, BI tables, report, then its ``job_runs`` row and the drift and volume monitoring).
- **duckdb**: the same ``user_features`` of D-1 by SQL straight from the raw tables' Parquet files
  (``bench/reference_duckdb.py``), written to Parquet.
- **pandas**: the same features with pandas (``bench/reference_pandas.py``), then the purchase model the way a
  data scientist starts (features of three snapshot dates, scikit-learn TF-IDF → chi-square → logistic
  regression).

Per stage: wall time, events per second, peak resident memory of the Python process and of the JVM (sampled
every 100 ms with psutil over the process tree), shuffle bytes written (Spark's REST API), and the files and
bytes of the tables the stage wrote. The median over repeats is reported (``--repeats``, default 3); a run
that fails (out of memory included) is reported as such, with its error. ``--daily-repeats N`` repeats the
daily job N times on copies of one build's lakehouse, so its median costs one build, not N.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

PROCESS_STARTED = time.perf_counter()
REPO = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

END_DATE = dt.date(2026, 11, 20)  # D: the daily run's date; the cold stages and references run as of D-1
SHARD_EVENTS = 5_000_000
INPUT_TABLE_NAMES = ("clickstream", "orders", "items", "users", "reviews")
MARK_BEGIN, MARK_END = "<!-- scale-bench:begin -->", "<!-- scale-bench:end -->"


def parse_count(text: str) -> int:
    """``1M`` → 1,000,000; ``250k`` → 250,000; ``1000`` → 1000."""
    text = text.strip().lower().replace("_", "")
    scale = {"k": 1_000, "m": 1_000_000, "g": 1_000_000_000}.get(text[-1:], 1)
    return int(float(text[:-1] if scale != 1 else text) * scale)


def label(events: int) -> str:
    return f"{events // 1_000_000}M" if events % 1_000_000 == 0 else f"{events / 1e6:.1f}M"


# ---------------------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------------------
class MemorySampler:
    """Peak memory of this Python process, of the JVM and of Spark's Python workers, sampled every ``interval``.

    The JVM and the main process are counted by resident set size; the Python workers (forked from one daemon,
    sharing pages) by proportional set size, so shared pages are not counted once per worker.
    """

    def __init__(self, interval: float = 0.2) -> None:
        import psutil

        self._me = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self.python_peak = self.jvm_peak = self.workers_peak = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self) -> tuple[int, int, int]:
        python, jvm, workers = self._me.memory_info().rss, 0, 0
        for child in self._me.children(recursive=True):
            if child.name() == "java":
                jvm += child.memory_info().rss
            else:
                workers += child.memory_full_info().pss
        return python, jvm, workers

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                python, jvm, workers = self._sample()
            except psutil.Error:  # a worker ended between listing and reading
                continue
            self.python_peak, self.jvm_peak = max(self.python_peak, python), max(self.jvm_peak, jvm)
            self.workers_peak = max(self.workers_peak, workers)
            self._stop.wait(self._interval)

    def reset(self) -> None:
        self.python_peak = self.jvm_peak = self.workers_peak = 0

    def peaks(self) -> dict:
        return {"python_peak_mb": round(self.python_peak / 2**20), "jvm_peak_mb": round(self.jvm_peak / 2**20),
                "workers_peak_mb": round(self.workers_peak / 2**20)}

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def delta_files(table_path: Path) -> tuple[int, int]:
    """(live files, bytes) of a Delta table, from its log, or (0, 0) when absent."""
    from reference_duckdb import delta_files as live_files

    if not (table_path / "_delta_log").exists():
        return 0, 0
    files = live_files(str(table_path))
    return len(files), sum(os.path.getsize(f) for f in files)


class Recorder:
    """Times named stages; each gets wall seconds, peak memory and, with a Spark UI, shuffle bytes."""

    def __init__(self, events: int, spark=None) -> None:
        self.events, self.spark = events, spark
        self.stages: list[dict] = []
        self.memory = MemorySampler()

    def _shuffle_written(self) -> int:
        if self.spark is None:
            return 0
        import urllib.request

        ui = self.spark.sparkContext.uiWebUrl
        app = self.spark.sparkContext.applicationId
        with urllib.request.urlopen(f"{ui}/api/v1/applications/{app}/stages?status=complete", timeout=30) as reply:
            stages = json.load(reply)
        return sum(stage.get("shuffleWriteBytes", 0) for stage in stages)

    @contextlib.contextmanager
    def stage(self, name: str, events: int | None = None, tables: tuple[Path, ...] = ()):
        self.memory.reset()
        shuffled_before = self._shuffle_written()
        started = time.perf_counter()
        yield
        seconds = time.perf_counter() - started
        files = [delta_files(t) for t in tables]
        record = {
            "stage": name, "seconds": round(seconds, 2),
            "events_per_second": None if events == 0 else round((self.events if events is None else events) / seconds),
            **self.memory.peaks(),
            "shuffle_write_mb": round((self._shuffle_written() - shuffled_before) / 2**20, 1) if self.spark else None,
            "output_files": sum(f for f, _ in files) if tables else None,
            "output_mb": round(sum(b for _, b in files) / 2**20, 1) if tables else None,
        }
        self.stages.append(record)
        print(json.dumps(record), file=sys.stderr, flush=True)

    def fixed(self, name: str, seconds: float) -> None:
        self.stages.append({"stage": name, "seconds": round(seconds, 2), **self.memory.peaks()})


# ---------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------
def events_per_user_day(days: int, seed: int) -> float:
    from portrait.generate import generate_tables

    sample = generate_tables(users=4000, days=days, end_date=END_DATE, seed=seed)
    return sample["clickstream"].num_rows / (4000 * days)


def generate(data_dir: Path, events: int, days: int, seed: int) -> dict:
    """Input Delta tables with about ``events`` clickstream rows under ``data_dir/lakehouse`` (kept if present)."""
    from deltalake import write_deltalake

    from portrait.generate import generate_tables

    meta_file = data_dir / "meta.json"
    if meta_file.exists():
        return json.loads(meta_file.read_text())
    shutil.rmtree(data_dir, ignore_errors=True)
    started = time.perf_counter()
    users = max(1000, round(events / (events_per_user_day(days, seed) * days)))
    shards = max(1, -(-events // SHARD_EVENTS))
    rows = dict.fromkeys(INPUT_TABLE_NAMES, 0)
    for shard in range(shards):
        shard_users = users // shards + (1 if shard < users % shards else 0)
        tables = generate_tables(users=shard_users, days=days, end_date=END_DATE, seed=seed + shard)
        for name in INPUT_TABLE_NAMES:
            if name == "items" and shard > 0:
                continue  # one catalogue: every shard numbers its items alike; the first one's titles are used
            table = tables[name]
            write_deltalake(str(data_dir / "lakehouse" / name), table, mode="append",
                            partition_by=["dt"] if "dt" in table.column_names else None)
            rows[name] += table.num_rows
        del tables
    meta = {"events": rows["clickstream"], "users": users, "days": days, "seed": seed, "shards": shards,
            "rows": rows, "generate_seconds": round(time.perf_counter() - started, 1),
            "clickstream_mb": round(delta_files(data_dir / "lakehouse" / "clickstream")[1] / 2**20, 1)}
    meta_file.write_text(json.dumps(meta, indent=2))
    return meta


# ---------------------------------------------------------------------------------------------------------
# Engines (each runs in its own process: `scale.py _engine NAME --data DIR --out FILE`)
# ---------------------------------------------------------------------------------------------------------
def _bench_config(run_dir: Path):
    from portrait.config import load_config

    environ = {
        "PORTRAIT__ENVIRONMENT": "local",
        "PORTRAIT__LAKEHOUSE__PATH": str(run_dir / "lakehouse"),
        "PORTRAIT__MLFLOW__TRACKING_URI": f"sqlite:///{run_dir / 'mlflow.db'}",
        "PORTRAIT__MLFLOW__ARTIFACT_LOCATION": str(run_dir / "mlartifacts"),
        # The UI's REST API is where shuffle bytes are read; it keeps every stage of the run.
        "PORTRAIT__SPARK__OPTIONS": json.dumps({"spark.ui.enabled": "true", "spark.ui.port": "4050",
                                                "spark.ui.retainedStages": "100000",
                                                "spark.ui.retainedJobs": "100000"}),
    }
    # Settings to try come from the environment as for any run, e.g. PORTRAIT__SPARK__SHUFFLE_PARTITIONS=64.
    tried = {k: v for k, v in os.environ.items() if k.startswith("PORTRAIT__") and k not in environ}
    return load_config(REPO / "conf" / "local.yml", environ={**environ, **tried})


def _fresh_lakehouse(data: Path, run_dir: Path) -> None:
    shutil.rmtree(run_dir, ignore_errors=True)
    (run_dir / "lakehouse").mkdir(parents=True)
    for name in INPUT_TABLE_NAMES:
        (run_dir / "lakehouse" / name).symlink_to(data / "lakehouse" / name, target_is_directory=True)


def engine_spark(data: Path, run_dir: Path, events: int, part: str) -> list[dict]:
    os.environ.setdefault("PORTRAIT_PSEUDONYM_KEY", "bench-only-pseudonym-key-not-a-secret")
    from portrait import graph
    from portrait.lakehouse import Lakehouse
    from portrait.schemas import USER_DAILY_ACTIVITY, USER_FEATURES, USER_PORTRAIT
    from portrait.spark import get_spark
    from portrait.stages import bi, features, rollups, score, train
    from portrait.stages.base import input_versions

    if part in ("build", "features"):
        _fresh_lakehouse(data, run_dir)
    cfg = _bench_config(run_dir)
    lake = run_dir / "lakehouse"
    spark = get_spark(cfg)
    recorder = Recorder(events, spark)
    recorder.fixed("session start", time.perf_counter() - PROCESS_STARTED)
    day = END_DATE - dt.timedelta(days=1)
    if part in ("build", "features"):
        with recorder.stage("rollups", tables=(lake / USER_DAILY_ACTIVITY.name,)):
            rollups.ensure(Lakehouse(spark, cfg), [day])
        with recorder.stage("features", tables=(lake / USER_FEATURES.name,)):
            features.compute(Lakehouse(spark, cfg), day, rollups_ready=True)
    if part == "build":
        trained = {}
        for target in cfg.model.targets:
            with recorder.stage(f"train {target}"):
                trained[target] = train.train(Lakehouse(spark, cfg), day, target)
        versions = input_versions(Lakehouse(spark, cfg))
        with recorder.stage("portrait", tables=(lake / USER_PORTRAIT.name,)):
            score.write_portrait(Lakehouse(spark, cfg), day, score.scorer_after_training(cfg, trained["purchase"]),
                                  score.churn_scorer(cfg, trained.get("churn")), versions)
        with recorder.stage("bi tables", events=0, tables=(lake / "portrait_latest", lake / "segment_daily")):
            bi.write_tables(Lakehouse(spark, cfg), day)
        purchase = trained["purchase"]
        recorder.stages.append({"stage": "metrics", "auc_roc_purchase": round(purchase.metrics["auc_roc"], 4),
                                "train_rows": purchase.train_rows})
    elif part == "daily":
        with recorder.stage(f"daily {END_DATE}", tables=(lake / USER_PORTRAIT.name,)):
            graph.run_daily(Lakehouse(spark, cfg), END_DATE, generate_if_missing=False)
    recorder.memory.close()
    spark.stop()
    return recorder.stages


def _reference_run(run_dir: Path, events: int):
    """Configuration, a recorder and the feature date D-1 for a single-node reference engine's run."""
    from portrait.config import load_config

    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    return load_config(REPO / "conf" / "local.yml"), Recorder(events), END_DATE - dt.timedelta(days=1)


def engine_duckdb(data: Path, run_dir: Path, events: int) -> list[dict]:
    import duckdb
    from reference_duckdb import duckdb_user_features

    cfg, recorder, day = _reference_run(run_dir, events)
    con = duckdb.connect()
    con.execute(f"SET threads = {os.cpu_count()}")
    recorder.fixed("session start", time.perf_counter() - PROCESS_STARTED)
    with recorder.stage("features"):
        features = duckdb_user_features(con, str(data / "lakehouse"), day, cfg.features, cfg.time_zone)
        con.from_arrow(features).write_parquet(str(run_dir / "user_features.parquet"))
    recorder.stages.append({"stage": "metrics", "feature_rows": features.num_rows})
    recorder.memory.close()
    return recorder.stages


def engine_pandas(data: Path, run_dir: Path, events: int) -> list[dict]:
    import pandas as pd
    from reference_pandas import INPUT_COLUMNS, pandas_labels, pandas_user_features, read_table, sklearn_propensity

    cfg, recorder, day = _reference_run(run_dir, events)
    recorder.fixed("session start", time.perf_counter() - PROCESS_STARTED)
    with recorder.stage("read"):
        tables = {name: read_table(str(data / "lakehouse"), name, columns=INPUT_COLUMNS[name])
                  for name in ("clickstream", "orders", "items", "reviews")}
    with recorder.stage("features"):
        features = pandas_user_features(tables, day, cfg.features, cfg.time_zone)
        features.to_parquet(run_dir / "user_features.parquet")
    horizon = cfg.model.label_horizon_days
    snapshots = [day - dt.timedelta(days=horizon * k) for k in (3, 2, 1)]  # as portrait's snapshot dates
    with recorder.stage("train purchase"):
        frames = {d: pandas_user_features(tables, d, cfg.features, cfg.time_zone) for d in snapshots}
        labels = {d: pandas_labels(tables["orders"], d, horizon) for d in snapshots}
        train = pd.concat([frames[d] for d in snapshots[:-1]], ignore_index=True)
        y_train = pd.concat([labels[d].reindex(frames[d]["user_id"]).fillna(0) for d in snapshots[:-1]]).to_numpy()
        test = frames[snapshots[-1]]
        y_test = labels[snapshots[-1]].reindex(test["user_id"]).fillna(0).to_numpy()
        model = sklearn_propensity(train, y_train, test, y_test)
    recorder.stages.append({"stage": "metrics", "feature_rows": len(features), **model})
    recorder.memory.close()
    return recorder.stages


# ---------------------------------------------------------------------------------------------------------
# Orchestration
# ---------------------------------------------------------------------------------------------------------
def copy_of_build(built: Path, repeat: int | str) -> Path:
    """A fresh copy of the lakehouse and MLflow store a build left, named ``<build>-daily<repeat>``
    (``--daily-repeats``; ``bench/daily_warm.py`` passes ``"warm"``): every daily repeat starts from the same
    state, and the build runs once. Input tables stay symlinks; the copied MLflow store
    still names the build's artifact folder, which the daily job only reads models from and adds its report to."""
    if not (built / "mlflow.db").exists():
        raise SystemExit(f"{built} holds no finished build: run the 'build' part first (--spark-parts build,daily)")
    copy = built.with_name(f"{built.name}-daily{repeat}")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(built, copy, symlinks=True)
    return copy


def run_engine(engine: str, data: Path, run_dir: Path, events: int, part: str = "build") -> dict:
    out = run_dir.with_suffix(f".{part}.json")
    command = [sys.executable, str(Path(__file__).resolve()), "_engine", engine, "--data", str(data),
               "--run-dir", str(run_dir), "--events", str(events), "--part", part, "--out", str(out)]
    log_file = run_dir.parent / f"{run_dir.name}.{part}.log"
    out.unlink(missing_ok=True)
    started = time.perf_counter()
    with log_file.open("w") as log:  # followed live with `tail -f`
        returncode = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - started
    if returncode != 0 or not out.exists():
        error = "killed (out of memory?)" if returncode in (-9, 137) else failure_summary(log_file)
        return {"engine": engine, "part": part, "ok": False, "returncode": returncode, "error": error,
                "process_seconds": round(wall, 1), "log": str(log_file)}
    return {"engine": engine, "part": part, "ok": True, "process_seconds": round(wall, 1),
            "stages": json.loads(out.read_text())}


def failure_summary(log_file: Path) -> str:
    """The last line of a failed run's log that names an error (a JVM ``Caused by:`` line included)."""
    lines = [line.strip() for line in log_file.read_text().splitlines() if line.strip()]
    named = [line for line in lines if ("Error" in line or "Exception" in line) and not line.startswith("at ")]
    return (named or lines or ["no output"])[-1].removeprefix("Caused by: ")[:300]


def _median_stages(runs: list[dict]) -> list[dict]:
    """Per stage, the median of every numeric field over the successful repeats."""
    ok = [r for r in runs if r["ok"]]
    if not ok:
        return []
    names = [s["stage"] for s in ok[0]["stages"]]
    merged = []
    for name in names:
        rows = [s for r in ok for s in r["stages"] if s["stage"] == name]
        entry = {"stage": name, "repeats": len(rows)}
        for key in rows[0]:
            values = [row[key] for row in rows
                      if isinstance(row.get(key), (int, float)) and not isinstance(row.get(key), bool)]
            if key != "stage" and values:
                entry[key] = statistics.median(values)
        merged.append(entry)
    return merged


def _versions() -> dict:
    from importlib import metadata

    names = ("pyspark", "delta-spark", "mlflow", "duckdb", "pandas", "pyarrow", "scikit-learn", "deltalake")
    found = {}
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()
    return {**found, "python": platform.python_version(), "java": java[0] if java else "?"}


def _machine() -> dict:
    import psutil

    return {"cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "platform": platform.platform(), "processor": platform.processor() or platform.machine()}


def main_run(args) -> None:
    sizes = [parse_count(s) for s in args.events.split(",")]
    engines = args.engines.split(",")
    report = {"measured": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "command": "python bench/scale.py " + " ".join(sys.argv[1:]),
              "machine": _machine(), "versions": _versions(), "sizes": []}
    for events in sizes:
        data = args.workdir / f"data-{label(events)}"
        meta = generate(data, events, args.days, args.seed)
        print(f"{label(events)}: {meta['events']:,} events, {meta['users']:,} users, generated in "
              f"{meta['generate_seconds']} s", file=sys.stderr, flush=True)
        size = {"target_events": events, "data": meta, "engines": {}}
        for engine in engines:
            parts = args.spark_parts.split(",") if engine == "spark" else ("build",)
            for part in parts:
                runs = []
                copies = part == "daily" and args.daily_repeats is not None
                for repeat in range(args.daily_repeats if copies else args.repeats):
                    run_dir = args.workdir / f"run-{label(events)}-{engine}-{repeat}"
                    if copies:
                        run_dir = copy_of_build(args.workdir / f"run-{label(events)}-{engine}-0", repeat)
                    result = run_engine(engine, data, run_dir, meta["events"], part)
                    print(f"  {engine} {part} #{repeat}: {'ok' if result['ok'] else result['error']} "
                          f"({result['process_seconds']} s)", file=sys.stderr, flush=True)
                    runs.append(result)
                    if not result["ok"]:
                        break  # a failure (e.g. out of memory) repeats itself; report it once
                key = f"{engine} daily" if part == "daily" else engine
                size["engines"][key] = {"runs": runs, "median": _median_stages(runs)}
        report["sizes"].append(size)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=2))
    markdown = render_markdown(report)
    print(markdown)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown)


def _stage(size: dict, engine: str, name: str) -> dict | None:
    for entry in size["engines"].get(engine, {}).get("median", []):
        if entry["stage"] == name:
            return entry
    return None


def _seconds(entry: dict | None) -> str:
    return "—" if entry is None else f"{entry['seconds']:.1f} s"


def _failed(size: dict, engine: str) -> str:
    """Why an engine has no figure at this size: its error, or that it was not run (``--engines``)."""
    if engine not in size["engines"]:
        return "not run"
    bad = [r for r in size["engines"][engine]["runs"] if not r["ok"]]
    return f"failed: {bad[0]['error']}" if bad else "—"


def render_markdown(report: dict) -> str:
    lines = [f"Measured {report['measured']} with `{report['command']}`.", "",
             f"Machine: {report['machine']['cpus']} cores, {report['machine']['memory_gb']} GiB, "
             f"{report['machine']['platform']}. Versions: "
             + ", ".join(f"{k} {v}" for k, v in report["versions"].items()) + ".", ""]
    lines += ["### Feature stage (all events up to D-1 → `user_features` of D-1) and training", "",
              "| events | users | portrait: start | rollups | features | feature stage | DuckDB | ×DuckDB | pandas "
              "| ×pandas | train purchase: portrait | pandas+sklearn | AUC portrait / sklearn |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for size in report["sizes"]:
        start, rollups, features = (_stage(size, "spark", n) for n in ("session start", "rollups", "features"))
        duck, pandas_features = _stage(size, "duckdb", "features"), _stage(size, "pandas", "features")
        pandas_read = _stage(size, "pandas", "read")
        stage_total = rollups["seconds"] + features["seconds"] if rollups and features else None
        pandas_total = pandas_features["seconds"] + pandas_read["seconds"] if pandas_features and pandas_read else None
        spark_train, pandas_train = _stage(size, "spark", "train purchase"), _stage(size, "pandas", "train purchase")
        spark_metrics, pandas_metrics = _stage(size, "spark", "metrics"), _stage(size, "pandas", "metrics")

        def ratio(other, total=stage_total):
            return f"{total / other:.1f}×" if total and other else "—"

        lines.append(" | ".join([
            f"| {size['data']['events']:,}", f"{size['data']['users']:,}", _seconds(start), _seconds(rollups),
            _seconds(features), f"{stage_total:.1f} s" if stage_total else _failed(size, "spark"),
            _seconds(duck) if duck else _failed(size, "duckdb"), ratio(duck and duck["seconds"]),
            f"{pandas_total:.1f} s" if pandas_total else _failed(size, "pandas"),
            ratio(pandas_total), _seconds(spark_train),
            _seconds(pandas_train) if pandas_train else "—",
            (f"{spark_metrics.get('auc_roc_purchase', float('nan')):.3f} / "
             f"{pandas_metrics.get('auc_roc', float('nan')):.3f}") if spark_metrics and pandas_metrics else "—",
        ]) + " |")
    lines += ["", "### The daily job of D (one new day of events; earlier rollups and both champions exist)", "",
              "| events | process wall | session start | daily run | JVM peak | Python peak | Python workers peak "
              "| sum of peaks |", "|---|---|---|---|---|---|---|---|"]
    for size in report["sizes"]:
        runs = [r for r in size["engines"].get("spark daily", {}).get("runs", []) if r["ok"]]
        start, run = _stage(size, "spark daily", "session start"), None
        for entry in size["engines"].get("spark daily", {}).get("median", []):
            if entry["stage"].startswith("daily"):
                run = entry
        wall = statistics.median(r["process_seconds"] for r in runs) if runs else None
        if run is None:
            lines.append(f"| {size['data']['events']:,} | {_failed(size, 'spark daily')} | | | | | | |")
            continue
        peaks = [run.get(k, 0) / 1024 for k in ("jvm_peak_mb", "python_peak_mb", "workers_peak_mb")]
        lines.append(f"| {size['data']['events']:,} | {f'{wall:.1f} s' if wall else '—'} | {_seconds(start)} | "
                     f"{_seconds(run)} | " + " | ".join(f"{p:.1f} GB" for p in peaks) + f" | {sum(peaks):.1f} GB |")
    lines += ["", "### Every stage (median of the repeats)", "",
              "| events | engine | stage | seconds | events/s | JVM peak MB | Python peak MB | Python workers MB "
              "| shuffle write MB | files written | MB written |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for size in report["sizes"]:
        for engine, result in size["engines"].items():
            for entry in result["median"]:
                if entry["stage"] == "metrics":
                    continue
                cells = [entry.get(k) for k in ("seconds", "events_per_second", "jvm_peak_mb", "python_peak_mb",
                                                 "workers_peak_mb", "shuffle_write_mb", "output_files", "output_mb")]
                shown = ["—" if c is None else (f"{c:,.0f}" if abs(c) >= 100 else f"{c}") for c in cells]
                lines.append(f"| {size['data']['events']:,} | {engine} | {entry['stage']} | "
                             + " | ".join(shown) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_engine":
        import logging

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("py4j").setLevel(logging.WARNING)
        parser = argparse.ArgumentParser()
        parser.add_argument("_engine")
        parser.add_argument("engine", choices=("spark", "duckdb", "pandas"))
        parser.add_argument("--data", type=Path, required=True)
        parser.add_argument("--run-dir", type=Path, required=True)
        parser.add_argument("--events", type=int, required=True)
        parser.add_argument("--part", default="build", choices=("build", "daily", "features"))
        parser.add_argument("--out", type=Path, required=True)
        args = parser.parse_args()
        if args.engine == "spark":
            stages = engine_spark(args.data, args.run_dir, args.events, args.part)
        elif args.engine == "duckdb":
            stages = engine_duckdb(args.data, args.run_dir, args.events)
        else:
            stages = engine_pandas(args.data, args.run_dir, args.events)
        args.out.write_text(json.dumps(stages, indent=2))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", default="1M,10M,30M", help="comma-separated sizes, e.g. 1M,10M,30M,100M")
    parser.add_argument("--engines", default="spark,duckdb,pandas")
    parser.add_argument("--spark-parts", default="build,daily",
                        help="build (every stage and training, then) daily; or features: rollups and features only")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--daily-repeats", type=int,
                        help="run the daily part this many times, each on a copy of the first build's lakehouse "
                             "(the build itself runs --repeats times; with --spark-parts daily, an existing build "
                             "is reused)")
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/portrait-scale"))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    main_run(parser.parse_args())


if __name__ == "__main__":
    main()
