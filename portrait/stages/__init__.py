"""The stages of portrait: each reads the tables above it through the lakehouse catalog and writes its own.

One module per stage, each with one recorded entry point ``run(lake, day, ...)`` that writes its ``job_runs``
row; the CLI, ``jobs/*.py``, the bundle's tasks and :mod:`portrait.graph` all call that same function, so a
local ``portrait daily`` and the scheduled tasks share one definition. Transformations stay pure in
:mod:`portrait.features`, :mod:`portrait.model` and :mod:`portrait.publish`; only stages touch storage.

=============  ==============================================================================
ingest         files landed for a date (or synthetic data when none exist) → input tables
rollups        ``user_daily_activity`` and its input bookkeeping (late data recomputes a day)
features       ``user_features`` of a date from the rollups
train          point-in-time training sets, fit, evaluate, log and promote in MLflow
score          the champion scores the date's features; the portrait is published, then BI tables
publish        quality gate, atomic partition write, tag changes
bi             ``portrait_latest``, ``segment_daily``, audiences, the daily report
monitor        drift and volume checks
operations     backfill, replay, maintain
forget         erasure of persons from every table
=============  ==============================================================================
"""
