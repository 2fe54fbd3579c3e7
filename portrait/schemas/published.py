"""Contracts of what a portrait run publishes: ``user_portrait``, its quality checks and changes, and the
BI tables (``portrait_latest``, ``segment_daily``)."""

from __future__ import annotations

from pyspark.sql import types as T

from portrait.schemas.contract import PERSON_ID_COLUMNS, PERSON_KEY_COLUMN, TableContract, _col
from portrait.schemas.features import _SCORED_KEYS, PURCHASE_HISTORY, VALUE_PREDICTIONS

# The customer_value columns the portrait repeats for its persons.
PORTRAIT_VALUE_COLUMNS: tuple[str, ...] = ("p_alive", "expected_purchases_90d", "expected_order_value", "clv")

# Delta refuses NOT NULL inside arrays, so the elements are nullable in the schema (never null in practice).
_INPUT_VERSIONS = T.ArrayType(T.StructType([T.StructField("table", T.StringType()),
                                             T.StructField("version", T.LongType())]))

USER_PORTRAIT = TableContract(
    name="user_portrait",
    description="One row per user per date: who they are, segments, interests, propensity and churn with reasons, "
                "risk flags and tags, for marketing and BI.",
    schema=T.StructType(
        [
            # identity
            _col("user_id", T.StringType(), "Customer id (restricted: raw identifier; BI reads person_key).", False),
            _col(PERSON_KEY_COLUMN, T.StringType(), "Pseudonymised person for BI: lower-case hex HMAC-SHA256 of user_id with the pseudonymisation key current when the partition was written (rotation: docs/SECURITY.md).", False),
            # base attributes (users table; null when it has no row for the person)
            _col("gender", T.StringType(), "Self-declared gender from users: f, m or null."),
            _col("age_band", T.StringType(), "Age band from users, e.g. 25-34; null when unknown."),
            _col("city_tier", T.StringType(), "City tier 1-5 of the delivery address from users; null when unknown."),
            _col("tenure_days", T.IntegerType(), "Days from users.signup_date to the feature date; null without a signup date."),
            # segments
            _col("lifecycle_stage", T.StringType(), "new, active, sleeping or churned by the features.lifecycle rules.", False),
            _col("rfm_segment", T.StringType(), "RFM segment code, e.g. champions, at_risk, hibernating, no_purchase.", False),
            _col("rfm_segment_zh", T.StringType(), "Chinese label of rfm_segment: name_zh of the tag rfm_<segment> in the tag registry (the code when it has none).", False),
            _col("rfm_segment_en", T.StringType(), "English label of rfm_segment: name_en of the tag rfm_<segment> (the code when it has none).", False),
            _col("recency_score", T.IntegerType(), "R score 1-5 (5 = bought most recently); 1 if never bought.", False),
            _col("frequency_score", T.IntegerType(), "F score 1-5 over 90-day paid order count.", False),
            _col("monetary_score", T.IntegerType(), "M score 1-5 over 90-day paid spend.", False),
            _col("value_tier", T.StringType(), "From predicted value where the person has a clv: high (its top quintile among the date's persons with one), mid (3rd-4th), low (1st-2nd); else from past spend: high (M score 5), mid (3-4), low (1-2); none without a paid order in 90 days or a clv.", False),
            # interests and habits
            _col("top_category", T.StringType(), "Category with most events in the last 30 days."),
            _col("top_categories", _SCORED_KEYS, "Top features.top_k categories with their decayed interest scores, highest first (user_features.top_categories).", False),
            _col("top_brands", _SCORED_KEYS, "Top features.top_k brands with their decayed interest scores, highest first.", False),
            _col("price_tier", T.StringType(), "low, mid or high price level of what the user looks at (user_features.price_tier); null when unknown."),
            _col("preferred_daypart", T.StringType(), "Active-time pattern: the daypart with most events in 30 days (local time); null without events."),
            _col("weekend_share_30d", T.DoubleType(), "Active-time pattern: share of events on Saturdays and Sundays, 30 days; null without events."),
            _col("preferred_platform", T.StringType(), "Platform with most events in 30 days; null without events."),
            _col("preferred_channel", T.StringType(), "Channel that started most sessions in 30 days; null without sessions."),
            # model scores
            _col("purchase_propensity", T.DoubleType(), "Model probability of a paid order in the label horizon after dt; null while no model has learnt enough to be published (too little history, or no lift over its baselines)."),
            _col("propensity_decile", T.IntegerType(), "Decile of purchase_propensity among users on dt (10 = highest); null with purchase_propensity."),
            _col("reason_codes", T.ArrayType(T.StringType(), True), "Top three reasons for purchase_propensity in words, each with its log-odds contribution, e.g. '3 add-to-cart events in the last 7 days (+0.42)'; empty when the model has no explanation.", False),
            _col("churn_score", T.DoubleType(), "Churn model probability of no activity in the model.churn_horizon_days after dt; null when churn is not among model.targets or has no champion."),
            _col("churn_decile", T.IntegerType(), "Decile of churn_score among users on dt (10 = most likely to churn); null with churn_score."),
            _col("churn_reason_codes", T.ArrayType(T.StringType(), True), "Top three reasons for churn_score in words, each with its log-odds contribution; empty without a churn score or explanation.", False),
            # customer value (customer_value of dt)
            *[_col(name, T.IntegerType(), comment) for name, comment in PURCHASE_HISTORY],
            *[_col(name, T.DoubleType(), f"{comment} Null without a paid order in value.retention_days or before the value models could be fitted.")
              for name, comment in VALUE_PREDICTIONS if name in PORTRAIT_VALUE_COLUMNS],
            # risk flags
            _col("bot_suspect", T.BooleanType(), "Risk flag: machine-like activity (user_features.bot_suspect).", False),
            _col("high_refund_rate", T.BooleanType(), "Risk flag: user_features.refund_rate_90d at or above features.high_refund_rate.", False),
            # audience selection and lineage
            _col("tags", T.ArrayType(T.StringType(), True), "Tag codes that hold for the user on dt, for audience selection.", False),
            _col("model_name", T.StringType(), "Registered model that produced purchase_propensity; null with purchase_propensity."),
            _col("model_version", T.StringType(), "Registered version of that model in MLflow; null for a model that was not registered."),
            _col("model_run_id", T.StringType(), "MLflow run id of that model; null with purchase_propensity."),
            _col("churn_model_run_id", T.StringType(), "MLflow run id of the model that produced churn_score; null with churn_score."),
            _col("horizon_propensities", T.MapType(T.StringType(), T.DoubleType()), "Probability of a paid order within each further horizon of model.targets, by target name (purchase_<N>d: within N days after dt); null when model.targets has none, without an entry for a target no model has learnt yet."),
            _col("horizon_model_run_ids", T.MapType(T.StringType(), T.StringType()), "MLflow run id of the model behind each entry of horizon_propensities, by target name; null with horizon_propensities."),
            _col("input_versions", _INPUT_VERSIONS, "Delta version of every input table the run read (clickstream, orders, items, users, reviews, identity_graph), by table name.", False),
            _col("feature_dt", T.DateType(), "Date of the features the portrait is built from.", False),
            _col("dt", T.DateType(), "Portrait date; partition column.", False),
        ]
    ),
    partition_by=("dt",),
    key=("user_id", "dt"),
    checks=(
        ("valid_scores", "recency_score BETWEEN 1 AND 5 AND frequency_score BETWEEN 1 AND 5 "
                         "AND monetary_score BETWEEN 1 AND 5 "
                         "AND ((purchase_propensity IS NULL AND propensity_decile IS NULL) OR "
                         "(purchase_propensity BETWEEN 0 AND 1 AND propensity_decile BETWEEN 1 AND 10)) "
                         "AND (churn_score IS NULL OR (churn_score BETWEEN 0 AND 1 AND churn_decile BETWEEN 1 AND 10)) "
                         "AND value_tier IN ('high', 'mid', 'low', 'none')"),
    ),
    # Change Data Feed lets downstream tools (CRM syncs, marketing triggers) read only the rows that changed.
    properties=(("delta.enableChangeDataFeed", "true"),),
)

PUBLISH_CHECKS = TableContract(
    name="publish_checks",
    description="Quality gate of each portrait date: one row per check and subject, written before the portrait.",
    schema=T.StructType(
        [
            _col("check", T.StringType(), "row_count, null_rate, tag_coverage, segment_share or score_psi.", False),
            _col("subject", T.StringType(), "What was checked: the table, a column, a segment as column=value, or a score.", False),
            _col("value", T.DoubleType(), "Relative row count change, null share, share of rows with a tag, change of a segment's share, or PSI; null when there is no previous portrait date to compare with."),
            _col("threshold", T.DoubleType(), "Configured limit (publish section): a maximum, or for tag_coverage a minimum.", False),
            _col("passed", T.BooleanType(), "Whether the check passed; the date is published only if all passed (or publish.enforce is off).", False),
            _col("reference_dt", T.DateType(), "Previous portrait date compared with; null for the first date."),
            _col("checked_at", T.TimestampType(), "When the checks ran (UTC instant).", False),
            _col("dt", T.DateType(), "Portrait date checked; partition column.", False),
        ]
    ),
    partition_by=("dt",),
    key=("dt", "check", "subject"),
    checks=(("check_known", "`check` IN ('row_count', 'null_rate', 'tag_coverage', 'segment_share', 'score_psi')"),),
)

PORTRAIT_CHANGES = TableContract(
    name="portrait_changes",
    description="Tags each user gained or lost since the previous portrait date: one row per user with a change.",
    schema=T.StructType(
        [
            _col("user_id", T.StringType(), "Customer id, as in user_portrait.", False),
            _col("change_kind", T.StringType(), "new_user (not in the previous portrait), left (in it, not on dt) or tags_changed.", False),
            _col("gained", T.ArrayType(T.StringType(), True), "Tag codes on dt that the user did not have on previous_dt, sorted.", False),
            _col("lost", T.ArrayType(T.StringType(), True), "Tag codes of previous_dt that the user no longer has on dt, sorted.", False),
            _col("previous_dt", T.DateType(), "Previous portrait date compared with (the latest before dt).", False),
            _col("dt", T.DateType(), "Portrait date; partition column.", False),
        ]
    ),
    partition_by=("dt",),
    key=("user_id", "dt"),
    checks=(("change_kind_known", "change_kind IN ('new_user', 'left', 'tags_changed') AND previous_dt < dt"),),
)

# BI tables: what BI tools and marketing read. They carry person_key (HMAC of user_id), never a raw id.
_PERSON_KEY_FIELD = _col(PERSON_KEY_COLUMN, T.StringType(), "Pseudonymised person: lower-case hex HMAC-SHA256 of user_id with the pseudonymisation key (portrait.privacy); the same person has the same key on every date while the key is unchanged.", False)

PORTRAIT_LATEST = TableContract(
    name="portrait_latest",
    description="Each person's newest user_portrait row, pseudonymised: one row per person_key, for BI tools.",
    # The portrait's columns follow user_portrait, with user_id replaced by person_key.
    schema=T.StructType(
        [_PERSON_KEY_FIELD]
        + [_col("dt", T.DateType(), "Portrait date of this row: the person's newest date in user_portrait.", False)
           if f.name == "dt" else f
           for f in USER_PORTRAIT.schema.fields if f.name not in (*PERSON_ID_COLUMNS, PERSON_KEY_COLUMN)]
    ),
    key=(PERSON_KEY_COLUMN,),
    checks=USER_PORTRAIT.checks,
    # Updated by MERGE every day; the change feed gives CRM syncs only the persons whose row changed.
    properties=(("delta.enableChangeDataFeed", "true"),),
    bi_facing=True,
)

SEGMENT_KINDS: tuple[str, ...] = ("rfm_segment", "lifecycle_stage", "propensity_decile", "tag")

SEGMENT_DAILY = TableContract(
    name="segment_daily",
    description="Size and average value of every segment per portrait date; groups below privacy.min_group_size are left out.",
    schema=T.StructType(
        [
            _col("segment_kind", T.StringType(), "What the segment is a value of: rfm_segment, lifecycle_stage, propensity_decile or tag.", False),
            _col("segment", T.StringType(), "The value: an RFM segment code, a lifecycle stage, a decile 1-10 or a tag code.", False),
            _col("users", T.LongType(), "Persons in the segment on dt (with Laplace noise when privacy.noise_epsilon is set); at least privacy.min_group_size before noise.", False),
            _col("avg_propensity", T.DoubleType(), "Average purchase_propensity of the segment's persons; null when none has a score."),
            _col("avg_spend_90d", T.DoubleType(), "Average paid spend in the 90 days to the feature date (user_features.spend_90d); null when no feature row matched."),
            _col("avg_orders_90d", T.DoubleType(), "Average distinct paid orders in the 90 days to the feature date (user_features.orders_90d); null when no feature row matched."),
            _col("dt", T.DateType(), "Portrait date; partition column.", False),
        ]
    ),
    partition_by=("dt",),
    key=("dt", "segment_kind", "segment"),
    checks=(("segment_kind_known", "segment_kind IN ('rfm_segment', 'lifecycle_stage', 'propensity_decile', 'tag') "
                                   "AND users >= 0"),),
    bi_facing=True,
)

BI_TABLES: tuple[TableContract, ...] = (PORTRAIT_LATEST, SEGMENT_DAILY)
PUBLISH_TABLES: tuple[TableContract, ...] = (PUBLISH_CHECKS, PORTRAIT_CHANGES)
