"""Errors the pipeline raises on purpose, each saying what is wrong."""

from __future__ import annotations


class MedallionError(Exception):
    """Base class; `retryable` says whether running the same file again could succeed."""

    retryable: bool = True


class BadInputError(MedallionError):
    """The file itself is wrong (empty, binary, missing columns...): retrying cannot help."""

    retryable = False


class WarehouseBusyError(MedallionError):
    """Another process held the warehouse for longer than the lock timeout."""

    retryable = True


def is_retryable(error: BaseException) -> bool:
    """Whether running the same file again could succeed: only our own errors know; any other may be transient."""
    return error.retryable if isinstance(error, MedallionError) else True
