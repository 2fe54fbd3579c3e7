"""Identity stitching: link device/cookie ids to the users that logged in on them, and name each person.

The graph's nodes are user ids and anonymous ids; an edge joins an anonymous id and a user id seen on the
same clickstream event. Each connected component is one person, and its **person id is the smallest
user id in the component** (string order). The rule is deterministic, so a rebuild over the same events
gives the same ids, and a person's id only changes when its component merges with one holding a smaller
user id.

Guards against over-merging (a shop-floor tablet or a test device would otherwise fuse many customers):

* ids listed in ``identity.excluded_ids`` or matching ``identity.excluded_pattern`` never link anything
  (logged as ``excluded``);
* an anonymous id seen with more than ``identity.max_ids_per_person`` user ids links nothing (logged as
  ``refused_over_merge``): its events stay anonymous and its users stay apart;
* a component that still holds more than ``max_ids_per_person`` user ids (a chain of devices) is not
  merged: its user ids stay separate persons and its anonymous ids stay unstitched (logged).

Components come from label propagation on DataFrames (minimum label, at most ``identity.max_iterations``
rounds, lineage cut with ``localCheckpoint`` each round); no graph library is needed.

:func:`stitch_person_id` applies the graph to clickstream or order rows: ``user_id`` becomes the person id,
and anonymous events of a stitched device get their person.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from portrait.config import IdentityConfig

Transformation = Callable[[DataFrame], DataFrame]


class IdentityError(RuntimeError):
    """The identity graph could not be built as configured; the message says which setting to change."""


def connected_components(edges: DataFrame, max_iterations: int) -> DataFrame:
    """Label each user id of ``edges`` (anonymous_id, user_id) with the smallest user id of its component.

    Returns columns ``user_id``, ``person_id``. Raises :class:`IdentityError` when the labels still change
    after ``max_iterations`` rounds (a chain longer than that; raise ``identity.max_iterations``).
    """
    labels = edges.select("user_id").distinct().withColumn("label", F.col("user_id")).localCheckpoint()
    for _ in range(max_iterations):
        per_anonymous = (
            edges.join(labels, on="user_id", how="inner")
            .groupBy("anonymous_id").agg(F.min("label").alias("label"))
        )
        updated = (
            edges.join(per_anonymous, on="anonymous_id", how="inner")
            .groupBy("user_id").agg(F.min("label").alias("new_label"))
            .localCheckpoint()
        )
        changed = (
            updated.join(labels, on="user_id", how="inner").where(F.col("new_label") != F.col("label")).count()
        )
        labels = updated.withColumnRenamed("new_label", "label")
        if changed == 0:
            return labels.withColumnRenamed("label", "person_id")
    raise IdentityError(
        f"identity components did not settle in {max_iterations} rounds (ids chained through many devices); "
        "raise identity.max_iterations or exclude the shared ids (identity.excluded_ids / excluded_pattern)"
    )


def _excluded(column: str, settings: IdentityConfig) -> Column:
    condition = F.col(column).isin(*settings.excluded_ids) if settings.excluded_ids else F.lit(False)
    if settings.excluded_pattern:
        condition = condition | F.col(column).rlike(settings.excluded_pattern)
    return condition


@dataclass
class IdentityBuild:
    """The result of one build: the graph rows, the merge-log rows and a few counts."""

    build_id: str
    graph: DataFrame
    log: DataFrame
    persons: int = 0
    stitched_anonymous_ids: int = 0
    merged_user_ids: int = 0
    refused_ids: int = 0
    excluded_ids: int = 0
    log_rows: int = 0

    def render(self) -> str:
        return (f"identity {self.build_id}: {self.persons:,} persons, {self.stitched_anonymous_ids:,} anonymous ids "
                f"stitched, {self.merged_user_ids:,} user ids merged, {self.refused_ids:,} ids refused "
                f"(over-merge), {self.excluded_ids:,} excluded")

    def release(self) -> None:
        self.graph.unpersist()
        self.log.unpersist()


_WHY_EXCLUDED = "listed in identity.excluded_ids or matching identity.excluded_pattern"


def _excluded_log(pairs: DataFrame, settings: IdentityConfig) -> DataFrame:
    """Merge-log rows (without build columns) of the excluded ids among the linking ``pairs``."""
    return (
        pairs.where(_excluded("anonymous_id", settings))
        .groupBy(F.col("anonymous_id").alias("id")).agg(F.count("user_id").cast("int").alias("linked_user_ids"))
        .withColumn("id_type", F.lit("anonymous"))
        .unionByName(
            pairs.where(_excluded("user_id", settings))
            .groupBy(F.col("user_id").alias("id")).agg(F.lit(1).alias("linked_user_ids"))
            .withColumn("id_type", F.lit("user"))
        )
        .select("id", "id_type", F.lit("excluded").alias("action"), F.lit(None).cast("string").alias("person_id"),
                "linked_user_ids", F.lit(_WHY_EXCLUDED).alias("reason"))
    )


def _unshared_edges(kept: DataFrame, limit: int) -> tuple[DataFrame, DataFrame]:
    """The edges that may link (checkpointed), and the merge-log rows of the anonymous ids refused because
    they were seen with more than ``limit`` user ids."""
    degree = kept.groupBy("anonymous_id").agg(F.count("user_id").cast("int").alias("linked_user_ids"))
    shared = degree.where(F.col("linked_user_ids") > limit)
    refused_devices = shared.select(
        F.col("anonymous_id").alias("id"), F.lit("anonymous").alias("id_type"),
        F.lit("refused_over_merge").alias("action"), F.lit(None).cast("string").alias("person_id"),
        "linked_user_ids",
        F.concat(F.lit("anonymous id seen with "), F.col("linked_user_ids").cast("string"),
                 F.lit(f" user ids, more than identity.max_ids_per_person = {limit}; not linked")).alias("reason"),
    )
    edges = kept.join(shared.select("anonymous_id"), on="anonymous_id", how="left_anti").localCheckpoint()
    return edges, refused_devices


def _component_nodes(edges: DataFrame, max_iterations: int) -> DataFrame:
    """Every id of ``edges`` with its person id and the numbers of user and anonymous ids of its component."""
    persons = connected_components(edges, max_iterations)
    members = edges.join(persons, on="user_id", how="inner")
    sizes = members.groupBy("person_id").agg(
        F.count_distinct("user_id").cast("int").alias("component_user_ids"),
        F.count_distinct("anonymous_id").cast("int").alias("component_anonymous_ids"),
    )
    return (
        members.select(F.col("user_id").alias("id"), F.lit("user").alias("id_type"), "person_id")
        .unionByName(members.select(F.col("anonymous_id").alias("id"), F.lit("anonymous").alias("id_type"),
                                    "person_id"))
        .distinct()
        .join(sizes, on="person_id", how="inner")
    )


def _refused_components_log(too_big: DataFrame, limit: int) -> DataFrame:
    """Merge-log rows of the ids of components holding more than ``limit`` user ids (not merged)."""
    return too_big.select(
        "id", "id_type", F.lit("refused_over_merge").alias("action"), F.lit(None).cast("string").alias("person_id"),
        F.col("component_user_ids").alias("linked_user_ids"),
        F.concat(F.lit("component links "), F.col("component_user_ids").cast("string"),
                 F.lit(f" user ids through several devices, more than identity.max_ids_per_person = {limit}; "
                       "not merged")).alias("reason"),
    )


def _merged_log(graph: DataFrame) -> DataFrame:
    """Merge-log rows of the user ids that joined another user's person."""
    return graph.where((F.col("id_type") == "user") & (F.col("id") != F.col("person_id"))).select(
        "id", "id_type", F.lit("merged").alias("action"), "person_id",
        F.col("component_user_ids").alias("linked_user_ids"),
        F.concat(F.lit("shares devices with "), (F.col("component_user_ids") - 1).cast("string"),
                 F.lit(" other user id(s); person id is the smallest user id")).alias("reason"),
    )


def _summary(build_id: str, graph: DataFrame, log: DataFrame) -> IdentityBuild:
    counts = graph.groupBy().agg(
        F.count_distinct("person_id").alias("persons"),
        F.count(F.when(F.col("id_type") == "anonymous", True)).alias("anonymous"),
    ).first()
    actions = {r["action"]: r["count"] for r in log.groupBy("action").count().collect()}
    return IdentityBuild(
        build_id=build_id, graph=graph, log=log, persons=counts["persons"],
        stitched_anonymous_ids=counts["anonymous"], merged_user_ids=actions.get("merged", 0),
        refused_ids=actions.get("refused_over_merge", 0), excluded_ids=actions.get("excluded", 0),
        log_rows=sum(actions.values()),
    )


def build_identity(clickstream: DataFrame, settings: IdentityConfig, build_id: str,
                   at: dt.datetime) -> IdentityBuild:
    """Build the identity graph (``identity_graph`` rows) and merge log from clickstream rows.

    Only events carrying both ``user_id`` and ``anonymous_id`` link ids. See the module docstring for the
    person id rule and the guards. The returned frames are persisted; call ``release()`` when written.
    """
    limit = settings.max_ids_per_person
    pairs = (
        clickstream.where(F.col("user_id").isNotNull() & F.col("anonymous_id").isNotNull())
        .select("anonymous_id", "user_id").distinct()
        .localCheckpoint()
    )
    excluded = _excluded_log(pairs, settings)
    kept = pairs.where(~_excluded("anonymous_id", settings) & ~_excluded("user_id", settings))
    edges, refused_devices = _unshared_edges(kept, limit)
    nodes = _component_nodes(edges, settings.max_iterations)
    too_big = F.col("component_user_ids") > limit
    graph = nodes.where(~too_big).select(
        "id", "id_type", "person_id", "component_user_ids", "component_anonymous_ids"
    ).persist(StorageLevel.MEMORY_AND_DISK)
    log = (
        excluded.unionByName(refused_devices)
        .unionByName(_refused_components_log(nodes.where(too_big), limit))
        .unionByName(_merged_log(graph))
        .select(F.lit(build_id).alias("build_id"), F.lit(at).cast("timestamp").alias("built_at"), "*")
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    return _summary(build_id, graph, log)


def stitch_person_id(identity_graph: DataFrame) -> Transformation:
    """Replace ``user_id`` with the stitched person id; fill it for anonymous events of a stitched device.

    Works on clickstream rows (``user_id``, ``anonymous_id``) and on rows with only ``user_id`` (orders,
    reviews). Ids absent from the graph keep their value: an unlinked user is their own person, an
    unstitched anonymous event stays anonymous. The output has exactly the input's columns.

    Example: ``clickstream.transform(stitch_person_id(graph))``.
    """
    users = identity_graph.where(F.col("id_type") == "user").select(
        F.col("id").alias("_user"), F.col("person_id").alias("_person_of_user"))
    devices = identity_graph.where(F.col("id_type") == "anonymous").select(
        F.col("id").alias("_device"), F.col("person_id").alias("_person_of_device"))

    def transform(rows: DataFrame) -> DataFrame:
        out = rows.join(users, on=F.col("user_id") == F.col("_user"), how="left")
        person = F.coalesce(F.col("_person_of_user"), F.col("user_id"))
        if "anonymous_id" in rows.columns:
            out = out.join(devices, on=F.col("anonymous_id") == F.col("_device"), how="left")
            person = F.coalesce(F.col("_person_of_user"), F.col("user_id"), F.col("_person_of_device"))
        return out.withColumn("user_id", person).select(*rows.columns)

    return transform
