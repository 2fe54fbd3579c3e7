"""Pseudonymisation: a keyed hash (HMAC-SHA256) of the person id for every table BI tools read.

The key never lives in configuration files, logs or MLflow: it comes from the environment variable named by
``PSEUDONYM_KEY_ENV`` (on Databricks, set it from a secret scope in the job cluster's environment, e.g.
``{{secrets/portrait/pseudonym_key}}``). The same key always gives the same person key, so BI joins across dates
work; rotating the key changes every person key (see docs/SECURITY.md).

In Spark the HMAC runs in a vectorised Python function (``pandas_udf``) whose closure holds the key: Spark
ships the pickled function to its Python workers, and no query plan, Spark UI page, event log or query history
prints it. Built from Spark's ``sha2`` instead, the key (padded as RFC 2104 does) would be a literal of every
plan, readable by whoever sees the plan; the key is worth a Python round trip over the day's portrait rows.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
from collections.abc import Mapping, Sequence

import pandas as pd
from pyspark.sql import Column
from pyspark.sql import functions as F

PSEUDONYM_KEY_ENV = "PORTRAIT_PSEUDONYM_KEY"
_HASH_RANGE = 1 << 53  # uniform numbers from a 64-bit hash: 53 bits, a double's exact integer range
# During a key rotation (docs/SECURITY.md): the key BI tables were built with before the new one; erasure
# deletes rows keyed with either, so a person cannot survive in a table not yet rebuilt with the new key.
PREVIOUS_PSEUDONYM_KEY_ENV = "PORTRAIT_PSEUDONYM_KEY_PREVIOUS"
PERSON_KEY = "person_key"
_MIN_KEY_BYTES = 16


class PseudonymKeyError(RuntimeError):
    """The pseudonymisation key is missing or too short."""


def pseudonym_key(environ: Mapping[str, str] | None = None, variable: str = PSEUDONYM_KEY_ENV) -> bytes:
    """The HMAC key from ``PORTRAIT_PSEUDONYM_KEY`` (at least 16 bytes as UTF-8)."""
    value = (os.environ if environ is None else environ).get(variable)
    if not value:
        raise PseudonymKeyError(
            f"{variable} is not set: BI tables carry a keyed hash of the person id and the key comes only "
            "from the environment (on Databricks from a secret scope). Set it to a random secret of at least 16 "
            "characters, e.g. `export PORTRAIT_PSEUDONYM_KEY=$(openssl rand -hex 32)`, and keep it stable: "
            "changing it changes every person key (docs/SECURITY.md, key rotation)."
        )
    key = value.encode("utf-8")
    if len(key) < _MIN_KEY_BYTES:
        raise PseudonymKeyError(f"{variable} is {len(key)} bytes long; use at least {_MIN_KEY_BYTES}")
    return key


def pseudonym_keys(environ: Mapping[str, str] | None = None) -> list[bytes]:
    """The current key, then the previous one while a rotation is under way (``PORTRAIT_PSEUDONYM_KEY_PREVIOUS``)."""
    environ = os.environ if environ is None else environ
    keys = [pseudonym_key(environ)]
    if environ.get(PREVIOUS_PSEUDONYM_KEY_ENV):
        previous = pseudonym_key(environ, PREVIOUS_PSEUDONYM_KEY_ENV)
        if previous != keys[0]:
            keys.append(previous)
    return keys


def key_fingerprint(key: bytes) -> str:
    """A short public name of a key (16 hex digits of a domain-separated SHA-256), to tell rotations apart.

    It identifies the key without revealing it: the key is a random secret, so the hash cannot be inverted.
    """
    return hashlib.sha256(b"portrait-pseudonym-key-fingerprint:" + key).hexdigest()[:16]


def person_key_of(user_id: str, key: bytes) -> str:
    """The person key of one id computed in Python (``hmac``); equal to :func:`person_key` in Spark."""
    return hmac.new(key, user_id.encode("utf-8"), hashlib.sha256).hexdigest()


def person_key(user_id: Column, key: bytes) -> Column:
    """The pseudonymised person key BI tables carry instead of ``user_id``: lower-case hex HMAC-SHA256 of the
    id's UTF-8 bytes (null stays null), equal to :func:`person_key_of`."""

    @F.pandas_udf("string")  # type: ignore[call-overload]
    def person_key(ids: pd.Series) -> pd.Series:
        return ids.map(lambda value: hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest(),
                       na_action="ignore")

    return person_key(user_id)


def laplace_noised(column: Column | str, epsilon: float | None, seed: int, sensitivity: float = 1.0,
                   key: Sequence[Column | str] = ()) -> Column:
    """``column`` plus Laplace noise of scale ``sensitivity / epsilon`` (epsilon-differential privacy of a count).

    Built from Spark's seeded ``rand`` by the inverse CDF: with ``u`` uniform in [-1/2, 1/2),
    ``noise = -b · sign(u) · ln(1 - 2|u|)``. The same seed over the same partitioning gives the same noise, so a
    re-run publishes the same numbers (averaging re-runs cannot remove the noise). ``epsilon`` None returns the
    column unchanged (as double): noise is off. A count's sensitivity is 1 (one person changes it by one).
    Returns a double column; see :func:`noised_count` for a non-negative whole count.

    Example: ``segments.withColumn("users", noised_count("users", cfg.privacy.noise_epsilon, seed=42))``.
    """
    value = F.col(column) if isinstance(column, str) else column
    if epsilon is None:
        return value.cast("double")
    if not (isinstance(epsilon, (int, float)) and epsilon > 0 and math.isfinite(epsilon)):
        raise ValueError(f"epsilon must be a positive number or None, got {epsilon!r}")
    if sensitivity <= 0:
        raise ValueError(f"sensitivity must be positive, got {sensitivity!r}")
    scale = sensitivity / float(epsilon)
    if key:
        # A hash of (seed, key) is the same however Spark partitions the rows, so a re-run publishes the
        # same noisy numbers; rand(seed) depends on the partitioning.
        bits = F.xxhash64(F.lit(int(seed)), *[F.col(k) if isinstance(k, str) else k for k in key])
        uniform = F.pmod(bits, F.lit(_HASH_RANGE)).cast("double") / F.lit(float(_HASH_RANGE))
    else:
        uniform = F.rand(int(seed))
    u = uniform - F.lit(0.5)
    # rand is in [0, 1), so 1 - 2|u| reaches 0 only at u = -1/2; the floor keeps the log finite there.
    tail = F.greatest(F.lit(1.0) - F.lit(2.0) * F.abs(u), F.lit(1e-300))
    return value.cast("double") - F.lit(scale) * F.signum(u) * F.log(tail)


def noised_count(column: Column | str, epsilon: float | None, seed: int,
                 key: Sequence[Column | str] = ()) -> Column:
    """:func:`laplace_noised` rounded to a whole count and floored at 0 (bigint); unchanged when epsilon is None."""
    noised = F.round(laplace_noised(column, epsilon, seed, key=key))
    return F.greatest(noised, F.lit(0.0)).cast("bigint")
