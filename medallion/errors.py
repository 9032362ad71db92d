"""Errors the pipeline raises on purpose, each saying what is wrong on one printable line."""

from __future__ import annotations

import errno
from pathlib import Path

import duckdb

from medallion.names import printable


class MedallionError(Exception):
    """Base class; `retryable` says whether running the same file again could succeed.

    The message is made printable (`medallion.names.printable`): it often holds a file's name, and it reaches
    logs, the ledger and the sidecar, where a newline in that name must not start a line of its own.
    """

    retryable: bool = True

    def __init__(self, message: str) -> None:
        super().__init__(printable(message))


class BadInputError(MedallionError):
    """The file itself is wrong (empty, binary, missing columns...): retrying cannot help."""

    retryable = False


class ConfigurationError(MedallionError):
    """A setting names something the pipeline cannot use: running again fails the same way until it is changed."""

    retryable = False


class WarehouseBusyError(MedallionError):
    """Another process held the warehouse for longer than the lock timeout."""

    retryable = True


def is_retryable(error: BaseException) -> bool:
    """Whether running the same file again could succeed: only our own errors know; any other may be transient."""
    return error.retryable if isinstance(error, MedallionError) else True


def is_refusal(error: BaseException) -> bool:
    """Whether the error refuses the run for a reason it states (a bad file, a bad setting): its message is the
    whole story, and a traceback would only bury it."""
    return isinstance(error, MedallionError) and not error.retryable


# What the operating system says when a path cannot be used at all, as OSError numbers and as the words DuckDB
# quotes from it. A full disk is not among them: freeing space makes the same path work.
_UNUSABLE_PATH = {
    errno.EROFS: "Read-only file system",
    errno.EACCES: "Permission denied",
    errno.EPERM: "Operation not permitted",
    errno.EISDIR: "Is a directory",
    errno.ENOTDIR: "Not a directory",
    errno.ENOENT: "No such file or directory",
    errno.ENAMETOOLONG: "File name too long",
}


def unusable_path(setting: str, path: Path, error: BaseException) -> ConfigurationError | None:
    """The configuration error to raise when `error` says the path a setting names cannot be used at all (read-only,
    a directory, not permitted...); None for any other error, which may be transient. An OSError says so by its
    number, or by the operating system's words when it comes from DuckDB or Polars without one."""
    if isinstance(error, OSError) and error.errno in _UNUSABLE_PATH:
        reason = _UNUSABLE_PATH[error.errno]
    elif isinstance(error, OSError | duckdb.IOException | duckdb.PermissionException):
        reason = next((words for words in _UNUSABLE_PATH.values() if words in str(error)), "")
        if not reason:
            return None
    else:
        return None
    if str(path) in ("", "."):
        return ConfigurationError(f"{setting} is empty: set it to a writable file path")
    return ConfigurationError(f"{setting}={path} cannot be used ({reason.lower()}): set {setting} to a writable path")
