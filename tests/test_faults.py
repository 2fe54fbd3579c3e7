"""Faults: a killed write, concurrent runs of one date, refused storage, a corrupt table log, MLflow down.

Each test shows the error is clear (names the table or server and what to do) and that published data is
exactly as it was before the fault.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from portrait import cli, erasure_io, faults, io, privacy
from portrait.lakehouse import Lakehouse
from portrait.model import tracking
from portrait.schemas import CLICKSTREAM, USER_PORTRAIT
from portrait.stages import forget
from tests.conftest import REPO, config_environ, make_config
from tests.net_helpers import closed_port
from tests.privacy_helpers import DAY, portrait_rows


def _files(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------ killed mid-write


def _complete_parquet(path: Path) -> bool:
    """True once the writer has closed the file: a Parquet file ends with its footer and the magic ``PAR1``."""
    try:
        with path.open("rb") as data:
            data.seek(0, 2)
            if data.tell() < 12:
                return False
            data.seek(-4, 2)
            return data.read(4) == b"PAR1"
    except FileNotFoundError:
        return False


def _closed_uncommitted_files(table: Path, committed: set[str]) -> set[Path]:
    """Data files of ``table`` that no commit references and that their writer has closed."""
    known = {c.replace("file:///", "file:/") for c in committed}
    return {p for p in table.rglob("*.parquet")
            if p.resolve().as_uri().replace("file:///", "file:/") not in known and _complete_parquet(p)}


def _wait_for(condition, process: subprocess.Popen, what: str, seconds: float = 240) -> None:
    """Poll ``condition`` until it holds; fail with the process's output when it exits or time runs out."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, process.stdout.read().decode(errors="replace")[-3000:]
        assert time.monotonic() < deadline, what
        time.sleep(0.2)

KILLED_WRITER = textwrap.dedent('''
    import datetime, sys, time
    from pathlib import Path
    from pyspark.sql import functions as F
    from portrait import io
    from portrait.config import load_config
    from portrait.schemas import USER_PORTRAIT
    from portrait.spark import get_spark
    from tests.privacy_helpers import portrait_rows

    marker = Path(sys.argv[1])
    cfg = load_config("conf/local.yml")
    spark = get_spark(cfg)

    def slow(user_id):
        if user_id == "sleeper":  # the second task stalls; the first one has written its file by then
            marker.write_text("writing")
            time.sleep(600)
        return user_id

    # Two write tasks: one writes its file quickly, the other stalls in the middle of the write.
    fast = portrait_rows(spark, ["new-1", "new-2", "new-3"], model_run_id="run-2").coalesce(1)
    stalled = portrait_rows(spark, ["sleeper"], model_run_id="run-2").coalesce(1)
    rows = fast.union(stalled).withColumn("user_id", F.udf(slow, "string")("user_id"))
    io.replace_partition(spark, cfg, USER_PORTRAIT, rows, datetime.date(2026, 11, 20))
''')


@pytest.mark.slow
def test_sigkill_during_the_portrait_write_leaves_the_old_partition_and_a_rerun_writes_one_copy(
        spark, tmp_path):
    cfg = make_config(tmp_path)
    published = portrait_rows(spark, ["u1", "u2"])
    io.replace_partition(spark, cfg, USER_PORTRAIT, published, DAY)
    version = io.table_version(spark, cfg, USER_PORTRAIT)
    ref = io.table_ref(cfg, USER_PORTRAIT)
    committed_files = set(spark.read.format("delta").load(ref.path).inputFiles())

    marker = tmp_path / "writing"
    env = {**os.environ, **config_environ(tmp_path), "PYTHONPATH": str(REPO)}
    writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(marker)], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # Kill only once the stalled task is in its write and the other task has closed its file.
        _wait_for(lambda: marker.exists() and _closed_uncommitted_files(Path(ref.path), committed_files),
                  writer, "the writer never reached the middle of its write")
    finally:
        os.killpg(writer.pid, signal.SIGKILL)  # the writer, its JVM and its Python workers
        writer.wait(timeout=60)
    assert writer.returncode == -signal.SIGKILL

    # The kill landed mid-write: data files exist that no commit references ...
    partition_files = {p.resolve().as_uri() for p in Path(ref.path).rglob("*.parquet")}
    orphans = {f for f in partition_files if f.replace("file:///", "file:/") not in
               {c.replace("file:///", "file:/") for c in committed_files}}
    assert orphans, "no uncommitted file found: the kill did not interrupt a write"
    # ... yet readers see exactly the published partition, at the same version.
    assert io.table_version(spark, cfg, USER_PORTRAIT) == version
    assertDataFrameEqual(io.read_table(spark, cfg, USER_PORTRAIT), published)

    rerun = portrait_rows(spark, ["new-1", "new-2", "new-3"], model_run_id="run-3")
    io.replace_partition(spark, cfg, USER_PORTRAIT, rerun, DAY)
    assertDataFrameEqual(io.read_table(spark, cfg, USER_PORTRAIT), rerun)
    assert io.table_version(spark, cfg, USER_PORTRAIT) == version + 1


# ------------------------------------------------------------------------------------- concurrent runs


@pytest.mark.slow
def test_two_runs_of_the_same_date_at_once_leave_exactly_one_copy(spark, tmp_path, caplog):
    cfg = make_config(tmp_path)
    first = portrait_rows(spark, [f"a{i}" for i in range(20)], model_run_id="run-a")
    second = portrait_rows(spark, [f"b{i}" for i in range(30)], model_run_id="run-b")
    for round_number in range(3):  # round 0 also races the creation of the table
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def run(rows, barrier=barrier, errors=errors):
            try:
                barrier.wait()
                io.replace_partition(spark, cfg, USER_PORTRAIT, rows, DAY)
            except BaseException as failure:  # reported below: a failure must be a clear one
                errors.append(failure)

        threads = [threading.Thread(target=run, args=(rows,)) for rows in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
            assert not thread.is_alive(), f"round {round_number}: a write still runs after 300 s"
        for exc in errors:
            assert isinstance(exc, faults.ConcurrentWriteError), f"round {round_number}: unclear failure {exc!r}"
        assert len(errors) < 2, f"round {round_number}: both runs failed"
        stored = io.read_table(spark, cfg, USER_PORTRAIT)
        runs = {r[0] for r in stored.select("model_run_id").distinct().collect()}
        assert runs in ({"run-a"}, {"run-b"}), f"round {round_number}: rows of both runs mixed: {runs}"
        assert stored.count() == (20 if runs == {"run-a"} else 30)
        assert stored.groupBy("user_id", "dt").count().where("count > 1").count() == 0


# ------------------------------------------------------------------------------------ refused storage


def test_a_lakehouse_path_that_cannot_be_created_is_a_clear_error(spark, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    cfg = make_config(tmp_path, LAKEHOUSE__PATH=str(blocker / "lakehouse"))
    with pytest.raises(faults.LakehouseWriteError, match=r"cannot write table 'user_portrait' at .*writable"):
        io.replace_partition(spark, cfg, USER_PORTRAIT, portrait_rows(spark, ["u1"]), DAY)
    assert blocker.read_text() == "not a directory"


def test_a_refused_partition_write_commits_nothing_and_keeps_published_dates(spark, tmp_path):
    cfg = make_config(tmp_path)
    published = portrait_rows(spark, ["u1", "u2"])
    ref = io.replace_partition(spark, cfg, USER_PORTRAIT, published, DAY)
    version = io.table_version(spark, cfg, USER_PORTRAIT)
    next_day = DAY + dt.timedelta(days=1)
    # The partition folder of the next date cannot be created: a file is in the way (as a full or read-only
    # volume would refuse it; the tests run as root, so permissions cannot be used).
    (Path(ref.path) / f"dt={next_day.isoformat()}").write_text("in the way")
    with pytest.raises(faults.LakehouseWriteError, match=r"table 'user_portrait'.*Nothing was committed"):
        io.replace_partition(spark, cfg, USER_PORTRAIT, portrait_rows(spark, ["u3"], day=next_day), next_day)
    assert io.table_version(spark, cfg, USER_PORTRAIT) == version
    assertDataFrameEqual(io.read_table(spark, cfg, USER_PORTRAIT), published)


# ---------------------------------------------------------------------------------- corrupt table log


def test_a_corrupt_table_log_is_named_and_nothing_is_overwritten(spark, tmp_path):
    cfg = make_config(tmp_path)
    ref = io.replace_partition(spark, cfg, USER_PORTRAIT, portrait_rows(spark, ["u1"]), DAY)
    io.replace_partition(spark, cfg, USER_PORTRAIT, portrait_rows(spark, ["u2"]), DAY)
    log_dir = Path(ref.path) / "_delta_log"
    newest = sorted(log_dir.glob("*.json"))[-1]
    newest.write_text("garbage{ this is not a commit")
    (log_dir / f".{newest.name}.crc").unlink(missing_ok=True)  # a checksum would catch it first
    before = _files(Path(ref.path))
    fresh = make_config(tmp_path)
    # Reads are lazy: the error surfaces at the first action, wherever that is; it is recognised there (the
    # CLI prints it in one line, see below) and io's own reads, writes and deletes raise CorruptTableError.
    with pytest.raises(Exception) as raised:
        io.read_table(spark, fresh, USER_PORTRAIT).count()
    assert faults.storage_problem(raised.value) == "corrupt"
    with pytest.raises(faults.CorruptTableError, match=r"table 'user_portrait'.*_delta_log.*Restore"):
        request = spark.createDataFrame([("u1",)], "user_id string")
        erasure_io.delete_matching(spark, fresh, USER_PORTRAIT, request, F.col("t.user_id") == F.col("r.user_id"),
                                   ("t", "r"))
    with pytest.raises(faults.CorruptTableError, match=r"table 'user_portrait'.*Nothing was written"):
        io.replace_partition(spark, fresh, USER_PORTRAIT, portrait_rows(spark, ["u3"]), DAY)
    assert _files(Path(ref.path)) == before  # no file added, changed or removed


def test_the_cli_reports_a_corrupt_table_in_one_line(spark, tmp_path, capsys, monkeypatch):
    cfg = make_config(tmp_path)
    ref = io.replace_partition(spark, cfg, USER_PORTRAIT, portrait_rows(spark, ["u1"]), DAY)
    newest = sorted((Path(ref.path) / "_delta_log").glob("*.json"))[-1]
    newest.write_text("{{{{")
    (newest.parent / f".{newest.name}.crc").unlink(missing_ok=True)
    for name, value in config_environ(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(privacy.PSEUDONYM_KEY_ENV, "fault-test-key-0123456789")
    code = cli.main(["forget", "--conf", str(REPO / "conf" / "local.yml"), "--user", "u1", "--no-vacuum"])
    assert code == cli.EXIT_USAGE
    err = capsys.readouterr().err  # stage logs go to stderr too; the error is the one line starting "error:"
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: table 'user_portrait'")
    assert "_delta_log" in errors[0] and "Traceback" not in err


# ----------------------------------------------------------------------------------- MLflow unreachable


@pytest.fixture
def mlflow_down(tmp_path, monkeypatch):
    """A configuration whose tracking server refuses connections; MLflow fails fast instead of retrying.

    The port is held bound without listening for the whole test, so nothing can answer on it."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    with closed_port() as port:
        yield make_config(tmp_path, MLFLOW__TRACKING_URI=f"http://127.0.0.1:{port}")


def test_scoring_with_mlflow_down_is_a_clear_error_and_the_portrait_stays(spark, mlflow_down, tmp_path, capsys,
                                                                         monkeypatch):
    published = portrait_rows(spark, ["u1", "u2"])
    io.replace_partition(spark, mlflow_down, USER_PORTRAIT, published, DAY)
    down = mlflow_down.mlflow.tracking_uri
    for name, value in config_environ(tmp_path, MLFLOW__TRACKING_URI=down).items():
        monkeypatch.setenv(name, value)
    code = cli.main(["score", "--conf", str(REPO / "conf" / "local.yml"), "--date", DAY.isoformat()])
    assert code == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert f"MLflow tracking server {down} (mlflow.tracking_uri) is unreachable" in err
    assertDataFrameEqual(io.read_table(spark, mlflow_down, USER_PORTRAIT), published)


def test_forget_with_mlflow_down_stops_before_deleting_anything(spark, mlflow_down, monkeypatch):
    monkeypatch.setenv(privacy.PSEUDONYM_KEY_ENV, "fault-test-key-0123456789")
    published = portrait_rows(spark, ["u1", "u2"])
    io.replace_partition(spark, mlflow_down, USER_PORTRAIT, published, DAY)
    features = spark.createDataFrame([("u1", DAY)], "user_id string, dt date")
    from portrait.schemas import USER_FEATURES

    # user_features rows of u1 make the erasure look for models trained on them: MLflow is asked first.
    features_ref = io.table_ref(mlflow_down, USER_FEATURES)
    features.write.format("delta").partitionBy("dt").save(features_ref.path)
    with pytest.raises(tracking.TrackingUnavailableError, match="unreachable"):
        forget.run(Lakehouse(spark, mlflow_down), ["u1"])
    assertDataFrameEqual(io.read_table(spark, mlflow_down, USER_PORTRAIT), published)
    assert spark.read.format("delta").load(features_ref.path).count() == 1
    assert not io.table_exists(spark, io.table_ref(mlflow_down, CLICKSTREAM))


def test_run_forget_needs_the_pseudonymisation_key_before_touching_anything(spark, cfg, monkeypatch):
    monkeypatch.delenv(privacy.PSEUDONYM_KEY_ENV, raising=False)
    io.replace_partition(spark, cfg, USER_PORTRAIT, portrait_rows(spark, ["u1"]), DAY)
    with pytest.raises(privacy.PseudonymKeyError, match="PORTRAIT_PSEUDONYM_KEY is not set"):
        forget.run(Lakehouse(spark, cfg), ["u1"])
    assert io.read_table(spark, cfg, USER_PORTRAIT).where(F.col("user_id") == "u1").count() == 1
