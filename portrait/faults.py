"""Storage faults as clear errors: a corrupt transaction log, a storage that refuses writes, a concurrent writer.

Spark and Delta raise these as Java exceptions with long traces; :func:`raise_storage_problem` turns the ones a
user can act on into one message naming the table and what to do, and :func:`retrying_conflicts` retries an
idempotent commit that lost a race (docs/SECURITY.md lists every fault and its handling).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from delta.exceptions import DeltaConcurrentModificationException

if TYPE_CHECKING:
    from portrait.schemas import TableContract

log = logging.getLogger(__name__)


class LakehouseWriteError(OSError):
    """The lakehouse storage refused a write (permissions, not a directory, full); nothing was committed."""


class CorruptTableError(RuntimeError):
    """A table's transaction log cannot be read; the message names the table and the log file."""


class ConcurrentWriteError(RuntimeError):
    """Another job kept committing to the same table while this one retried; nothing of this write committed."""


_CONFLICT_ATTEMPTS = 4
_STORAGE_REFUSALS = ("Permission denied", "AccessDenied", "Access Denied", "Not a directory",
                     "is not a directory", "No space left", "Read-only file system", "DELTA_CANNOT_CREATE_LOG_PATH",
                     "Mkdirs failed", "Disk quota exceeded", "QuotaExceeded")


def storage_problem(exc: BaseException) -> str | None:
    """'corrupt' when ``exc`` comes from an unreadable transaction log, 'refused' when the storage refused a
    write, else None. Looks at the whole (Java) message, so it works wherever Spark raised it."""
    text = str(exc)
    if "_delta_log" in text and any(s in text for s in (
            "FAILED_READ_FILE", "ChecksumException", "JsonParseException", "Unrecognized token",
            "DELTA_LOG_FILE_NOT_FOUND", "DELTA_VERSIONS_NOT_CONTIGUOUS", "MismatchedInputException",
            "DELTA_STATE_RECOVER_ERROR", "Unexpected character")):
        return "corrupt"
    if any(s in text for s in _STORAGE_REFUSALS) or ("FileAlreadyExistsException" in text
                                                     and "not a directory" in text.lower()):
        return "refused"
    return None


def _first_line_with(text: str, *needles: str) -> str:
    for line in text.splitlines():
        if any(n in line for n in needles):
            return line.strip()[:300]
    return text.splitlines()[0][:300] if text else ""


def raise_storage_problem(exc: BaseException, where: object) -> None:
    """Re-raise ``exc`` as :class:`CorruptTableError` / :class:`LakehouseWriteError` with a clear message
    naming the table and what to do; return (do nothing) when it is another kind of error."""
    kind = storage_problem(exc)
    contract = getattr(where, "contract", None)  # a TableRef names its table; a plain string is said as it is
    table = f"table '{contract.name}' at {where}" if contract is not None else str(where)
    text = str(exc)
    if kind == "corrupt":
        detail = _first_line_with(text, "_delta_log")
        raise CorruptTableError(
            f"{table}: its transaction log (_delta_log) cannot be read ({detail}). "
            "Nothing was written. Restore the damaged log file from a backup or the storage's versioning; "
            "do not delete the table: its data files are intact."
        ) from None
    if kind == "refused":
        detail = _first_line_with(text, *_STORAGE_REFUSALS, "FileAlreadyExistsException")
        raise LakehouseWriteError(
            f"cannot write {table}: the storage refused it ({detail}). Nothing was "
            "committed: the table is as it was. Check that the lakehouse path is writable by this job and "
            "has free space, then re-run."
        ) from None


def _is_conflict(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, DeltaConcurrentModificationException) or any(
        s in text for s in ("ConcurrentAppendException", "ConcurrentDeleteReadException",
                            "ConcurrentDeleteDeleteException", "ConcurrentTransactionException",
                            "MetadataChangedException", "ProtocolChangedException", "DELTA_CONCURRENT_",
                            "DELTA_METADATA_CHANGED", "DELTA_PROTOCOL_CHANGED"))


def retrying_conflicts(action, contract: TableContract, attempts: int = _CONFLICT_ATTEMPTS):
    """Run ``action`` (one idempotent Delta commit) again when another writer committed first.

    Raises :class:`ConcurrentWriteError` naming the table after ``attempts`` conflicts in a row.
    """
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception as exc:
            if not _is_conflict(exc):
                raise
            if attempt == attempts:
                raise ConcurrentWriteError(
                    f"table '{contract.name}': another job committed to the same data {attempts} times while "
                    "this one retried; nothing of this write was committed. Make sure only one run per date "
                    "runs at a time (max_concurrent_runs: 1), then re-run."
                ) from exc
            log.warning(
                "table %s: concurrent commit (%s), retrying (%d/%d)", contract.name,
                type(exc).__name__, attempt, attempts - 1)
            time.sleep(0.2 * attempt)
    raise AssertionError("unreachable")
