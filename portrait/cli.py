"""``portrait <job>``: argument parsing for every job, and nothing else.

Each job loads the configuration once, gets the Spark session and calls one function of
:mod:`portrait.pipeline`. Expected problems (bad configuration, missing tables, bad dates, no model)
end with a one-line ``error:`` message and exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
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
    jobs = parser.add_subparsers(dest="job", required=True, metavar="JOB")

    gen = jobs.add_parser("generate", parents=[common], help="write synthetic input tables ending on --date")
    gen.add_argument("--users", type=int, default=None)
    gen.add_argument("--days", type=int, default=None)
    gen.add_argument("--seed", type=int, default=None)
    jobs.add_parser("features", parents=[common], help="compute the user_features partition of --date")
    jobs.add_parser("train", parents=[common], help="fit and log the propensity model as of --date")
    score = jobs.add_parser("score", parents=[common],
                            help="score users with a registered model and write user_portrait for --date")
    score.add_argument("--model-uri", default=None,
                       help="MLflow model URI (default: the registered model's champion, models:/<name>@champion)")
    ingest = jobs.add_parser("ingest", parents=[common],
                             help="load files (taobao, retailrocket, rees46, generic) into clickstream and orders")
    ingest.add_argument("--format", required=True, choices=("taobao", "retailrocket", "rees46", "generic"))
    ingest.add_argument("--path", required=True, help="a file, a glob or a folder of files")
    ingest.add_argument("--table", default="clickstream", choices=("clickstream",),
                        help="target table: clickstream (orders are derived from purchase events)")
    jobs.add_parser("identity", parents=[common], help="rebuild the identity graph from clickstream")
    daily = jobs.add_parser("daily", parents=[common], help="features → train → portrait for --date")
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
    for sub in jobs.choices.values():
        sub.add_argument("--git-commit", default=None,
                         help="code version recorded in job_runs (default $PORTRAIT_GIT_COMMIT or git HEAD)")
    return parser


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("py4j", "urllib3", "alembic", "mlflow"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    _setup_logging(args.verbose)

    from portrait.config import ConfigError, load_config
    from portrait.io import SchemaMismatchError, TableNotFoundError
    from portrait.model.tracking import NoModelError
    from portrait.pipeline import BackfillError, MonitoringBreach, ReplayError
    from portrait.spark import SparkSetupError

    try:
        cfg = load_config(args.conf)
        day = args.date or yesterday(cfg.time_zone)
        return _JOBS[args.job](args, cfg, day)
    except (ConfigError, TableNotFoundError, SchemaMismatchError, SparkSetupError, NoModelError,
            BackfillError, ReplayError, MonitoringBreach) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _spark(cfg):
    from portrait.spark import get_spark

    return get_spark(cfg)


def _generate(args, cfg, day) -> int:
    from portrait.pipeline import run_generate

    rows = run_generate(_spark(cfg), cfg, day, users=args.users, days=args.days, seed=args.seed)
    print("generated " + ", ".join(f"{name}={count:,}" for name, count in rows.items()))
    return 0


def _features(args, cfg, day) -> int:
    from portrait.pipeline import run_features

    print(f"user_features {day}: {run_features(_spark(cfg), cfg, day):,} rows")
    return 0


def _train(args, cfg, day) -> int:
    from portrait.pipeline import run_train

    result = run_train(_spark(cfg), cfg, day)
    print(f"trained {cfg.model.name}: run {result.run_id}, model {result.model_uri}, "
          f"test AUC {result.metrics['auc_roc']:.4f} on {result.test_rows:,} rows "
          f"(random baseline {result.metrics['baseline_random_auc_roc']:.4f}, "
          f"RFM baseline {result.metrics['baseline_rfm_auc_roc']:.4f})")
    if result.promotion is not None:
        print(f"version {result.promotion.challenger_version}: {result.promotion.outcome} "
              f"(alias {result.promotion.alias})")
    return 0


def _score(args, cfg, day) -> int:
    from portrait.model import tracking
    from portrait.pipeline import run_portrait

    uri = args.model_uri or tracking.champion_model_uri(cfg)  # before Spark starts: fails fast without one
    spark = _spark(cfg)
    model = tracking.load_model(uri)
    rows = run_portrait(spark, cfg, day, model, model_run_id=tracking.run_id_of(uri),
                        explanation=tracking.load_explanation(uri))
    print(f"user_portrait {day}: {rows:,} rows scored with {uri}")
    return 0


def _daily(args, cfg, day) -> int:
    from portrait.pipeline import run_daily_recorded

    summary = run_daily_recorded(_spark(cfg), cfg, day, generate_if_missing=not args.no_generate,
                                 git_commit=args.git_commit)
    print(summary.render())
    return 0


def _monitor(args, cfg, day) -> int:
    from portrait.pipeline import run_monitor

    rows = run_monitor(_spark(cfg), cfg, day)
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


_JOBS: dict[str, Callable[..., int]] = {
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
}


if __name__ == "__main__":
    sys.exit(main())
