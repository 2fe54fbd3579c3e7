"""Contracts of the operations tables: job runs, monitoring checks, erasure requests and tombstones."""

from __future__ import annotations

from pyspark.sql import types as T

from portrait.schemas.contract import TableContract, _col

JOB_RUNS = TableContract(
    name="job_runs",
    description="Run audit: one row per job run, written when it ends, to trace and replay any past output.",
    schema=T.StructType(
        [
            _col("run_id", T.StringType(), "Id of this job run.", False),
            _col("job", T.StringType(), "Task or job: ingest, features, score, monitor (the daily tasks), daily "
                 "(the daily run as a whole, also per backfill date), train.", False),
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

ERASURE_REQUESTS = TableContract(
    name="erasure_requests",
    description="Erasure audit: one row per `portrait forget` request that finished, updated when `portrait purge` deletes the files; holds no raw id.",
    schema=T.StructType(
        [
            _col("request_id", T.StringType(), "Id of the erasure request.", False),
            _col("person_keys", T.ArrayType(T.StringType(), False), "HMAC-SHA256 person key of each requested id (the key of key_fingerprint): proves which persons were erased without naming them.", False),
            _col("key_fingerprint", T.StringType(), "Short SHA-256 fingerprint of the pseudonymisation key used (tells key rotations apart; not the key).", False),
            _col("ids_requested", T.IntegerType(), "Distinct ids in the request.", False),
            _col("ids_erased", T.IntegerType(), "Distinct ids erased: the requested ones plus every id stitched to the same person.", False),
            _col("rows_deleted", T.MapType(T.StringType(), T.LongType(), False), "Rows deleted per table name (tables without any row of the persons: 0).", False),
            _col("models_marked", T.ArrayType(T.StringType(), False), "Registered model versions 'name/version' trained on the persons' data, tagged for retraining in MLflow.", False),
            _col("vacuumed", T.BooleanType(), "Whether forget ran VACUUM after the deletes (with privacy.vacuum_retention_hours); it removes the files of the erased rows only once they are older than the retention: see state.", False),
            _col("vacuum_retention_hours", T.IntegerType(), "Retention VACUUM used: files of the deleted rows are physically gone once they are this old.", False),
            _col("requested_at", T.TimestampType(), "When the request started (UTC instant).", False),
            _col("finished_at", T.TimestampType(), "When the deletes and marking finished (UTC instant): from then on no current version of any table holds the persons.", False),
            # Nullable, added after the first release: rows written before them hold null (state: removed).
            _col("state", T.StringType(), "removed: gone from the current version of every table, still in files older versions reference until the retention passes; purged: those files are deleted too (portrait purge, or forget with a zero retention)."),
            _col("purged_at", T.TimestampType(), "When the purge deleted the files of the erased rows (UTC instant); null until then."),
        ]
    ),
    key=("request_id",),
    checks=(("known_state", "state IS NULL OR state IN ('removed', 'purged')"),),
)

ERASURE_TOMBSTONES = TableContract(
    name="erasure_tombstones",
    description="Keyed hashes of every erased id: every writer drops their rows, so a run that read before an erasure cannot write the persons back after it.",
    schema=T.StructType(
        [
            _col("tombstone_key", T.StringType(), "HMAC-SHA256 of an erased id (user, device or person id) under the key of key_fingerprint, as hex: matches the id without naming it.", False),
            _col("key_fingerprint", T.StringType(), "Short SHA-256 fingerprint of the pseudonymisation key of tombstone_key.", False),
            _col("request_id", T.StringType(), "The erasure request (erasure_requests.request_id) that wrote it.", False),
            _col("created_at", T.TimestampType(), "When forget wrote it, before its first delete (UTC instant).", False),
        ]
    ),
    key=("tombstone_key", "key_fingerprint"),
)

OPERATIONS_TABLES: tuple[TableContract, ...] = (JOB_RUNS, MONITORING)
PRIVACY_TABLES: tuple[TableContract, ...] = (ERASURE_REQUESTS, ERASURE_TOMBSTONES)
