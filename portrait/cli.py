"""``portrait <job>``: argument parsing for every job, and nothing else.

Each job loads the configuration once, gets the Spark session and calls one function of
:mod:`portrait.pipeline`. Expected problems (bad configuration, missing tables, bad dates, no model)
end with a one-line ``error:`` message and exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from zoneinfo import ZoneInfo

DEFAULT_CONF = "conf/local.yml"
CONF_ENV = "PORTRAIT_CONF"
EXIT_USAGE = 2


def parse_date(text: str) -> dt.date:
    """An ISO date ``YYYY-MM-DD``; anything else is rejected before it can reach a query."""
    try:
        return dt.date.fromisoformat(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"invalid date {text!r}: use YYYY-MM-DD, e.g. 2026-11-27") from None


def yesterday(time_zone: str) -> dt.date:
    return dt.datetime.now(ZoneInfo(time_zone)).date() - dt.timedelta(days=1)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="portrait", description="E-commerce user portraits on Spark.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--conf", default=os.environ.get(CONF_ENV, DEFAULT_CONF),
                        help=f"environment config file (default ${CONF_ENV} or {DEFAULT_CONF}); "
                             "base.yml beside it is read first")
    common.add_argument("--date", type=parse_date, default=None,
                        help="run date YYYY-MM-DD (default: yesterday in the configured time zone)")
    common.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    common.add_argument("--log-format", choices=("text", "json"),
                        default=os.environ.get("PORTRAIT_LOG_FORMAT", "text"),
                        help="text for people, json (one object per line) for log collectors; "
                             "default $PORTRAIT_LOG_FORMAT or text")
    jobs = parser.add_subparsers(dest="job", required=True, metavar="JOB")

    gen = jobs.add_parser("generate", parents=[common], help="write synthetic input tables ending on --date")
    gen.add_argument("--users", type=int, default=None)
    gen.add_argument("--days", type=int, default=None)
    gen.add_argument("--seed", type=int, default=None)
    jobs.add_parser("features", parents=[common], help="compute the user_features partition of --date")
    jobs.add_parser("train", parents=[common], help="fit and log the propensity model as of --date")
    score = jobs.add_parser("score", parents=[common],
                            help="score users with a registered model (default the champion) and write "
                                 "user_portrait, the BI tables and the report for --date")
    score.add_argument("--model-uri", default=None,
                       help="MLflow model URI (default: the registered model's champion, models:/<name>@champion)")
    ingest = jobs.add_parser("ingest", parents=[common],
                             help="load files (taobao, retailrocket, rees46, generic) into clickstream and orders")
    ingest.add_argument("--format", required=True, choices=("taobao", "retailrocket", "rees46", "generic"))
    ingest.add_argument("--path", required=True, help="a file, a glob or a folder of files")
    ingest.add_argument("--table", default="clickstream", choices=("clickstream",),
                        help="target table: clickstream (orders are derived from purchase events)")
    jobs.add_parser("identity", parents=[common], help="rebuild the identity graph from clickstream")
    daily = jobs.add_parser("daily", parents=[common],
                            help="features → (train when needed: model.daily_training) → score → monitor for --date")
    daily.add_argument("--no-generate", action="store_true",
                       help="fail instead of generating synthetic data when input tables are missing")
    jobs.add_parser("monitor", parents=[common],
                    help="drift (PSI) and volume checks of --date into the monitoring table and MLflow")
    backfill = jobs.add_parser("backfill", parents=[common],
                               help="run the daily job for every date from --start to --end, in order; a re-run "
                                    "resumes at the first date without a successful run in job_runs")
    backfill.add_argument("--start", type=parse_date, required=True, help="first date YYYY-MM-DD")
    backfill.add_argument("--end", type=parse_date, required=True, help="last date YYYY-MM-DD (inclusive)")
    replay = jobs.add_parser("replay", parents=[common],
                             help="recompute a past daily run's portrait from the table versions in job_runs "
                                  "and compare it with what was published")
    replay.add_argument("--run-id", required=True, help="run_id of a succeeded daily run in job_runs")
    maintain = jobs.add_parser("maintain", parents=[common],
                               help="OPTIMIZE (Z-ordered per maintenance.zorder_by) and VACUUM tables; adds missing "
                                    "table properties")
    maintain.add_argument("--table", action="append", default=None, metavar="NAME",
                          help="table to maintain (repeatable; default: every table that exists)")
    jobs.add_parser("tags", parents=[common],
                    help="check the tag registry's definitions with Spark and print its catalogue (docs/TAGS.md)")
    forget = jobs.add_parser("forget", parents=[common],
                             help="erase persons (and their stitched ids) from every table, mark models trained "
                                  "on them for retraining, VACUUM, and audit the request in erasure_requests")
    forget.add_argument("--user", action="append", default=[], metavar="ID",
                        help="user or device id to erase (repeatable; an empty value is ignored)")
    forget.add_argument("--file", default="", metavar="PATH",
                        help="text file with one id per line (# comments allowed; empty value = none)")
    forget.add_argument("--no-vacuum", action="store_true",
                        help="skip VACUUM (deleted rows stay readable by time travel until the next one)")
    audience = jobs.add_parser("audience", parents=[common],
                               help="export the persons of --date with every --tag and a score of at least "
                                    "--min-score: person_key, score, decile, tags (never a raw id)")
    audience.add_argument("--tag", action="append", required=True, metavar="TAG",
                          help="tag code the persons must carry (repeatable: all of them)")
    audience.add_argument("--min-score", type=float, default=0.0, help="lowest purchase_propensity (0-1)")
    audience.add_argument("--output", required=True, metavar="PATH", help="file to write (replaced if it exists)")
    audience.add_argument("--format", default="csv", choices=("csv", "parquet"))
    serve_bi = jobs.add_parser("serve-bi", parents=[common],
                               help="serve the BI tables over JDBC/ODBC (Spark Thrift Server, HiveServer2 protocol) "
                                    "until stopped")
    serve_bi.add_argument("--host", default=None, help="bind address (default bi.host, 127.0.0.1)")
    serve_bi.add_argument("--port", type=int, default=None, help="port (default bi.port, 10000)")
    serve_bi.add_argument("--all-tables", action="store_true",
                          help="also register tables holding raw ids (user_portrait, …): trusted users only")
    for sub in jobs.choices.values():
        sub.add_argument("--git-commit", default=None,
                         help="code version recorded in job_runs (default $PORTRAIT_GIT_COMMIT or git HEAD)")
    return parser


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line (time, level, logger, message, exception): what log collectors parse."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
                 "level": record.levelname, "logger": record.name, "msg": record.getMessage()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def _setup_logging(verbose: bool, log_format: str = "text") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLogFormatter() if log_format == "json"
                         else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler], force=True)
    for noisy in ("py4j", "urllib3", "alembic", "mlflow"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    _setup_logging(args.verbose, args.log_format)

    from portrait.config import ConfigError, load_config
    from portrait.io import SchemaMismatchError, TableNotFoundError
    from portrait.model.tracking import NoModelError
    from portrait.pipeline import BackfillError, MonitoringBreach, NotEnoughHistoryError, ReplayError
    from portrait.publish.quality import QualityGateFailed
    from portrait.publish.tags import TagDefinitionError
    from portrait.spark import SparkSetupError

    try:
        cfg = load_config(args.conf)
        day = args.date or yesterday(cfg.time_zone)
        return _JOBS[args.job](args, cfg, day)
    except QualityGateFailed as exc:  # the data was refused, not the command: exit code as for ingest
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REJECTED
    except TagDefinitionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ConfigError, TableNotFoundError, SchemaMismatchError, SparkSetupError, NoModelError,
            BackfillError, ReplayError, MonitoringBreach, NotEnoughHistoryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        # Faults of the platform (corrupt table log, refused storage, MLflow down, concurrent writers, no
        # pseudonymisation key) end with one clear line too; anything else keeps its traceback.
        from portrait.erasure import ErasureInputError
        from portrait.io import ConcurrentWriteError, CorruptTableError, LakehouseWriteError, storage_problem
        from portrait.model.tracking import TrackingUnavailableError
        from portrait.privacy import PseudonymKeyError

        clear = (CorruptTableError, LakehouseWriteError, ConcurrentWriteError, TrackingUnavailableError,
                 PseudonymKeyError, ErasureInputError)
        if isinstance(exc, clear):
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if storage_problem(exc) is not None:
            from portrait.io import raise_storage_problem

            try:
                raise_storage_problem(exc, "a table of this job")
            except (CorruptTableError, LakehouseWriteError) as translated:
                print(f"error: {translated}", file=sys.stderr)
                return EXIT_USAGE
        raise


def _spark(cfg):
    from portrait.spark import get_spark

    return get_spark(cfg)


def _generate(args, cfg, day) -> int:
    from portrait.pipeline import run_generate

    rows = run_generate(_spark(cfg), cfg, day, users=args.users, days=args.days, seed=args.seed)
    print("generated " + ", ".join(f"{name}={count:,}" for name, count in rows.items()))
    return 0


def _features(args, cfg, day) -> int:
    from portrait.pipeline import run_features_recorded

    rows = run_features_recorded(_spark(cfg), cfg, day, git_commit=args.git_commit)
    print(f"user_features {day}: {rows:,} rows")
    return 0


def _train(args, cfg, day) -> int:
    from portrait.pipeline import PURCHASE_TARGET, NotEnoughHistoryError, run_train, target_config

    for target in cfg.model.targets:  # purchase first: its failure stops the job
        try:
            result = run_train(_spark(cfg), cfg, day, target)
        except NotEnoughHistoryError as exc:
            if target == PURCHASE_TARGET:
                raise
            print(f"not trained: {exc}", file=sys.stderr)
            continue
        print(f"trained {target_config(cfg, target).model.name}: run {result.run_id}, model {result.model_uri}, "
              f"test AUC {result.metrics['auc_roc']:.4f} on {result.test_rows:,} rows "
              f"(random baseline {result.metrics['baseline_random_auc_roc']:.4f}, "
              f"RFM baseline {result.metrics['baseline_rfm_auc_roc']:.4f})")
        if result.promotion is not None:
            print(f"version {result.promotion.challenger_version}: {result.promotion.outcome} "
                  f"(alias {result.promotion.alias})")
    return 0


def _score(args, cfg, day) -> int:
    from portrait.model import tracking
    from portrait.pipeline import run_score

    uri = args.model_uri or tracking.champion_model_uri(cfg)  # before Spark starts: fails fast without one
    done = run_score(_spark(cfg), cfg, day, uri, git_commit=args.git_commit)
    print(f"user_portrait {day}: {done['portrait_rows']:,} rows scored with {uri}; BI tables {done['bi_rows']}; "
          f"report {done['report']}")
    return 0


def _daily(args, cfg, day) -> int:
    from portrait.pipeline import run_daily_recorded

    summary = run_daily_recorded(_spark(cfg), cfg, day, generate_if_missing=not args.no_generate,
                                 git_commit=args.git_commit)
    print(summary.render())
    return 0


def _monitor(args, cfg, day) -> int:
    from portrait.pipeline import run_monitor_recorded

    rows = run_monitor_recorded(_spark(cfg), cfg, day, git_commit=args.git_commit)
    print(f"monitoring {day}: {len(rows)} checks, {sum(1 for row in rows if row[5])} breached")
    return 0


def _backfill(args, cfg, day) -> int:
    from portrait.pipeline import run_backfill

    if args.end < args.start:
        print(f"error: the range {args.start}..{args.end} ends before it starts", file=sys.stderr)
        return EXIT_USAGE
    done = run_backfill(_spark(cfg), cfg, args.start, args.end, git_commit=args.git_commit)
    print(f"backfill {args.start}..{args.end}: ran {len(done)} date(s)"
          + (f" ({done[0]}..{done[-1]})" if done else "; every date had already succeeded"))
    return 0


def _replay(args, cfg, day) -> int:
    from portrait.pipeline import replay_matches

    differing, total = replay_matches(_spark(cfg), cfg, args.run_id)
    print(f"replay of {args.run_id}: {total:,} rows, {differing:,} differ from the published portrait")
    return 0 if differing == 0 else 1


EXIT_REJECTED = 3


def _ingest(args, cfg, day) -> int:
    from portrait.ingest.formats import SourceLayoutError
    from portrait.ingest.load import IngestError, QuarantineThresholdError
    from portrait.io import SourceFileError
    from portrait.pipeline import run_ingest

    try:
        report = run_ingest(_spark(cfg), cfg, args.format, args.path)
    except QuarantineThresholdError as exc:
        print(exc.report.render(), file=sys.stderr)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REJECTED
    except (IngestError, SourceFileError, SourceLayoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(report.render())
    return 0


def _identity(args, cfg, day) -> int:
    from portrait.pipeline import run_identity

    print(run_identity(_spark(cfg), cfg).render())
    return 0


def _forget(args, cfg, day) -> int:
    from pathlib import Path

    from portrait.erasure import ErasureInputError, ids_from_lines, normalise_ids
    from portrait.pipeline import run_forget

    ids = [u for u in args.user if u.strip()]
    if args.file.strip():
        try:
            text = Path(args.file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ErasureInputError(f"--file {args.file}: cannot read it as UTF-8 text ({exc})") from None
        ids += ids_from_lines(text, f"--file {args.file}")
    ids = normalise_ids(ids, "--user/--file")  # checked before Spark starts
    print(run_forget(_spark(cfg), cfg, ids, vacuum=not args.no_vacuum).render())
    return 0


def _audience(args, cfg, day) -> int:
    from portrait.pipeline import AudienceError, run_audience

    try:
        persons = run_audience(_spark(cfg), cfg, day, args.tag, args.min_score, args.output, args.format)
    except (AudienceError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"audience {day} ({' & '.join(args.tag)}, score >= {args.min_score}): {persons:,} persons → {args.output}")
    return 0


def _serve_bi(args, cfg, day) -> int:
    from portrait.serve import ServeError, serve_bi

    try:
        serve_bi(cfg, host=args.host, port=args.port, all_tables=args.all_tables)
    except ServeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return 0


def _maintain(args, cfg, day) -> int:
    from portrait.pipeline import run_maintain

    try:
        results = run_maintain(_spark(cfg), cfg, args.table)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"maintained {len(results)} table(s); VACUUM retention {cfg.privacy.vacuum_retention_hours} h")
    for result in results:
        print("  " + result.render())
    return 0


def _tags(args, cfg, day) -> int:
    from portrait.pipeline import check_tag_registry
    from portrait.publish.tags import tag_catalog

    check_tag_registry(_spark(cfg), cfg)
    sys.stdout.write(tag_catalog(cfg.tags))
    return 0


_JOBS: dict[str, Callable[..., int]] = {
    "audience": _audience,
    "serve-bi": _serve_bi,
    "forget": _forget,
    "generate": _generate,
    "features": _features,
    "train": _train,
    "score": _score,
    "daily": _daily,
    "backfill": _backfill,
    "monitor": _monitor,
    "replay": _replay,
    "ingest": _ingest,
    "identity": _identity,
    "maintain": _maintain,
    "tags": _tags,
}


if __name__ == "__main__":
    sys.exit(main())
