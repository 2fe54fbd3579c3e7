"""Every table's contract: columns, types, nullability, partitioning and column meanings.

This module is the single source for table layouts. ``docs/DATA.md`` documents the same contracts for
people, and a test keeps the two in step. Reads pass these schemas explicitly; writes select exactly
these columns, so a table never drifts by accident.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import types as T

# Event types of the clickstream contract.  "buy" is the purchase event; orders carry the money.
EVENT_TYPES: tuple[str, ...] = ("view", "search", "cart", "remove_cart", "fav", "buy")
ORDER_STATUSES: tuple[str, ...] = ("paid", "refunded", "cancelled")


def _col(name: str, data_type: T.DataType, comment: str, nullable: bool = True) -> T.StructField:
    return T.StructField(name, data_type, nullable, metadata={"comment": comment})


@dataclass(frozen=True)
class TableContract:
    """A Delta table's layout: schema with column comments, partition columns and key."""

    name: str
    description: str
    schema: T.StructType
    partition_by: tuple[str, ...] = ()
    key: tuple[str, ...] = ()
    optional: bool = False
    # Delta CHECK constraints: (name, SQL condition every row must satisfy); added when the table is created.
    # One constraint per table where possible: each one is a separate commit at creation.
    checks: tuple[tuple[str, str], ...] = ()

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.schema.fields]

    def comment(self, column: str) -> str:
        return self.schema[column].metadata.get("comment", "")


CLICKSTREAM = TableContract(
    name="clickstream",
    description="Behaviour events from web and app: one row per event.",
    schema=T.StructType(
        [
            _col("event_id", T.StringType(), "Unique id of the event; the deduplication key.", False),
            _col("user_id", T.StringType(), "Logged-in customer id; null for anonymous visitors."),
            _col("anonymous_id", T.StringType(), "Device or cookie id; links anonymous events to a user."),
            _col("session_id", T.StringType(), "Session id from the tracker, when it sends one."),
            _col("event_time", T.TimestampType(), "When the event happened (UTC instant).", False),
            _col("event_type", T.StringType(), "One of view, search, cart, remove_cart, fav, buy.", False),
            _col("item_id", T.StringType(), "Item acted on; null for searches."),
            _col("category_id", T.StringType(), "Leaf category of the item."),
            _col("brand", T.StringType(), "Brand of the item."),
            _col("price", T.DoubleType(), "Listed unit price at event time, in the shop currency."),
            _col("search_query", T.StringType(), "Raw search text for search events (any language)."),
            _col("channel", T.StringType(), "Acquisition channel: organic, ads, email, social, direct."),
            _col("platform", T.StringType(), "Client platform: app, web, mini_program."),
            _col("dt", T.DateType(), "Event date in the configured time zone; partition column.", False),
        ]
    ),
    partition_by=("dt",),
    key=("event_id",),
    checks=(
        ("valid_event", "event_type IN ('view', 'search', 'cart', 'remove_cart', 'fav', 'buy') "
                        "AND (price IS NULL OR price >= 0)"),
    ),
)

ORDERS = TableContract(
    name="orders",
    description="Order lines: one row per item line of an order, with the order's status.",
    schema=T.StructType(
        [
            _col("order_id", T.StringType(), "Order id; an order has one or more lines.", False),
            _col("line_number", T.IntegerType(), "Line number within the order, from 1.", False),
            _col("user_id", T.StringType(), "Customer who placed the order.", False),
            _col("order_time", T.TimestampType(), "When the order was placed (UTC instant).", False),
            _col("status", T.StringType(), "paid, refunded or cancelled (latest known status).", False),
            _col("item_id", T.StringType(), "Item bought on this line.", False),
            _col("category_id", T.StringType(), "Leaf category of the item."),
            _col("quantity", T.IntegerType(), "Units bought on this line (at least 1).", False),
            _col("unit_price", T.DoubleType(), "Price per unit before discount.", False),
            _col("discount", T.DoubleType(), "Discount on the whole line, in currency (0 if none).", False),
            _col("dt", T.DateType(), "Order date in the configured time zone; partition column.", False),
        ]
    ),
    partition_by=("dt",),
    key=("order_id", "line_number"),
    checks=(
        ("valid_order_line", "line_number >= 1 AND quantity >= 1 AND unit_price >= 0 AND discount >= 0 "
                             "AND status IN ('paid', 'refunded', 'cancelled')"),
    ),
)

ITEMS = TableContract(
    name="items",
    description="Item catalogue: one row per item.",
    schema=T.StructType(
        [
            _col("item_id", T.StringType(), "Item id.", False),
            _col("title", T.StringType(), "Item title as shown in the shop (any language)."),
            _col("category_id", T.StringType(), "Leaf category id."),
            _col("category_path", T.StringType(), "Category path from root, separated by ' > '."),
            _col("brand", T.StringType(), "Brand name."),
            _col("price", T.DoubleType(), "Current list price."),
        ]
    ),
    key=("item_id",),
    optional=True,
)

USERS = TableContract(
    name="users",
    description="Registered customers: one row per user.",
    schema=T.StructType(
        [
            _col("user_id", T.StringType(), "Customer id.", False),
            _col("signup_date", T.DateType(), "Registration date."),
            _col("gender", T.StringType(), "Self-declared gender: f, m or null."),
            _col("age_band", T.StringType(), "Age band such as 18-24, 25-34."),
            _col("city_tier", T.StringType(), "City tier 1-5 of the delivery address."),
        ]
    ),
    key=("user_id",),
    optional=True,
)

REVIEWS = TableContract(
    name="reviews",
    description="Product reviews written by customers.",
    schema=T.StructType(
        [
            _col("review_id", T.StringType(), "Review id.", False),
            _col("user_id", T.StringType(), "Author.", False),
            _col("item_id", T.StringType(), "Reviewed item.", False),
            _col("review_time", T.TimestampType(), "When the review was written (UTC instant).", False),
            _col("rating", T.IntegerType(), "Star rating 1-5."),
            _col("review_text", T.StringType(), "Free text of the review (any language)."),
            _col("dt", T.DateType(), "Review date in the configured time zone; partition column.", False),
        ]
    ),
    partition_by=("dt",),
    key=("review_id",),
    optional=True,
)

USER_FEATURES = TableContract(
    name="user_features",
    description="Per-user features as of the end of date dt, using only data up to then.",
    schema=T.StructType(
        [
            _col("user_id", T.StringType(), "Customer id.", False),
            _col("days_since_first_event", T.IntegerType(), "Days from the first event in the 90 days to dt (tenure proxy).", False),
            _col("days_since_last_event", T.IntegerType(), "Days from the last event in the 90 days to dt (0 = on dt).", False),
            _col("days_since_last_order", T.IntegerType(), "Recency: days from the last paid order to dt; null if none."),
            _col("orders_30d", T.LongType(), "Frequency: distinct paid orders in the 30 days to dt.", False),
            _col("spend_30d", T.DoubleType(), "Monetary: paid spend after discount in the 30 days to dt.", False),
            _col("orders_90d", T.LongType(), "Distinct paid orders in the 90 days to dt.", False),
            _col("spend_90d", T.DoubleType(), "Paid spend after discount in the 90 days to dt.", False),
            _col("views_7d", T.LongType(), "View events in the 7 days to dt.", False),
            _col("searches_7d", T.LongType(), "Search events in the 7 days to dt.", False),
            _col("carts_7d", T.LongType(), "Add-to-cart events in the 7 days to dt.", False),
            _col("favs_7d", T.LongType(), "Favourite events in the 7 days to dt.", False),
            _col("buys_7d", T.LongType(), "Purchase events in the 7 days to dt.", False),
            _col("views_30d", T.LongType(), "View events in the 30 days to dt.", False),
            _col("searches_30d", T.LongType(), "Search events in the 30 days to dt.", False),
            _col("carts_30d", T.LongType(), "Add-to-cart events in the 30 days to dt.", False),
            _col("favs_30d", T.LongType(), "Favourite events in the 30 days to dt.", False),
            _col("buys_30d", T.LongType(), "Purchase events in the 30 days to dt.", False),
            _col("active_days_30d", T.LongType(), "Days with at least one event in the 30 days to dt.", False),
            _col("top_category_30d", T.StringType(), "Category with most events in the 30 days to dt."),
            _col("text_document", T.StringType(), "Space-separated tokens of the user's searches, viewed and bought item titles and reviews in the 30 days to dt (segmented, lower-case, capped)."),
            _col("dt", T.DateType(), "Feature date: features describe the user as of the end of this date.", False),
        ]
    ),
    partition_by=("dt",),
    key=("user_id", "dt"),
)

USER_PORTRAIT = TableContract(
    name="user_portrait",
    description="One row per user per date: segments, interests, propensity and tags for BI and marketing.",
    schema=T.StructType(
        [
            _col("user_id", T.StringType(), "Customer id (restricted: raw identifier).", False),
            _col("lifecycle_stage", T.StringType(), "new, active, sleeping or churned, from recency and tenure.", False),
            _col("rfm_segment", T.StringType(), "RFM segment code, e.g. champions, at_risk, hibernating.", False),
            _col("recency_score", T.IntegerType(), "R score 1-5 (5 = bought most recently); 1 if never bought.", False),
            _col("frequency_score", T.IntegerType(), "F score 1-5 over 90-day paid order count.", False),
            _col("monetary_score", T.IntegerType(), "M score 1-5 over 90-day paid spend.", False),
            _col("top_category", T.StringType(), "Category with most events in the last 30 days."),
            _col("purchase_propensity", T.DoubleType(), "Model probability of a paid order in the label horizon after dt.", False),
            _col("propensity_decile", T.IntegerType(), "Decile of purchase_propensity among users on dt (10 = highest).", False),
            _col("tags", T.ArrayType(T.StringType(), True), "Tag codes that hold for the user on dt, for audience selection.", False),
            _col("model_name", T.StringType(), "Model that produced purchase_propensity.", False),
            _col("model_run_id", T.StringType(), "MLflow run id of that model.", False),
            _col("feature_dt", T.DateType(), "Date of the features the portrait is built from.", False),
            _col("dt", T.DateType(), "Portrait date; partition column.", False),
            _col("reason_codes", T.ArrayType(T.StringType(), True), "Top three reasons for purchase_propensity in words, each with its log-odds contribution, e.g. '3 add-to-cart events in the last 7 days (+0.42)'; empty when the model has no explanation.", False),
        ]
    ),
    partition_by=("dt",),
    key=("user_id", "dt"),
)

QUARANTINE = TableContract(
    name="quarantine",
    description="Ingested rows that broke a validation rule: one row per distinct bad source row, never loaded.",
    schema=T.StructType(
        [
            _col("quarantine_id", T.StringType(), "sha2 of format, source file and raw row: the deduplication key, the same in every run.", False),
            _col("ingest_run_id", T.StringType(), "Ingest run that first quarantined the row (see ingest_runs).", False),
            _col("format", T.StringType(), "Source format: taobao, retailrocket, rees46 or generic.", False),
            _col("source_file", T.StringType(), "File the row was read from (full URI).", False),
            _col("raw_row", T.StringType(), "The row as read: the text line, or the record as JSON for Parquet.", False),
            _col("rule", T.StringType(), "First validation rule the row broke, e.g. unknown_event_type.", False),
            _col("detail", T.StringType(), "What was wrong, naming the column and value.", False),
            _col("quarantined_at", T.TimestampType(), "When the row was first quarantined (UTC instant).", False),
        ]
    ),
    key=("quarantine_id",),
    checks=(("rule_not_empty", "length(rule) > 0"),),
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
)

JOB_RUNS = TableContract(
    name="job_runs",
    description="Run audit: one row per job run, written when it ends, to trace and replay any past output.",
    schema=T.StructType(
        [
            _col("run_id", T.StringType(), "Id of this job run.", False),
            _col("job", T.StringType(), "Job name: generate, features, train, score, daily, ingest, backfill.", False),
            _col("run_date", T.DateType(), "The --date the job ran for.", False),
            _col("status", T.StringType(), "succeeded or failed.", False),
            _col("started_at", T.TimestampType(), "Start (UTC instant).", False),
            _col("ended_at", T.TimestampType(), "End (UTC instant).", False),
            _col("rows_in", T.LongType(), "Rows the job read from its main input (e.g. user_features of the date)."),
            _col("rows_out", T.LongType(), "Rows the job wrote to its main output (e.g. user_portrait of the date)."),
            _col("input_versions", T.MapType(T.StringType(), T.LongType(), True), "Delta version of every input table the job read, by table name; replay reads these versions.", False),
            _col("output_versions", T.MapType(T.StringType(), T.LongType(), True), "Delta version of every table the job wrote, after its write.", False),
            _col("mlflow_run_id", T.StringType(), "MLflow run that trained (train) or produced the scores (score, daily)."),
            _col("error_message", T.StringType(), "Exception type and message of a failed run; null on success."),
            _col("environment", T.StringType(), "Configured environment: local, dev, prod or test.", False),
            _col("git_commit", T.StringType(), "Code version that ran (PORTRAIT_GIT_COMMIT or the checkout's HEAD)."),
            _col("config_fingerprint", T.StringType(), "Hash of the effective configuration.", False),
        ]
    ),
    key=("run_id",),
    checks=(("status_known", "status IN ('succeeded', 'failed')"),),
)

MONITORING = TableContract(
    name="monitoring",
    description="Drift and volume checks of each daily run: one row per check, subject and reference.",
    schema=T.StructType(
        [
            _col("check", T.StringType(), "psi (feature drift), score_psi (score drift) or volume (input events).", False),
            _col("subject", T.StringType(), "The feature, score or table checked.", False),
            _col("reference", T.StringType(), "What it was compared with: previous day, training reference, trailing mean.", False),
            _col("value", T.DoubleType(), "PSI, or relative change of volume; null when a side had no data."),
            _col("threshold", T.DoubleType(), "Configured limit for this check.", False),
            _col("breached", T.BooleanType(), "value above threshold (absolute change for volume).", False),
            _col("dt", T.DateType(), "Date checked; partition column.", False),
        ]
    ),
    partition_by=("dt",),
    key=("dt", "check", "subject", "reference"),
)

INPUT_TABLES: tuple[TableContract, ...] = (CLICKSTREAM, ORDERS, ITEMS, USERS, REVIEWS)
OUTPUT_TABLES: tuple[TableContract, ...] = (USER_FEATURES, USER_PORTRAIT)
INGEST_TABLES: tuple[TableContract, ...] = (QUARANTINE, INGEST_RUNS, IDENTITY_GRAPH, IDENTITY_MERGE_LOG)
OPERATIONS_TABLES: tuple[TableContract, ...] = (JOB_RUNS, MONITORING)
ALL_TABLES: dict[str, TableContract] = {
    t.name: t for t in INPUT_TABLES + OUTPUT_TABLES + INGEST_TABLES + OPERATIONS_TABLES
}
