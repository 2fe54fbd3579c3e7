"""Monitoring: PSI arithmetic, binning, drift rows and volume checks on hand-made populations."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from portrait.monitor import bin_counts, bin_edges, drift_rows, psi, volume_row

D = dt.date(2026, 11, 20)


def test_psi_matches_the_hand_computed_value():
    expected = 0.5 * 0.0 + (0.3 - 0.5) * math.log(0.3 / 0.5) + (0.7 - 0.5) * math.log(0.7 / 0.5)
    assert psi([50, 50], [30, 70]) == pytest.approx(expected, abs=1e-12)
    assert psi([1, 2, 3], [2, 4, 6]) == 0.0


def test_psi_floors_empty_bins_instead_of_dividing_by_zero():
    value = psi([100, 0], [50, 50])
    assert math.isfinite(value) and value > 1.0


def test_psi_rejects_mismatched_or_empty_vectors():
    with pytest.raises(ValueError, match="same bins"):
        psi([1, 2], [1])
    with pytest.raises(ValueError, match="at least one observation"):
        psi([0, 0], [1, 1])


def test_bins_are_cut_on_the_reference_and_nulls_get_their_own_bin(spark):
    reference = spark.createDataFrame([(float(v),) for v in range(1, 11)], "x double")
    edges = bin_edges(reference, ["x"], bins=2)
    assert edges == {"x": [5.0]}
    current = spark.createDataFrame([(1.0,), (5.0,), (6.0,), (9.0,), (None,)], "x double")
    assert bin_counts(current, edges) == {"x": [2, 2, 1]}


def test_each_column_is_counted_on_its_own_edges_and_empty_bins_count_zero(spark):
    current = spark.createDataFrame([(1.0, 7), (2.0, None), (30.0, 8), (None, 9)], "spend double, visits long")
    edges = {"spend": [5.0, 10.0], "visits": [8.0]}
    assert bin_counts(current, edges) == {"spend": [2, 0, 1, 1], "visits": [2, 1, 1]}


def test_same_population_is_stable_and_a_shifted_one_breaches(spark):
    reference = spark.createDataFrame([(float(v), v % 3) for v in range(200)], "spend double, visits long")
    shifted = spark.createDataFrame([(float(v) + 150.0, v % 3) for v in range(200)], "spend double, visits long")
    stable = drift_rows(D, "previous day", reference, reference, ["spend", "visits"], threshold=0.2)
    assert [(r[1], r[3], r[5]) for r in stable] == [("spend", 0.0, False), ("visits", 0.0, False)]
    moved = drift_rows(D, "previous day", reference, shifted, ["spend", "visits"], threshold=0.2)
    assert moved[0][1] == "spend" and moved[0][3] > 0.2 and moved[0][5] is True
    assert moved[1][3] == 0.0 and moved[1][5] is False
    assert all(row[6] == D and row[0] == "psi" for row in moved)


def test_an_empty_side_gives_no_psi_and_no_breach(spark):
    reference = spark.createDataFrame([(1.0,), (2.0,)], "x double")
    empty = spark.createDataFrame([], "x double")
    (row,) = drift_rows(D, "training reference", reference, empty, ["x"], threshold=0.1)
    assert row[3] is None and row[5] is False


def test_volume_check_compares_with_the_trailing_mean():
    assert volume_row(D, 150, [100, 100], 0.3)[3:] == (0.5, 0.3, True, D)
    assert volume_row(D, 110, [100, 100], 0.3)[3:] == (pytest.approx(0.1), 0.3, False, D)
    assert volume_row(D, 10, [], 0.3)[2:] == ("no history", None, 0.3, False, D)
