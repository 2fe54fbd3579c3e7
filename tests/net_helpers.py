"""Ports for tests: a free one for a server a test starts, and one that is certainly closed.

``free_port`` does not return a port the kernel just handed out (binding port 0 and closing it, the usual
trick): the kernel hands those same ephemeral ports to every other ``bind(0)`` and outgoing connection on the
machine — Spark's driver and block manager, MLflow clients, another test worker — so the port could be taken
before the server binds it. It picks a random port below the ephemeral range instead, where the kernel never
assigns one on its own, and checks that it can be bound. Two tests could still pick the same port at the same
moment; ``start_on_free_port`` retries a start that failed with :class:`PortInUse`.
"""

from __future__ import annotations

import contextlib
import random
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

LOOPBACK = "127.0.0.1"
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 20000  # above the ports of well-known and registered services most machines run
_FALLBACK_EPHEMERAL_START = 32768


class PortInUse(RuntimeError):
    """A server could not bind the port it was given (another process took it first)."""


def _ephemeral_start() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _FALLBACK_EPHEMERAL_START


def _bindable(port: int, host: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = LOOPBACK, attempts: int = 200) -> int:
    """A port on ``host`` that nothing is bound to now, outside the kernel's ephemeral port range."""
    end = _ephemeral_start()
    candidates = range(_LOWEST, end) if end > _LOWEST + 1000 else range(1024, end)
    for port in random.sample(candidates, min(attempts, len(candidates))):
        if _bindable(port, host):
            return port
    raise RuntimeError(f"no free port on {host} among {attempts} tried in {candidates.start}-{candidates.stop - 1}")


def start_on_free_port(start: Callable[[int], T], attempts: int = 3) -> T:
    """``start(port)`` with a free port; again with another port while it raises :class:`PortInUse`."""
    for attempt in range(1, attempts + 1):
        try:
            return start(free_port())
        except PortInUse:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


@contextlib.contextmanager
def closed_port(host: str = LOOPBACK) -> Iterator[int]:
    """A port that refuses connections for as long as the block runs: this process holds it bound without
    listening, so no server can take it and a connection attempt is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind((host, 0))
        yield holder.getsockname()[1]
