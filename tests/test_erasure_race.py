"""A daily run racing an erasure, as two processes: the person is not written back, whichever commits last.

The score task of the daily job (it reads the day's features, writes user_portrait and the BI tables) and
``portrait forget`` of one of the day's persons start together on a copy of the process shop (tests/shops.py).
Forget starts its own JVM too, so its tombstones and deletes land while the score task runs: the score task has
usually read the person's features before the delete and writes the portrait after it. Whatever the
interleaving, afterwards no table holds the person (erasure_io.TombstoneGuard; docs/SECURITY.md, erasure).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from pyspark.sql import functions as F

from portrait import io, privacy
from portrait.schemas import ERASURE_TOMBSTONES, PORTRAIT_LATEST, USER_FEATURES, USER_PORTRAIT
from tests.conftest import LOCAL_CONF, REPO, TEST_PSEUDONYM_KEY, config_environ, make_config
from tests.shops import BIN, RUN_DATE, SHOP

pytestmark = pytest.mark.slow


def _start(argv: list[str], environ: dict[str, str], log) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "portrait"), *argv, "--conf", str(LOCAL_CONF)], cwd=REPO,
                            env={**os.environ, **environ, "PYSPARK_PYTHON": sys.executable},
                            stdout=log, stderr=subprocess.STDOUT)


def test_a_score_run_racing_a_forget_does_not_bring_the_person_back(spark, process_shop, tmp_path):
    root = tmp_path / "race"
    shutil.copytree(process_shop.root / "lakehouse", root / "lakehouse")
    shutil.copyfile(process_shop.root / "mlflow.db", root / "mlflow.db")
    cfg = make_config(root, **SHOP)
    day = F.col("dt") == F.lit(RUN_DATE)
    person = (io.read_table(spark, cfg, USER_PORTRAIT).where(day).orderBy("user_id").first())["user_id"]
    environ = config_environ(root, **SHOP)

    with (root / "score.log").open("w") as score_log, (root / "forget.log").open("w") as forget_log:
        score = _start(["score", "--date", RUN_DATE.isoformat()], environ, score_log)
        forget = _start(["forget", "--user", person, "--no-vacuum"], environ, forget_log)
        codes = (score.wait(timeout=900), forget.wait(timeout=900))
    assert codes == (0, 0), ((root / "score.log").read_text()[-3000:], (root / "forget.log").read_text()[-3000:])

    person_key = privacy.person_key_of(person, TEST_PSEUDONYM_KEY.encode())
    assert io.read_table(spark, cfg, USER_PORTRAIT).where(F.col("user_id") == person).count() == 0
    assert io.read_table(spark, cfg, USER_FEATURES).where(F.col("user_id") == person).count() == 0
    assert io.read_table(spark, cfg, PORTRAIT_LATEST).where(F.col("person_key") == person_key).count() == 0
    assert io.read_table(spark, cfg, USER_PORTRAIT).where(day).count() > 0  # everybody else is there
    assert io.read_table(spark, cfg, ERASURE_TOMBSTONES).count() >= 1
