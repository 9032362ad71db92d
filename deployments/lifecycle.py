"""Where a dropped file goes after its run: processed (dated) on success, errors with a JSON sidecar on failure."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from medallion.file_kinds import is_data_file_name, suffix_of
from medallion.settings import PipelineSettings, ServiceSettings

logger = logging.getLogger(__name__)

ERRORS_DIR_NAME = "errors"
SIDECAR_SUFFIX = ".error.json"

Location = Literal["raw", "errors"]


class ErrorRecord(BaseModel):
    """The sidecar `<name>.error.json` written beside a failed file."""

    file_name: str
    reason: str
    error_type: str
    retryable: bool
    attempts: int
    flow_run_id: str | None
    deployment: str | None
    failed_at: datetime
    next_attempt_at: datetime | None
    content_sha256: str | None = None


def errors_dir(pipeline: PipelineSettings) -> Path:
    return pipeline.raw_data_path / ERRORS_DIR_NAME


def sidecar_path(file_path: Path) -> Path:
    return file_path.with_name(file_path.name + SIDECAR_SUFFIX)


def location_of(path: Path, pipeline: PipelineSettings) -> Location | None:
    """Which managed folder holds this regular file, or None: files elsewhere are never moved."""
    if path.is_symlink() or not path.is_file():
        return None
    parent = path.resolve().parent
    if parent == pipeline.raw_data_path.resolve():
        return "raw"
    if parent == errors_dir(pipeline).resolve():
        return "errors"
    return None


Signature = tuple[int, int]


def file_signature(path: Path) -> Signature | None:
    """Size and modification time: a file still being written changes one of them."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return status.st_size, status.st_mtime_ns


def _changed_since(path: Path, expected: Signature | None) -> bool:
    if expected is None or file_signature(path) == expected:
        return False
    logger.warning("%s changed while it was being loaded: left where it is for the watcher", path.name)
    return True


def content_sha256(path: Path, chunk_bytes: int = 4 * 1024 * 1024) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def free_destination(directory: Path, name: str) -> Path:
    """`directory/name`, or `name-2`, `name-3`... before the suffix when that is taken."""
    safe_name = Path(name).name
    if safe_name in {"", ".", ".."}:
        raise ValueError(f"not a file name: {name!r}")
    candidate = directory / safe_name
    suffix = suffix_of(safe_name)
    stem = safe_name[: len(safe_name) - len(suffix)]
    counter = 2
    while candidate.exists() or sidecar_path(candidate).exists():
        candidate = directory / f"{stem}-{counter}{suffix}"
        counter += 1
    if candidate.resolve().parent != directory.resolve():
        raise ValueError(f"destination escapes {directory}: {name!r}")
    return candidate


def _move(source: Path, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    destination = free_destination(directory, source.name)
    shutil.move(os.fspath(source), os.fspath(destination))
    return destination


def move_to_processed(
    path: Path, pipeline: PipelineSettings, now: datetime | None = None, expected: Signature | None = None
) -> Path | None:
    """Move a managed file to `processed/<UTC date>/` (and drop its sidecar); unmanaged or changed files stay put."""
    location = location_of(path, pipeline)
    if location is None or _changed_since(path, expected):
        return None
    day = (now or datetime.now(UTC)).strftime("%Y-%m-%d")
    old_sidecar = sidecar_path(path)
    destination = _move(path, pipeline.processed_path / day)
    if location == "errors":
        old_sidecar.unlink(missing_ok=True)
    return destination


def error_record(
    path: Path,
    error: BaseException,
    attempts: int,
    flow_run_id: str | None,
    deployment: str | None,
    service: ServiceSettings,
    now: datetime | None = None,
    sha256: str | None = None,
) -> ErrorRecord:
    failed_at = now or datetime.now(UTC)
    retryable = bool(getattr(error, "retryable", True))
    retry_left = retryable and attempts <= service.error_max_retries
    return ErrorRecord(
        file_name=path.name,
        reason=str(error) or type(error).__name__,
        error_type=type(error).__name__,
        retryable=retryable,
        attempts=attempts,
        flow_run_id=flow_run_id,
        deployment=deployment,
        failed_at=failed_at,
        next_attempt_at=failed_at + timedelta(seconds=service.error_retry_delay_s) if retry_left else None,
        content_sha256=sha256,
    )


def write_sidecar(file_path: Path, record: ErrorRecord) -> Path:
    target = sidecar_path(file_path)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(record.model_dump_json(indent=2), encoding="utf-8")
    os.replace(temporary, target)
    return target


def read_sidecar(file_path: Path) -> ErrorRecord | None:
    target = sidecar_path(file_path)
    try:
        return ErrorRecord.model_validate(json.loads(target.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def move_to_errors(
    path: Path, pipeline: PipelineSettings, record: ErrorRecord, expected: Signature | None = None
) -> Path | None:
    """Move a managed file to `raw/errors/` (if not there yet) with its sidecar; unmanaged or changed files stay put."""
    location = location_of(path, pipeline)
    if location is None or _changed_since(path, expected):
        return None
    destination = path if location == "errors" else _move(path, errors_dir(pipeline))
    write_sidecar(destination, record.model_copy(update={"file_name": destination.name}))
    return destination


def due_retries(pipeline: PipelineSettings, now: datetime | None = None) -> Iterator[tuple[Path, ErrorRecord]]:
    """Files in `raw/errors/` whose sidecar says a retry is allowed and due."""
    folder = errors_dir(pipeline)
    if not folder.is_dir():
        return
    moment = now or datetime.now(UTC)
    for entry in sorted(folder.iterdir()):
        if not is_data_file_name(entry.name) or not entry.is_file() or entry.is_symlink():
            continue
        record = read_sidecar(entry)
        if record is None or not record.retryable or record.next_attempt_at is None:
            continue
        if record.next_attempt_at <= moment:
            yield entry, record


def unattended_files(pipeline: PipelineSettings, min_age_seconds: float, now: float | None = None) -> list[Path]:
    """Data files in the raw folder untouched for `min_age_seconds`: ones the watcher did not pick up."""
    folder = pipeline.raw_data_path
    if not folder.is_dir():
        return []
    moment = time.time() if now is None else now
    found = []
    for entry in sorted(folder.iterdir()):
        if is_data_file_name(entry.name) and entry.is_file() and not entry.is_symlink():
            if moment - entry.stat().st_mtime >= min_age_seconds:
                found.append(entry)
    return found
