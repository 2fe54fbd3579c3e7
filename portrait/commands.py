"""What each ``portrait <job>`` does once its arguments are parsed: load the configuration, open the
lakehouse, call the job's stage entry point, print one summary; expected problems become one ``error:`` line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path

from portrait import erasure, graph
from portrait.cli import EXIT_REJECTED, EXIT_USAGE, yesterday
from portrait.config import Config, ConfigError, load_config
from portrait.faults import (
    ConcurrentWriteError,
    CorruptTableError,
    LakehouseWriteError,
    raise_storage_problem,
    storage_problem,
)
from portrait.files import SourceFileError
from portrait.ingest.formats import SourceLayoutError
from portrait.ingest.report import IngestError, QuarantineThresholdError
from portrait.io import SchemaMismatchError, TableNotFoundError
from portrait.lakehouse import Lakehouse
from portrait.model.tracking import NoModelError, TrackingUnavailableError
from portrait.privacy import PseudonymKeyError
from portrait.publish.quality import QualityGateFailed
from portrait.publish.tags import TagDefinitionError, tag_catalog
from portrait.serve import ServeError, serve_bi
from portrait.spark import SparkSetupError, get_spark
from portrait.stages import bi, features, forget, ingest, monitor, operations, purge, score, train
from portrait.stages.ingest import Source
from portrait.stages.publish import check_tag_registry

# Problems of the input, the configuration or the platform that one line explains; anything else is a bug.
CLEAR_ERRORS = (ConfigError, TableNotFoundError, SchemaMismatchError, SparkSetupError, NoModelError,
                graph.BackfillError, operations.ReplayError, monitor.MonitoringBreach, train.NotEnoughHistoryError,
                TagDefinitionError, CorruptTableError, LakehouseWriteError, ConcurrentWriteError,
                TrackingUnavailableError, PseudonymKeyError, erasure.ErasureInputError, IngestError, SourceFileError,
                SourceLayoutError)


def _fail(message: object, code: int = EXIT_USAGE) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    """Run the parsed job; returns the process exit code."""
    try:
        cfg = load_config(args.conf)
        return JOBS[args.job](args, cfg, args.date or yesterday(cfg.time_zone))
    except QuarantineThresholdError as exc:  # the data was refused, not the command
        print(exc.report.render(), file=sys.stderr)
        return _fail(exc, EXIT_REJECTED)
    except QualityGateFailed as exc:
        return _fail(exc, EXIT_REJECTED)
    except CLEAR_ERRORS as exc:
        return _fail(exc)
    except Exception as exc:
        # Faults of the platform the Java side raised (a corrupt table log, refused storage) end with one
        # clear line too; anything else keeps its traceback.
        if storage_problem(exc) is None:
            raise
        try:
            raise_storage_problem(exc, "a table of this job")
        except (CorruptTableError, LakehouseWriteError) as translated:
            return _fail(translated)
        raise


def _lake(cfg: Config) -> Lakehouse:
    return Lakehouse(get_spark(cfg), cfg)


def _source(args) -> Source | None:
    if (args.format is None) != (args.path is None):
        raise ConfigError("--format and --path go together: both name the files to load, or neither")
    return None if args.path is None else Source(args.format, args.path)


def _generate(args, cfg: Config, day: dt.date) -> int:
    rows = ingest.generate(_lake(cfg), day, users=args.users, days=args.days, seed=args.seed)
    print("generated " + ", ".join(f"{name}={count:,}" for name, count in rows.items()))
    return 0


def _ingest(args, cfg: Config, day: dt.date) -> int:
    outcome = ingest.run(_lake(cfg), day, _source(args), git_commit=args.git_commit)
    print(outcome.report.render())
    return 0


def _identity(args, cfg: Config, day: dt.date) -> int:
    print(ingest.rebuild_identity(_lake(cfg)).render())
    return 0


def _features(args, cfg: Config, day: dt.date) -> int:
    rows = features.run(_lake(cfg), day, git_commit=args.git_commit)
    print(f"user_features {day}: {rows:,} rows")
    return 0


def _train(args, cfg: Config, day: dt.date) -> int:
    trained = train.run(_lake(cfg), day, git_commit=args.git_commit)
    for reason in trained.skipped.values():
        print(f"not trained: {reason}", file=sys.stderr)
    for target, result in trained.items():
        print(f"trained {train.target_config(cfg, target).model.name}: run {result.run_id}, model "
              f"{result.model_uri}, test AUC {result.metrics['auc_roc']:.4f} on {result.test_rows:,} rows "
              f"(random baseline {result.metrics['baseline_random_auc_roc']:.4f}, "
              f"RFM baseline {result.metrics['baseline_rfm_auc_roc']:.4f})")
        if result.promotion is not None:
            print(f"version {result.promotion.challenger_version}: {result.promotion.outcome} "
                  f"(alias {result.promotion.alias})")
        elif result.refusal is not None:
            print(f"not registered: {result.refusal}", file=sys.stderr)
    return 0


def _score(args, cfg: Config, day: dt.date) -> int:
    done = score.run(_lake(cfg), day, args.model_uri, git_commit=args.git_commit)
    model = "no model (none has learnt enough yet; scores are null)" if done.scorer is None else done.scorer.uri
    print(f"user_portrait {day}: {done.portrait_rows:,} rows scored with {model}; BI tables "
          f"{done.bi_rows}; report {done.report}")
    return 0


def _daily(args, cfg: Config, day: dt.date) -> int:
    summary = graph.run_daily(_lake(cfg), day, generate_if_missing=not args.no_generate, source=_source(args),
                              git_commit=args.git_commit)
    print(summary.render())
    return 0


def _monitor(args, cfg: Config, day: dt.date) -> int:
    rows = monitor.run(_lake(cfg), day, git_commit=args.git_commit)
    if not cfg.monitoring.enabled:
        print(f"monitoring {day}: off (monitoring.enabled: false), no checks run")
        return 0
    print(f"monitoring {day}: {len(rows)} checks, {sum(1 for row in rows if row.breached)} breached")
    return 0


def _backfill(args, cfg: Config, day: dt.date) -> int:
    if args.end < args.start:
        return _fail(f"the range {args.start}..{args.end} ends before it starts")
    done = graph.backfill(_lake(cfg), args.start, args.end, git_commit=args.git_commit)
    print(f"backfill {args.start}..{args.end}: ran {len(done)} date(s)"
          + (f" ({done[0]}..{done[-1]})" if done else "; every date had already succeeded"))
    return 0


def _replay(args, cfg: Config, day: dt.date) -> int:
    differing, total = operations.replay_matches(_lake(cfg), args.run_id)
    print(f"replay of {args.run_id}: {total:,} rows, {differing:,} differ from the published portrait")
    return 0 if differing == 0 else 1


def _forget(args, cfg: Config, day: dt.date) -> int:
    ids = [u for u in args.user if u.strip()]
    if args.file.strip():
        try:
            text = Path(args.file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise erasure.ErasureInputError(f"--file {args.file}: cannot read it as UTF-8 text ({exc})") from None
        ids += erasure.ids_from_lines(text, f"--file {args.file}")
    ids = erasure.normalise_ids(ids, "--user/--file")  # checked before Spark starts
    print(forget.run(_lake(cfg), ids, vacuum=not args.no_vacuum).render())
    return 0


def _purge(args, cfg: Config, day: dt.date) -> int:
    print(purge.run(_lake(cfg)).render())
    return 0


def _audience(args, cfg: Config, day: dt.date) -> int:
    try:
        persons = bi.export_audience(_lake(cfg), day, args.tag, args.min_score, args.output, args.format)
    except (bi.AudienceError, ValueError) as exc:
        return _fail(exc)
    print(f"audience {day} ({' & '.join(args.tag)}, score >= {args.min_score}): {persons:,} persons → {args.output}")
    return 0


def _serve_bi(args, cfg: Config, day: dt.date) -> int:
    try:
        serve_bi(cfg, host=args.host, port=args.port, all_tables=args.all_tables,
                 no_auth_local_only=args.no_auth_local_only, tls_keystore=args.tls_keystore)
    except ServeError as exc:
        return _fail(exc)
    return 0


def _maintain(args, cfg: Config, day: dt.date) -> int:
    try:
        results = operations.maintain(_lake(cfg), args.table)
    except ValueError as exc:
        return _fail(exc)
    print(f"maintained {len(results)} table(s); VACUUM retention {cfg.privacy.vacuum_retention_hours} h")
    for result in results:
        print("  " + result.render())
    return 0


def _tags(args, cfg: Config, day: dt.date) -> int:
    check_tag_registry(_lake(cfg))
    sys.stdout.write(tag_catalog(cfg.tags))
    return 0


JOBS: dict[str, Callable[[argparse.Namespace, Config, dt.date], int]] = {
    "audience": _audience, "serve-bi": _serve_bi, "forget": _forget, "purge": _purge, "generate": _generate,
    "features": _features, "train": _train, "score": _score, "daily": _daily, "backfill": _backfill,
    "monitor": _monitor, "replay": _replay, "ingest": _ingest, "identity": _identity, "maintain": _maintain,
    "tags": _tags,
}
