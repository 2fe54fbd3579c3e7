"""Identity stitching: anonymous events attributed after login, over-merges refused and logged, stable ids."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.testing import assertDataFrameEqual

from portrait.config import IdentityConfig
from portrait.ingest.identity import IdentityError, build_identity, stitch_person_id

AT = dt.datetime(2026, 11, 27, tzinfo=dt.timezone.utc)
T0 = dt.datetime(2026, 11, 20, 10, 0)
SETTINGS = IdentityConfig(max_ids_per_person=3, excluded_pattern="^test-")


def _clicks(spark, rows):
    """(event_id, user_id, anonymous_id, minutes after T0) → minimal clickstream rows."""
    return spark.createDataFrame(
        [(e, u, a, T0 + dt.timedelta(minutes=m), "view") for e, u, a, m in rows],
        "event_id string, user_id string, anonymous_id string, event_time timestamp, event_type string",
    )


# Devices: d1 anonymous then logs in as u1; d7 shared by u7 and u8 (merged, 2 <= 3); "tablet" used by four
# users (refused); d2/d3/d4 chain u21-u22-u23-u24 (each device <= 3 users, component of 4: refused);
# test-rig excluded by pattern; d9 never logs in.
EVENTS = [
    ("e1", None, "d1", 0), ("e2", None, "d1", 1), ("e3", "u1", "d1", 2), ("e4", "u1", None, 3),
    ("e5", "u8", "d7", 0), ("e6", "u7", "d7", 5), ("e7", None, "d7", 6),
    ("e8", "u31", "tablet", 0), ("e9", "u32", "tablet", 1), ("e10", "u33", "tablet", 2), ("e11", "u34", "tablet", 3),
    ("e12", None, "tablet", 4),
    ("e13", "u21", "d2", 0), ("e14", "u22", "d2", 1), ("e15", "u22", "d3", 2), ("e16", "u23", "d3", 3),
    ("e17", "u23", "d4", 4), ("e18", "u24", "d4", 5), ("e19", None, "d4", 6),
    ("e20", "u41", "test-rig", 0), ("e21", "u42", "test-rig", 1), ("e22", None, "test-rig", 2),
    ("e23", None, "d9", 0),
]


@pytest.fixture
def built(spark):
    build = build_identity(_clicks(spark, EVENTS), SETTINGS, "b1", AT)
    yield build
    build.release()


def test_graph_links_devices_to_users_and_names_the_person_by_the_smallest_user_id(spark, built):
    expected = spark.createDataFrame([
        ("u1", "user", "u1", 1, 1), ("d1", "anonymous", "u1", 1, 1),
        ("u7", "user", "u7", 2, 1), ("u8", "user", "u7", 2, 1), ("d7", "anonymous", "u7", 2, 1),
    ], "id string, id_type string, person_id string, component_user_ids int, component_anonymous_ids int")
    # ids of the refused tablet, the refused chain and the excluded rig are absent: each user is their own
    assertDataFrameEqual(built.graph, expected)
    assert (built.persons, built.stitched_anonymous_ids, built.merged_user_ids) == (2, 2, 1)


def test_anonymous_events_before_login_are_attributed_to_the_user(spark, built):
    stitched = _clicks(spark, EVENTS).transform(stitch_person_id(built.graph))
    users = {r["event_id"]: r["user_id"] for r in stitched.collect()}
    assert [users[e] for e in ("e1", "e2", "e3", "e4")] == ["u1", "u1", "u1", "u1"]
    # the shared household device: both logins and its anonymous event belong to the smaller user id
    assert [users[e] for e in ("e5", "e6", "e7")] == ["u7", "u7", "u7"]
    # refused and excluded devices: users stay apart, anonymous events stay anonymous; d9 never logged in
    assert [users[e] for e in ("e8", "e9", "e12", "e13", "e18", "e19", "e20", "e21", "e22", "e23")] == [
        "u31", "u32", None, "u21", "u24", None, "u41", "u42", None, None]
    assert stitched.columns == ["event_id", "user_id", "anonymous_id", "event_time", "event_type"]


def test_over_merges_are_refused_and_logged_and_excluded_ids_never_link(spark, built):
    log = {(r["id"], r["action"]): (r["person_id"], r["linked_user_ids"], r["reason"]) for r in built.log.collect()}
    assert log[("tablet", "refused_over_merge")][:2] == (None, 4)
    assert "more than identity.max_ids_per_person = 3" in log[("tablet", "refused_over_merge")][2]
    chain = {i for i, a in log if a == "refused_over_merge"} - {"tablet"}
    assert chain == {"u21", "u22", "u23", "u24", "d2", "d3", "d4"}
    assert log[("d4", "refused_over_merge")][1] == 4
    assert log[("test-rig", "excluded")][:2] == (None, 2)
    assert log[("u8", "merged")][:2] == ("u7", 2)
    assert len(log) == 1 + 7 + 1 + 1
    assert [r["build_id"] for r in built.log.select("build_id").distinct().collect()] == ["b1"]  # exactly one


def test_person_ids_are_the_same_across_runs_and_unaffected_by_unrelated_new_events(spark, built):
    again = build_identity(_clicks(spark, EVENTS), SETTINGS, "b2", AT)
    assertDataFrameEqual(again.graph, built.graph)
    more = build_identity(_clicks(spark, EVENTS + [("e30", "u50", "d50", 9), ("e31", "u0", "d0", 9)]),
                          SETTINGS, "b3", AT)
    old_ids = built.graph.select("id", "id_type")
    assertDataFrameEqual(more.graph.join(old_ids, on=["id", "id_type"], how="inner"), built.graph)
    for build in (again, more):
        build.release()


def test_orders_are_stitched_by_user_id(spark, built):
    orders = spark.createDataFrame([("o1", "u8"), ("o2", "u99")], "order_id string, user_id string")
    assert sorted(tuple(r) for r in orders.transform(stitch_person_id(built.graph)).collect()) == [
        ("o1", "u7"), ("o2", "u99")]


def test_chains_longer_than_the_iteration_limit_are_an_error(spark):
    chain = [(f"e{i}", f"u{i}", f"d{i // 2}", i) for i in range(8)]  # u0-d0-u1 u2-d1-u3 ... separate pairs
    chain += [(f"f{i}", f"u{2 * i + 1}", f"d{i}x", 0) for i in range(3)] + [
        (f"g{i}", f"u{2 * i + 2}", f"d{i}x", 0) for i in range(3)]  # link pair i to pair i+1: one long chain
    settings = IdentityConfig(max_ids_per_person=100, max_iterations=1)
    with pytest.raises(IdentityError, match="raise identity.max_iterations"):
        build_identity(_clicks(spark, chain), settings, "b", AT)
