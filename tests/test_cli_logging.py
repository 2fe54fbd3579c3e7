"""Structured logs: ``--log-format json`` (or PORTRAIT_LOG_FORMAT=json) writes one JSON object per line."""

from __future__ import annotations

import json
import logging

from portrait.cli import JsonLogFormatter, _build_parser, _setup_logging


def test_json_formatter_writes_one_parseable_object_with_the_exception():
    try:
        raise ValueError("bad date 2026-13-01")
    except ValueError:
        record = logging.LogRecord("portrait.pipeline", logging.ERROR, __file__, 1, "stage %s: failed", ("train",),
                                   exc_info=__import__("sys").exc_info())
    line = JsonLogFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert (entry["level"], entry["logger"], entry["msg"]) == ("ERROR", "portrait.pipeline", "stage train: failed")
    assert "ValueError: bad date 2026-13-01" in entry["exception"]


def test_log_format_comes_from_the_flag_or_the_environment(monkeypatch, capsys):
    assert _build_parser().parse_args(["features"]).log_format == "text"
    monkeypatch.setenv("PORTRAIT_LOG_FORMAT", "json")
    assert _build_parser().parse_args(["features"]).log_format == "json"
    assert _build_parser().parse_args(["features", "--log-format", "text"]).log_format == "text"
    _setup_logging(False, "json")
    logging.getLogger("portrait.test").info("rows %d", 3)
    entry = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert entry["msg"] == "rows 3" and entry["logger"] == "portrait.test"
    _setup_logging(False, "text")
