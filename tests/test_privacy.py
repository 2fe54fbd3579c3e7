"""Pseudonymisation (HMAC person keys, rotation) and Laplace noise for aggregate counts."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from pyspark.sql import functions as F

from portrait import privacy

KEY_A = b"first-key-0123456789abcdef"
KEY_B = b"second-key-0123456789abcdef"
IDS = ["u0000001", "u0000002", "设备-42", "", "x' OR '1'='1"]


def _keys(spark, key):
    """The person keys of IDS and of a null id, in that order."""
    frame = spark.createDataFrame(list(enumerate([*IDS, None])), "position int, user_id string")
    keyed = frame.select("position", privacy.person_key(F.col("user_id"), key).alias("key")).orderBy("position")
    return [r["key"] for r in keyed.collect()]


def test_spark_hmac_equals_python_hmac_stable_for_a_key_and_changes_with_rotation(spark):
    first = _keys(spark, KEY_A)
    expected = [hmac.new(KEY_A, i.encode("utf-8"), hashlib.sha256).hexdigest() for i in IDS] + [None]
    assert first == expected
    assert first == _keys(spark, KEY_A)  # stable: BI joins across dates work
    rotated = _keys(spark, KEY_B)
    assert all(a != b for a, b in zip(first[:-1], rotated[:-1], strict=True))  # every key changes
    assert privacy.person_key_of("u0000001", KEY_B) == rotated[0]
    long_key = b"k" * 100  # longer than the 64-byte block: hashed first, as RFC 2104 says
    assert _keys(spark, long_key)[0] == hmac.new(long_key, b"u0000001", hashlib.sha256).hexdigest()


def test_key_comes_from_the_environment_and_must_be_long_enough():
    assert privacy.pseudonym_key({privacy.PSEUDONYM_KEY_ENV: KEY_A.decode()}) == KEY_A
    with pytest.raises(privacy.PseudonymKeyError, match="PORTRAIT_PSEUDONYM_KEY is not set"):
        privacy.pseudonym_key({})
    with pytest.raises(privacy.PseudonymKeyError, match="is 5 bytes long; use at least 16"):
        privacy.pseudonym_key({privacy.PSEUDONYM_KEY_ENV: "short"})


def test_rotation_keeps_the_previous_key_for_erasure_and_fingerprints_tell_keys_apart(monkeypatch):
    monkeypatch.setenv(privacy.PSEUDONYM_KEY_ENV, KEY_B.decode())
    assert privacy.pseudonym_keys() == [KEY_B]
    monkeypatch.setenv(privacy.PREVIOUS_PSEUDONYM_KEY_ENV, KEY_A.decode())
    assert privacy.pseudonym_keys() == [KEY_B, KEY_A]
    monkeypatch.setenv(privacy.PREVIOUS_PSEUDONYM_KEY_ENV, "short")
    with pytest.raises(privacy.PseudonymKeyError, match="PORTRAIT_PSEUDONYM_KEY_PREVIOUS is 5 bytes"):
        privacy.pseudonym_keys()
    fingerprint = privacy.key_fingerprint(KEY_A)
    assert len(fingerprint) == 16 and fingerprint == privacy.key_fingerprint(KEY_A)
    assert fingerprint != privacy.key_fingerprint(KEY_B)
    assert KEY_A.hex()[:16] != fingerprint and hashlib.sha256(KEY_A).hexdigest()[:16] != fingerprint


def test_laplace_noise_is_seeded_centred_and_has_the_scale_of_epsilon(spark):
    counts = spark.range(20000).select("id", F.lit(100).alias("users"))
    epsilon = 0.5  # scale b = 1 / epsilon = 2: mean 0, variance 2 b^2 = 8

    def noised(seed):
        return counts.select("id", privacy.laplace_noised("users", epsilon, seed).alias("noised"))

    stats = noised(7).agg(F.avg("noised"), F.variance("noised"), F.min("noised"), F.max("noised")).first()
    assert abs(stats[0] - 100.0) < 0.15
    assert 7.0 < stats[1] < 9.0
    assert stats[2] < 90 and stats[3] > 110  # heavy tails, both sides
    first = [r["noised"] for r in noised(7).orderBy("id").limit(50).collect()]
    assert first == [r["noised"] for r in noised(7).orderBy("id").limit(50).collect()]  # same seed, same numbers
    assert first != [r["noised"] for r in noised(8).orderBy("id").limit(50).collect()]


def test_keyed_laplace_noise_does_not_depend_on_partitioning(spark):
    groups = spark.range(2000).select(F.col("id").cast("string").alias("segment"), F.lit(100).alias("users"))

    def noised(frame, seed=7):
        return {r["segment"]: r["noised"] for r in frame.select(
            "segment", privacy.laplace_noised("users", 0.5, seed, key=["segment"]).alias("noised")).collect()}

    one_partition, many = noised(groups.coalesce(1)), noised(groups.repartition(7, "users"))
    assert one_partition == many and len(set(one_partition.values())) > 1900
    assert one_partition != noised(groups, seed=8)
    values = list(one_partition.values())
    mean = sum(values) / len(values)
    assert abs(mean - 100.0) < 0.3 and 6.0 < sum((v - mean) ** 2 for v in values) / len(values) < 10.0


def test_no_epsilon_means_no_noise_and_counts_stay_whole_and_non_negative(spark):
    frame = spark.createDataFrame([(0,), (3,), (1000,)], "users long")

    def by_count(column):
        """``column`` per original count, keyed so that no row order is assumed."""
        return {r["users"]: r["out"] for r in frame.select("users", column.alias("out")).collect()}

    unchanged = by_count(privacy.laplace_noised("users", None, 1))
    assert unchanged == {0: 0.0, 3: 3.0, 1000: 1000.0} and all(isinstance(v, float) for v in unchanged.values())
    assert by_count(privacy.noised_count("users", None, 1)) == {0: 0, 3: 3, 1000: 1000}
    noisy = frame.select(privacy.noised_count(F.col("users"), 0.1, 3).alias("n"))
    assert dict(noisy.dtypes)["n"] == "bigint"
    values = by_count(privacy.noised_count(F.col("users"), 0.1, 3))
    assert all(v >= 0 for v in values.values()) and values != {0: 0, 3: 3, 1000: 1000}


@pytest.mark.parametrize("epsilon", [0, -1.0, float("inf"), float("nan"), "1"])
def test_a_bad_epsilon_is_refused(epsilon):
    with pytest.raises(ValueError, match="epsilon must be a positive number"):
        privacy.laplace_noised("users", epsilon, 1)
