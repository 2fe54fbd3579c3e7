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
                       help="MLflow model URI (default: newest registered version)")
    daily = jobs.add_parser("daily", parents=[common], help="features → train → portrait for --date")
    daily.add_argument("--no-generate", action="store_true",
                       help="fail instead of generating synthetic data when input tables are missing")
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
    from portrait.spark import SparkSetupError

    try:
        cfg = load_config(args.conf)
        day = args.date or yesterday(cfg.time_zone)
        return _JOBS[args.job](args, cfg, day)
    except (ConfigError, TableNotFoundError, SchemaMismatchError, SparkSetupError, NoModelError) as exc:
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
          f"test AUC {result.metrics['auc_roc']:.4f} on {result.test_rows:,} rows")
    return 0


def _score(args, cfg, day) -> int:
    from portrait.model import tracking
    from portrait.pipeline import run_portrait

    spark = _spark(cfg)
    uri = args.model_uri or tracking.latest_model_uri(cfg)
    model = tracking.load_model(uri)
    rows = run_portrait(spark, cfg, day, model, model_run_id=tracking.run_id_of(uri))
    print(f"user_portrait {day}: {rows:,} rows scored with {uri}")
    return 0


def _daily(args, cfg, day) -> int:
    from portrait.pipeline import run_daily

    summary = run_daily(_spark(cfg), cfg, day, generate_if_missing=not args.no_generate)
    print(summary.render())
    return 0


_JOBS: dict[str, Callable[..., int]] = {
    "generate": _generate,
    "features": _features,
    "train": _train,
    "score": _score,
    "daily": _daily,
}


if __name__ == "__main__":
    sys.exit(main())
