"""Erasure during a key rotation: pseudonyms written under the previous key are erased too.

While ``PORTRAIT_PSEUDONYM_KEY_PREVIOUS`` is set, BI tables hold person keys made with either key (rows written
before the rotation and after it); ``forget`` must reach both, and its tombstones must name the person under
both, or a racing write under either key would bring the person back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

from pyspark.sql import functions as F

from portrait import io, privacy
from portrait.lakehouse import Lakehouse
from portrait.schemas import ERASURE_REQUESTS, ERASURE_TOMBSTONES, PORTRAIT_LATEST, USERS
from portrait.stages import forget
from tests.conftest import make_config
from tests.privacy_helpers import contract_rows

DAY = dt.date(2026, 11, 20)
NEW_KEY = "rotation-test-new-key-0123456789abcdef"
OLD_KEY = "rotation-test-old-key-fedcba9876543210"


def _hmac(key: str, person: str) -> str:
    """A person key computed with Python's hmac, not portrait.privacy."""
    return hmac.new(key.encode(), person.encode(), hashlib.sha256).hexdigest()


def _shop(spark, cfg) -> Lakehouse:
    """``users`` with u1 and u2; ``portrait_latest`` with each of them under the old and the new key."""
    lake = Lakehouse(spark, cfg)
    io.overwrite_table(spark, cfg, USERS, contract_rows(spark, USERS, ["u1", "u2"], DAY))
    latest = None
    for person in ("u1", "u2"):
        for key in (OLD_KEY, NEW_KEY):
            row = contract_rows(spark, PORTRAIT_LATEST, [person], DAY, person_key=_hmac(key, person), dt=DAY)
            latest = row if latest is None else latest.unionByName(row)
    io.overwrite_table(spark, cfg, PORTRAIT_LATEST, latest)
    return lake


def _person_keys(spark, cfg) -> set[str]:
    return {r["person_key"] for r in io.read_table(spark, cfg, PORTRAIT_LATEST).select("person_key").collect()}


def test_forget_during_a_rotation_erases_the_pseudonyms_of_both_keys_and_only_then(spark, tmp_path, monkeypatch):
    monkeypatch.setenv(privacy.PSEUDONYM_KEY_ENV, NEW_KEY)
    monkeypatch.delenv(privacy.PREVIOUS_PSEUDONYM_KEY_ENV, raising=False)
    cfg = make_config(tmp_path)
    lake = _shop(spark, cfg)
    # The control, what the previous key is for: with the new key alone, a row written under the old key is
    # no longer the person's as far as portrait can tell.
    control = forget.run(lake, ["u2"], vacuum=False)
    assert control.rows_deleted[PORTRAIT_LATEST.name] == 1
    assert _person_keys(spark, cfg) == {_hmac(OLD_KEY, "u1"), _hmac(NEW_KEY, "u1"), _hmac(OLD_KEY, "u2")}

    monkeypatch.setenv(privacy.PREVIOUS_PSEUDONYM_KEY_ENV, OLD_KEY)  # a rotation under way
    report = forget.run(lake, ["u1"], vacuum=False)

    assert report.rows_deleted[PORTRAIT_LATEST.name] == 2 and report.rows_deleted[USERS.name] == 1
    assert _person_keys(spark, cfg) == {_hmac(OLD_KEY, "u2")}
    tombstones = io.read_table(spark, cfg, ERASURE_TOMBSTONES).where(F.col("request_id") == report.request_id)
    assert sorted((t["tombstone_key"], t["key_fingerprint"]) for t in tombstones.collect()) == sorted([
        (_hmac(NEW_KEY, "u1"), privacy.key_fingerprint(NEW_KEY.encode())),
        (_hmac(OLD_KEY, "u1"), privacy.key_fingerprint(OLD_KEY.encode()))])
    # The audit row names the person under the current key only.
    request = io.read_table(spark, cfg, ERASURE_REQUESTS).where(F.col("request_id") == report.request_id).first()
    assert (list(request["person_keys"]), request["key_fingerprint"]) == (
        [_hmac(NEW_KEY, "u1")], privacy.key_fingerprint(NEW_KEY.encode()))
    # A later write under the new key drops u1's rows.
    lake.overwrite(PORTRAIT_LATEST, io.read_table(spark, cfg, PORTRAIT_LATEST).unionByName(
        contract_rows(spark, PORTRAIT_LATEST, ["u1"], DAY, person_key=_hmac(NEW_KEY, "u1"), dt=DAY)))
    assert _person_keys(spark, cfg) == {_hmac(OLD_KEY, "u2")}
