"""The generated shops tests share: the daily shop (``make run`` in the test process) and the process shop.

The daily shop is one run of ``portrait daily`` as ``make run`` runs it, built once per test session
(``daily_shop`` in tests/conftest.py): the end-to-end tests read it, the leakage tests train on its snapshots
and plant rows into a copy of it, the re-run test runs its date again on a copy, and the BI endpoint serves it
(tests/test_serve_bi.py).

The process shop is one generated shop that the bundle's jobs run on as the platform runs them.

Each task of the bundle's daily job and then of its weekly job (``resources/*.yml``) runs as a process of its
own with the task's own parameters, in dependency order, on a fresh lakehouse and MLflow registry; the day's
events arrive as files in the landing folder the ingest task reads. The score task, which also trains the first
champion, runs through ``spark-submit`` in local mode (``jobs/score.py``), the others through the console
script, so one shop proves both ways of starting a job.

Built once per test session (``process_shop`` in tests/conftest.py) and read by every test about job
processes: the job graph against ``portrait daily`` (tests/test_job_graph.py), spark-submit
(tests/test_spark_submit.py), the standalone cluster (tests/test_standalone_cluster.py), the promises of the
commands (tests/test_promises.py) and key exposure (tests/test_exposure.py). Tests only read it; a test that
writes copies what it needs.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pyarrow.compute as pc
import pytest

from portrait import graph
from portrait.config import Config
from portrait.generate import generate_tables
from portrait.lakehouse import Lakehouse
from portrait.schemas import CLICKSTREAM, INPUT_TABLES, ORDERS
from portrait.stages import train
from tests.conftest import (
    FAST_MODEL,
    INTERPRETED_SPARK_OPTIONS,
    LOCAL_CONF,
    REPO,
    config_environ,
    make_config,
    run_process,
)
from tests.ingest_helpers import write_format_files

RUN_DATE = dt.date(2026, 11, 20)
COMMIT = "bundle-test-commit"
# Large enough that the planted signal trains a model that beats its RFM baseline by model.baseline_margin
# (at 150 or 300 persons it did not, and nothing was registered); the processes' fixed costs dominate anyway.
SHOP: dict[str, str] = {**FAST_MODEL, "INGEST__GENERIC__FILE_FORMAT": "parquet"}
USERS, DAYS, SEED = 1000, 30, 23
BIN = Path(sys.executable).parent
SUBMITTED_TASK = "score"
# The daily shop: the local configuration's generator scale and model, with the churn target as well.
DAILY_SHOP: dict[str, str] = {"MODEL__TARGETS": "[purchase, churn]"}


class DailyShop(NamedTuple):
    root: Path              # lakehouse/, mlflow.db, mlartifacts/
    cfg: Config
    summary: graph.RunSummary
    trained: dict           # target → the run's training result, its model still in memory

    def copy(self, root: Path) -> Config:
        """The lakehouse and MLflow store copied to ``root`` (model versions keep reading the artifacts
        here); returns the configuration that points at the copy."""
        shutil.copytree(self.root, root)
        return make_config(root, **DAILY_SHOP)


def build_daily(spark, root: Path) -> DailyShop:
    """``portrait daily`` for RUN_DATE on an empty lakehouse under ``root``: it generates the configured shop,
    trains both targets and publishes. The run's own training results are kept, so the MLflow round trip
    compares the model the run trained with the one it logged without training a third.

    At this scale compiling query code pays for itself, unlike the tiny frames of other tests: the run
    compiles as production does, and the session's interpreting settings are restored after it."""
    cfg = make_config(root, **DAILY_SHOP)
    trained = {}
    real_train = train.train

    def recording_train(lake, day, target=train.PURCHASE_TARGET):
        trained[target] = result = real_train(lake, day, target)
        return result

    interpreted = json.loads(INTERPRETED_SPARK_OPTIONS)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train, "train", recording_train)
        for key in interpreted:
            spark.conf.unset(key)
        try:
            summary = graph.run_daily(Lakehouse(spark, cfg), RUN_DATE)
        finally:
            for key, value in interpreted.items():
                spark.conf.set(key, value)
    assert set(trained) == {"purchase", "churn"}
    return DailyShop(root, cfg, summary, trained)


class ProcessShop(NamedTuple):
    root: Path              # the shop the bundle's tasks ran on: lakehouse/, mlflow.db, mlartifacts/
    cfg: Config
    inputs: Path            # a copy of the input tables as they were before the first task ran
    landing: Path           # the landing folder: <landing>/<RUN_DATE>/ holds the day's events as generic files
    runs: dict[str, subprocess.CompletedProcess]   # task key → its finished process

    @property
    def event_logs(self) -> Path:
        """Spark's event logs of every process that ran with :meth:`environ` (tests/test_key_exposure.py)."""
        return self.root / "spark-events"

    def environ(self, **overrides: str) -> dict[str, str]:
        """The environment the shop's processes ran with (plus ``overrides``): event logs on."""
        self.event_logs.mkdir(parents=True, exist_ok=True)
        options = {**json.loads(INTERPRETED_SPARK_OPTIONS), "spark.eventLog.enabled": "true",
                   "spark.eventLog.dir": self.event_logs.as_uri()}
        return config_environ(self.root, **{**SHOP, "SPARK__OPTIONS": json.dumps(options), **overrides})


def write_inputs(spark, cfg: Config, landing: Path) -> None:
    """Generated tables up to the day before ``RUN_DATE``; the events of ``RUN_DATE`` land as generic files."""
    tables = generate_tables(users=USERS, days=DAYS, end_date=RUN_DATE, seed=SEED)
    lake = Lakehouse(spark, cfg)
    for contract in INPUT_TABLES:
        table = tables[contract.name]
        if contract in (CLICKSTREAM, ORDERS):
            table = table.filter(pc.less(table["dt"], RUN_DATE))
        lake.overwrite(contract, spark.createDataFrame(table))
    day = tables[CLICKSTREAM.name].filter(pc.equal(tables[CLICKSTREAM.name]["dt"], RUN_DATE))
    write_format_files(day, "generic", landing / RUN_DATE.isoformat())


def task_command(argv: list[str]) -> list[str]:
    """The process that runs a task with parameters ``argv`` (its first one names the command)."""
    from portrait.spark import submit_args

    if argv[0] == SUBMITTED_TASK:
        return [str(BIN / "spark-submit"), "--master", "local[2]", *submit_args(),
                str(REPO / "jobs" / f"{argv[0]}.py"), *argv[1:]]
    return [str(BIN / "portrait"), *argv]


def task_argv(bundle: dict, job_key: str, task: dict, landing: Path) -> list[str]:
    """The task's parameters as the platform passes them; the configuration is conf/local.yml (the test
    environment moves its lakehouse and MLflow store) and the landing folder is this shop's."""
    from tests.test_bundle import BUNDLE_REF, DYNAMIC_REF, _bundle_values, _run_values, _substitute

    values = {**_bundle_values(bundle, "dev"), "bundle.target": "local", "var.landing_format": "generic",
              "var.landing_path": str(landing)}
    job = bundle["resources"]["jobs"][job_key]
    run_values = {**_run_values(job, values, job_key), "job.parameters.run_date": RUN_DATE.isoformat(),
                  "job.parameters.git_commit": COMMIT}
    where = f"{job_key}.{task['task_key']}"
    return [_substitute(_substitute(arg, values, BUNDLE_REF, where), run_values, DYNAMIC_REF, where)
            for arg in task["python_wheel_task"]["parameters"]]


def build(spark, root: Path) -> ProcessShop:
    """Inputs and landed files under ``root``, then every task of the daily and the weekly job in order."""
    from tests.test_bundle import _task_order, load_bundle

    shop_root, landing = root / "shop", root / "landing"
    cfg = make_config(shop_root, **SHOP)
    write_inputs(spark, cfg, landing)
    shutil.copytree(shop_root / "lakehouse", root / "inputs")
    shop = ProcessShop(shop_root, cfg, root / "inputs", landing, {})
    bundle = load_bundle()
    for job_key in ("portrait_daily", "portrait_weekly_training"):
        for task in _task_order(bundle["resources"]["jobs"][job_key]):
            argv = task_argv(bundle, job_key, task, landing)
            assert argv[argv.index("--conf") + 1] == str(LOCAL_CONF)
            result = run_process(task_command(argv), shop.environ())
            shop.runs[task["task_key"]] = result
            assert result.returncode == 0, f"task {task['task_key']}: {result.stderr[-4000:]}"
    return shop
