"""Bronze: every row of a file landed as text with its lineage, once per content; and a failed file's ledger row."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import duckdb
from pydantic import BaseModel

from medallion import reader
from medallion.errors import BadInputError, is_retryable
from medallion.settings import PipelineSettings
from medallion.warehouse import Warehouse, bronze, ledger, sql


class BronzeReport(BaseModel):
    file_id: str
    file_name: str
    size_bytes: int
    layout: str
    encoding: str
    bronze_rows: int
    skipped: bool
    started_at: datetime


def load_bronze(
    warehouse: Warehouse,
    path: Path,
    pipeline: PipelineSettings,
    *,
    flow_run_id: str | None = None,
    refresh_view: bool = True,
) -> BronzeReport:
    """Land every row of the file as text with its lineage; content already loaded is a no-op.

    DuckDB reads a CSV file while another thread hashes it (the hash names the file), unless a loaded file of the
    same name and size suggests a repeat: that file is hashed first, so a repeat is skipped without a read. An
    Excel workbook's profile comes whole from the start. With `refresh_view` False, the caller publishes
    `bronze.transactions` once after several files (`publish_bronze_view`).
    """
    started_at = sql.now()
    publish = _Publish(flow_run_id, started_at, refresh_view)
    try:
        head = reader.head_profile(path)
    except BadInputError as error:
        record_refusal(warehouse, path, error, flow_run_id=flow_run_id, started_at=started_at)
        raise
    with warehouse.connection() as connection:
        if head.file_id or ledger.loaded_file_like(connection, head):
            profile = head if head.file_id else reader.profile_file(path)
            return _profiled_bronze(connection, profile, pipeline, publish)
        return _bronze_read_while_hashed(connection, path, head, pipeline, publish)


def _profiled_bronze(
    connection: duckdb.DuckDBPyConnection, profile: reader.FileProfile, pipeline: PipelineSettings, publish: _Publish
) -> BronzeReport:
    """A wholly profiled file: skipped when its content is loaded already, else published."""
    record = ledger.file_record(connection, profile.file_id)
    if record is not None and record["status"] == "loaded":
        return _bronze_report(profile, int(record["bronze_rows"] or 0), publish.started_at, skipped=True)
    count = _publish_profiled_bronze(connection, profile, pipeline, publish)
    return _bronze_report(profile, count, publish.started_at, skipped=False)


def _bronze_read_while_hashed(
    connection: duckdb.DuckDBPyConnection,
    path: Path,
    head: reader.FileProfile,
    pipeline: PipelineSettings,
    publish: _Publish,
) -> BronzeReport:
    """DuckDB reads the CSV file under a staging name while another thread hashes it."""
    started_at = publish.started_at
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="hash") as pool:
        profiling = pool.submit(reader.profile_file, path)
        try:
            count = bronze.publish_bronze(
                connection,
                head,
                None,
                flow_run_id=publish.flow_run_id,
                started_at=started_at,
                identify=profiling.result,
                refresh_view=publish.refresh_view,
            )
        except bronze.AlreadyLoaded as loaded:
            return _bronze_report(loaded.profile, int(loaded.record["bronze_rows"] or 0), started_at, skipped=True)
        except reader.TolerantParseNeeded:
            # DuckDB's strict reader refused the file, or the whole file reads otherwise than its head (Latin-1
            # after a UTF-8 head, say). The strict reader is tried again only in the second case.
            profile = profiling.result()
            count = _publish_profiled_bronze(
                connection, profile, pipeline, publish, strict=not reader.read_alike(head, profile)
            )
        except BadInputError as error:
            # The file has no data rows, or hashing it found it bad: that error is raised again here, and a
            # file without a whole profile has no ledger entry.
            profile = profiling.result()
            ledger.record_failure(
                connection,
                profile,
                str(error),
                retryable=False,
                flow_run_id=publish.flow_run_id,
                started_at=started_at,
            )
            raise
        else:
            profile = profiling.result()
    return _bronze_report(profile, count, started_at, skipped=False)


class _Publish(NamedTuple):
    """How a file's bronze rows are published: by which run, from when, and whether `bronze.transactions` is
    refreshed with them."""

    flow_run_id: str | None
    started_at: datetime
    refresh_view: bool


def publish_bronze_view(warehouse: Warehouse) -> None:
    """`bronze.transactions` over every file's bronze table, after files published with `refresh_view` False."""
    with warehouse.connection() as connection, sql.transaction(connection):
        bronze.refresh_bronze_view(connection)


def _bronze_report(profile: reader.FileProfile, rows: int, started_at: datetime, *, skipped: bool) -> BronzeReport:
    return BronzeReport(
        file_id=profile.file_id,
        file_name=profile.file_name,
        size_bytes=profile.size_bytes,
        layout=profile.layout,
        encoding=profile.encoding,
        bronze_rows=rows,
        skipped=skipped,
        started_at=started_at,
    )


def _publish_profiled_bronze(
    connection: duckdb.DuckDBPyConnection,
    profile: reader.FileProfile,
    pipeline: PipelineSettings,
    publish: _Publish,
    *,
    strict: bool = True,
) -> int:
    """Publish a wholly profiled file's bronze rows with the fastest reader that takes it: DuckDB's own strict CSV
    reader (unless `strict` is False: it has refused this file already), else the tolerant reader that keeps and
    marks lines with a wrong field count (mixed line endings or encodings, say). Excel workbooks come through
    Polars. A reader that gives up has written nothing; a bad file is recorded failed in the ledger
    and raised."""
    flow_run_id, started_at = publish.flow_run_id, publish.started_at
    try:
        if profile.file_format == "csv" and strict:
            try:
                return bronze.publish_bronze(
                    connection,
                    profile,
                    None,
                    flow_run_id=flow_run_id,
                    started_at=started_at,
                    refresh_view=publish.refresh_view,
                )
            except reader.TolerantParseNeeded:
                pass
        with reader.readable_text(profile, pipeline.staging_path) as text_path:
            # A text file DuckDB's strict reader refused goes to the tolerant reader, which marks every line whose
            # field count is wrong: Polars would pad a line with a field too few without a word.
            tolerant = profile.file_format == "csv"
            batches = reader.row_batches(profile, text_path, pipeline.batch_rows, tolerant=tolerant)
            return bronze.publish_bronze(
                connection,
                profile,
                batches,
                flow_run_id=flow_run_id,
                started_at=started_at,
                refresh_view=publish.refresh_view,
            )
    except BadInputError as error:
        ledger.record_failure(
            connection, profile, str(error), retryable=False, flow_run_id=flow_run_id, started_at=started_at
        )
        raise


def record_file_failure(warehouse: Warehouse, path: Path, error: BaseException, *, flow_run_id: str | None) -> None:
    """Note in the ledger that a file failed after its profile was known, leaving no partial file in silver."""
    try:
        profile = reader.profile_file(path)
    except (BadInputError, reader.FileChangedError):
        return  # no whole profile names the file
    with warehouse.connection() as connection:
        ledger.record_failure(
            connection,
            profile,
            f"{type(error).__name__}: {error}",
            retryable=is_retryable(error),
            flow_run_id=flow_run_id,
            started_at=sql.now(),
        )


def record_refusal(
    warehouse: Warehouse, path: Path, error: BadInputError, *, flow_run_id: str | None, started_at: datetime
) -> None:
    """Enter a file refused before bronze in the ledger, with its reason."""
    file_id, size = _refused_file_id(path, started_at)
    with warehouse.connection() as connection:
        ledger.record_refusal(
            connection,
            file_id=file_id,
            file_name=path.name,
            size_bytes=size,
            error=str(error),
            flow_run_id=flow_run_id,
            started_at=started_at,
        )


def _refused_file_id(path: Path, started_at: datetime) -> tuple[str, int | None]:
    """The hash of a refused regular file's content and its size; for a link, a special or unreadable file, the
    hash of its path and the time (such a file is never read)."""
    try:
        if path.is_file() and not path.is_symlink():
            digest = hashlib.sha256()
            with path.open("rb") as handle:
                while chunk := handle.read(4 * 2**20):
                    digest.update(chunk)
            return digest.hexdigest(), path.stat().st_size
    except OSError:
        pass
    return hashlib.sha256(f"refused:{path}:{started_at.isoformat()}".encode()).hexdigest(), None
