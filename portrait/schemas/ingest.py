"""Contracts of the ingest bookkeeping tables: quarantine, ingest runs and the identity graph with its
merge log."""

from __future__ import annotations

from pyspark.sql import types as T

from portrait.schemas.contract import TableContract, _col

QUARANTINE = TableContract(
    name="quarantine",
    description="Ingested rows that broke a validation rule: one row per distinct bad source row, never loaded.",
    schema=T.StructType(
        [
            _col("quarantine_id", T.StringType(), "sha2 of format, source file and raw row: the deduplication key, the same in every run.", False),
            _col("ingest_run_id", T.StringType(), "Ingest run that first quarantined the row (see ingest_runs).", False),
            _col("format", T.StringType(), "Source format: taobao, retailrocket, rees46 or generic.", False),
            _col("source_file", T.StringType(), "File the row was read from (full URI).", False),
            _col("raw_row", T.StringType(), "The row as read: the text line or CSV record (docs/INGEST.md, Formats), or the record as JSON for Parquet.", False),
            _col("rule", T.StringType(), "First validation rule the row broke, e.g. unknown_event_type.", False),
            _col("detail", T.StringType(), "What was wrong, naming the column and value.", False),
            _col("quarantined_at", T.TimestampType(), "When the row was first quarantined (UTC instant).", False),
        ]
    ),
    key=("quarantine_id",),
    checks=(("rule_not_empty", "length(rule) > 0"),),
    person_text_columns=("raw_row", "detail"),  # detail quotes source values of the row
)

INGEST_RUNS = TableContract(
    name="ingest_runs",
    description="One row per committed ingest run: what was read, accepted, duplicate and quarantined.",
    schema=T.StructType(
        [
            _col("run_id", T.StringType(), "Ingest run id, also stored on the quarantine rows of the run.", False),
            _col("format", T.StringType(), "Source format: taobao, retailrocket, rees46 or generic.", False),
            _col("path", T.StringType(), "File, glob or folder given to the run.", False),
            _col("files", T.IntegerType(), "Number of files read.", False),
            _col("started_at", T.TimestampType(), "Run start (UTC instant).", False),
            _col("finished_at", T.TimestampType(), "Commit of the run's last table write (UTC instant).", False),
            _col("rows_read", T.LongType(), "Data rows read (header and blank lines not counted).", False),
            _col("rows_accepted", T.LongType(), "Valid rows newly added to clickstream.", False),
            _col("rows_duplicate", T.LongType(), "Valid rows already loaded, or repeated within the batch: not added.", False),
            _col("rows_quarantined", T.LongType(), "Rows that broke a rule and went to quarantine.", False),
            _col("quarantined_by_rule", T.MapType(T.StringType(), T.LongType(), True), "Quarantined rows per rule name.", False),
            _col("order_lines_accepted", T.LongType(), "Order lines newly added to orders (derived from purchase events).", False),
            _col("min_dt", T.DateType(), "Earliest event date among accepted rows; null if none."),
            _col("max_dt", T.DateType(), "Latest event date among accepted rows; features from here on may need a re-run."),
            _col("ignored_columns", T.ArrayType(T.StringType(), True), "Source columns present in the files but not used (schema drift).", False),
            _col("missing_optional_columns", T.ArrayType(T.StringType(), True), "Optional source columns absent from the files, loaded as null.", False),
        ]
    ),
    key=("run_id",),
    checks=(("counts_add_up", "rows_read = rows_accepted + rows_duplicate + rows_quarantined"),),
)

IDENTITY_GRAPH = TableContract(
    name="identity_graph",
    description="Identity stitching: the person each user id and device/cookie id belongs to (rebuilt from clickstream).",
    schema=T.StructType(
        [
            _col("id", T.StringType(), "A user_id or an anonymous_id of clickstream.", False),
            _col("id_type", T.StringType(), "user or anonymous.", False),
            _col("person_id", T.StringType(), "Stitched person: the smallest user_id of the id's connected component.", False),
            _col("component_user_ids", T.IntegerType(), "Number of user ids in the component (at most identity.max_ids_per_person).", False),
            _col("component_anonymous_ids", T.IntegerType(), "Number of anonymous ids in the component.", False),
        ]
    ),
    key=("id_type", "id"),
    checks=(("id_type_known", "id_type IN ('user', 'anonymous')"),),
    person_columns=("id", "person_id"),
)

IDENTITY_MERGE_LOG = TableContract(
    name="identity_merge_log",
    description="Identity decisions, each logged once by the first build taking it: merges, refused merges, exclusions.",
    schema=T.StructType(
        [
            _col("build_id", T.StringType(), "First identity build that took the decision.", False),
            _col("built_at", T.TimestampType(), "When that build ran (UTC instant).", False),
            _col("id", T.StringType(), "The user or anonymous id concerned.", False),
            _col("id_type", T.StringType(), "user or anonymous.", False),
            _col("action", T.StringType(), "merged (user id joined another person), refused_over_merge or excluded.", False),
            _col("person_id", T.StringType(), "Person the id was merged into; null when refused or excluded."),
            _col("linked_user_ids", T.IntegerType(), "User ids the id was linked to (directly for a device, via the component otherwise).", False),
            _col("reason", T.StringType(), "Why, in words, with the limit or rule applied.", False),
        ]
    ),
    key=("id_type", "id", "action", "person_id"),
    checks=(("action_known", "action IN ('merged', 'refused_over_merge', 'excluded')"),),
    person_columns=("id", "person_id"),
)

INGEST_TABLES: tuple[TableContract, ...] = (QUARANTINE, INGEST_RUNS, IDENTITY_GRAPH, IDENTITY_MERGE_LOG)
