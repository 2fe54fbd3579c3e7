"""``portrait <job>``: argument parsing for every job, and nothing else.

Arguments are checked here, before Spark or MLflow is imported; :mod:`portrait.commands` then loads the
configuration once, gets the Spark session and calls the job's stage entry point. Expected problems (bad
configuration, missing tables, bad dates, no model) end with a one-line ``error:`` message and exit code 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Sequence
from zoneinfo import ZoneInfo

DEFAULT_CONF = "conf/local.yml"
SOURCE_FORMATS = ("taobao", "retailrocket", "rees46", "generic")
CONF_ENV = "PORTRAIT_CONF"
EXIT_USAGE = 2
EXIT_REJECTED = 3  # the data was refused (quarantine threshold, quality gate), not the command


def parse_date(text: str) -> dt.date:
    """An ISO date ``YYYY-MM-DD``; anything else is rejected before it can reach a query."""
    try:
        return dt.date.fromisoformat(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"invalid date {text!r}: use YYYY-MM-DD, e.g. 2026-11-27") from None


def yesterday(time_zone: str) -> dt.date:
    return dt.datetime.now(ZoneInfo(time_zone)).date() - dt.timedelta(days=1)


def _common() -> argparse.ArgumentParser:
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
    common.add_argument("--git-commit", default=None,
                        help="code version recorded in job_runs (default $PORTRAIT_GIT_COMMIT or git HEAD)")
    return common


def _source_arguments(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument("--format", required=required, choices=SOURCE_FORMATS,
                        help="format of the landed files" + ("" if required else " (with --path)"))
    parser.add_argument("--path", required=required, help="a file, a glob or a folder of files")


def _add_daily_jobs(jobs, common) -> None:
    """The tasks of the daily and weekly job graphs (portrait.graph), and the graph itself."""
    ingest = jobs.add_parser("ingest", parents=[common],
                             help="load files (taobao, retailrocket, rees46, generic) into clickstream and orders")
    _source_arguments(ingest, required=True)
    ingest.add_argument("--table", default="clickstream", choices=("clickstream",),
                        help="target table: clickstream (orders are derived from purchase events)")
    jobs.add_parser("features", parents=[common], help="compute the user_features partition of --date")
    jobs.add_parser("train", parents=[common], help="fit, log and promote the models of model.targets as of --date")
    score = jobs.add_parser("score", parents=[common],
                            help="score users with the champion (trained first when there is none and "
                                 "model.daily_training allows) and write user_portrait, the BI tables and the "
                                 "report for --date")
    score.add_argument("--model-uri", default=None,
                       help="MLflow model URI (default: the registered model's champion, models:/<name>@champion)")
    jobs.add_parser("monitor", parents=[common],
                    help="drift (PSI) and volume checks of --date into the monitoring table and MLflow")
    daily = jobs.add_parser("daily", parents=[common],
                            help="the daily job graph for --date: ingest → features → score → monitor")
    daily.add_argument("--no-generate", action="store_true",
                       help="fail instead of generating synthetic data when input tables are missing")
    _source_arguments(daily, required=False)


def _add_operations(jobs, common) -> None:
    gen = jobs.add_parser("generate", parents=[common], help="write synthetic input tables ending on --date")
    gen.add_argument("--users", type=int, default=None)
    gen.add_argument("--days", type=int, default=None)
    gen.add_argument("--seed", type=int, default=None)
    jobs.add_parser("identity", parents=[common], help="rebuild the identity graph from clickstream")
    backfill = jobs.add_parser("backfill", parents=[common],
                               help="run the daily job for every date from --start to --end, in order; a re-run "
                                    "resumes at the first date without a successful run in job_runs")
    backfill.add_argument("--start", type=parse_date, required=True, help="first date YYYY-MM-DD")
    backfill.add_argument("--end", type=parse_date, required=True, help="last date YYYY-MM-DD (inclusive)")
    replay = jobs.add_parser("replay", parents=[common],
                             help="recompute a past run's portrait from the table versions in job_runs "
                                  "and compare it with what was published")
    replay.add_argument("--run-id", required=True, help="run_id of a succeeded score or daily run in job_runs")
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
                        help="skip VACUUM (deleted rows stay readable by time travel until the purge)")
    jobs.add_parser("purge", parents=[common],
                    help="finish erasures whose retention (privacy.vacuum_retention_hours) has passed: delete the "
                         "files that still hold the erased rows and record it in erasure_requests")


def _add_bi(jobs, common) -> None:
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
    serve_bi.add_argument("--no-auth-local-only", action="store_true",
                          help="serve without a login, on 127.0.0.1 only (default: a login from PORTRAIT_BI_USER "
                               "and PORTRAIT_BI_PASSWORD or PORTRAIT_BI_PASSWORD_SHA256 is required)")
    serve_bi.add_argument("--tls-keystore", default=None, metavar="PATH",
                          help="serve over TLS with this Java keystore (JKS or PKCS12; its password in "
                               "PORTRAIT_BI_KEYSTORE_PASSWORD)")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="portrait", description="E-commerce user portraits on Spark.")
    common = _common()
    jobs = parser.add_subparsers(dest="job", required=True, metavar="JOB")
    _add_daily_jobs(jobs, common)
    _add_operations(jobs, common)
    _add_bi(jobs, common)
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
    # Everything a job creates (MLflow's store, reports, exports, the JVM it starts) is the owner's only.
    os.umask(0o077)
    args = _build_parser().parse_args(argv)
    _setup_logging(args.verbose, args.log_format)
    # Imported after the arguments are checked: a mistyped command fails at once, before Spark and MLflow load.
    from portrait import commands

    return commands.run(args)


if __name__ == "__main__":
    sys.exit(main())
