"""What every stage shares: timing in the log, and the versions of the input tables a run reads."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from portrait.lakehouse import Lakehouse
from portrait.schemas import IDENTITY_GRAPH, INPUT_TABLES

log = logging.getLogger("portrait.stages")


@contextmanager
def timed(name: str) -> Iterator[None]:
    """Log a step's start and elapsed time, so a long run shows where it is."""
    started = time.monotonic()
    log.info("stage %s: started", name)
    status = "failed"
    try:
        yield
        status = "done"
    finally:
        log.info("stage %s: %s in %.1f s", name, status, time.monotonic() - started)


def input_versions(lake: Lakehouse) -> dict[str, int]:
    """Current versions of the input tables (and the identity graph) that exist: what a run reads."""
    return lake.versions((*INPUT_TABLES, IDENTITY_GRAPH))
