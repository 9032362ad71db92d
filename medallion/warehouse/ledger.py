"""The file ledger `ops.files`: one row per file's content, its status through the layers and its totals."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

import duckdb
import polars as pl

from medallion.reader import FileProfile
from medallion.warehouse.sql import first_row, now, query_frame, scalar, transaction


class LiveFile(NamedTuple):
    """A file whose rows are in silver now."""

    file_id: str
    file_name: str


def file_record(connection: duckdb.DuckDBPyConnection, file_id: str) -> dict[str, Any] | None:
    """The file's ledger row by column name, or None when the ledger has never seen it."""
    return first_row(connection, "SELECT * FROM ops.files WHERE file_id = ?", [file_id])


def file_ledger(connection: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The ledger as a user reads it, the latest file first."""
    return query_frame(
        connection,
        """SELECT file_name, status, bronze_rows, silver_rows, rejected_rows, duplicate_rows, overlap_rows,
                  changed_invoices, finished_at, duration_s, left(file_id, 12) AS file_id, error
           FROM ops.files ORDER BY coalesce(finished_at, started_at) DESC NULLS LAST""",
    )


def loaded_file_like(connection: duckdb.DuckDBPyConnection, profile: FileProfile) -> bool:
    """Whether a loaded file has this file's name and size: a hint, not proof, that its content is loaded."""
    return bool(
        connection.execute(
            "SELECT 1 FROM ops.files WHERE file_name = ? AND size_bytes = ? AND status = 'loaded' LIMIT 1",
            [profile.file_name, profile.size_bytes],
        ).fetchall()
    )


def key_of_file(connection: duckdb.DuckDBPyConnection, file_id: str) -> int:
    """The small key silver.lines knows a file by, from the ledger."""
    key = scalar(connection, "SELECT file_key FROM ops.files WHERE file_id = ?", [file_id])
    if key is None:
        raise LookupError(f"file {file_id[:12]} has no file key in the ledger; load its bronze layer first")
    return int(key)


def live_files(connection: duckdb.DuckDBPyConnection) -> list[LiveFile]:
    """Every file whose rows are in silver now, oldest first."""
    return [
        LiveFile(str(file_id), str(file_name))
        for file_id, file_name in connection.execute(
            """SELECT file_id, file_name FROM ops.files WHERE status IN ('silver', 'loaded')
               ORDER BY silver_at, file_id"""
        ).fetchall()
    ]


def upsert_file(
    connection: duckdb.DuckDBPyConnection,
    profile: FileProfile,
    *,
    flow_run_id: str | None,
    started_at: datetime,
) -> None:
    """Enter the file as `started`, keeping the key and totals of a ledger row it already has."""
    connection.execute(
        """INSERT INTO ops.files (file_id, file_name, size_bytes, file_format, encoding, layout, status,
               started_at, flow_run_id, file_key)
           VALUES (?, ?, ?, ?, ?, ?, 'started', ?, ?, nextval('ops.file_keys'))
           ON CONFLICT (file_id) DO UPDATE SET file_name = excluded.file_name, status = 'started',
               file_key = coalesce(ops.files.file_key, excluded.file_key),
               started_at = excluded.started_at, flow_run_id = excluded.flow_run_id, error = NULL,
               retryable = NULL, finished_at = NULL, superseded_by = NULL""",
        [
            profile.file_id,
            profile.file_name,
            profile.size_bytes,
            profile.file_format,
            profile.encoding,
            profile.layout,
            started_at,
            flow_run_id,
        ],
    )


def record_refusal(
    connection: duckdb.DuckDBPyConnection,
    *,
    file_id: str,
    file_name: str,
    size_bytes: int | None,
    error: str,
    flow_run_id: str | None,
    started_at: datetime,
) -> None:
    """Enter a file refused before bronze (empty, wrong columns, not a regular file...) failed, with its reason.

    A row of a loaded file with the same id is left alone: the same content was loaded under another name.
    """
    with transaction(connection):
        connection.execute(
            """INSERT INTO ops.files (file_id, file_name, size_bytes, status, error, retryable, started_at,
                   finished_at, duration_s, flow_run_id, file_key)
               VALUES (?, ?, ?, 'failed', ?, false, ?, ?, date_diff('millisecond', ?, ?) / 1000.0, ?,
                   nextval('ops.file_keys'))
               ON CONFLICT (file_id) DO UPDATE SET file_name = excluded.file_name, error = excluded.error,
                   retryable = false, started_at = excluded.started_at, finished_at = excluded.finished_at,
                   duration_s = excluded.duration_s, flow_run_id = excluded.flow_run_id
               WHERE ops.files.status = 'failed'""",
            [file_id, file_name, size_bytes, error, started_at, now(), started_at, now(), flow_run_id],
        )


def delete_file_silver(connection: duckdb.DuckDBPyConnection, file_id: str) -> None:
    """Take one file's rows out of silver.lines and silver.rejected."""
    connection.execute("DELETE FROM silver.lines WHERE file_key = ?", [key_of_file(connection, file_id)])
    connection.execute("DELETE FROM silver.rejected WHERE file_id = ?", [file_id])


# A failed file holds no rows in any layer, so its row keeps no totals, not even those of an earlier attempt.
_FAILED_SQL = """UPDATE ops.files SET status = 'failed', error = ?, retryable = ?, finished_at = ?,
        duration_s = date_diff('millisecond', started_at, ?) / 1000.0, bronze_rows = NULL, silver_rows = NULL,
        rejected_rows = NULL, duplicate_rows = NULL, overlap_rows = NULL, changed_invoices = NULL, bronze_at = NULL,
        silver_at = NULL, superseded_by = NULL
    WHERE file_id = ?"""


def record_failure(
    connection: duckdb.DuckDBPyConnection,
    profile: FileProfile,
    error: str,
    *,
    retryable: bool,
    flow_run_id: str | None,
    started_at: datetime,
) -> None:
    """Enter the file failed in the ledger, with no rows in silver and no quality of its own."""
    with transaction(connection):
        upsert_file(connection, profile, flow_run_id=flow_run_id, started_at=started_at)
        withdraw_file(connection, profile.file_id, error, retryable=retryable)


def withdraw_file(connection: duckdb.DuckDBPyConnection, file_id: str, error: str, *, retryable: bool) -> list[str]:
    """Inside the caller's transaction: mark the file failed and take out of silver and the quality history what
    its run put there (its rows, its score, the dataset scores measured since it started). The versions of the
    same name it superseded are entered loaded again; returns their ids, whose silver rows the caller puts back."""
    delete_file_silver(connection, file_id)
    connection.execute(
        """DELETE FROM ops.quality WHERE (scope = 'file' AND file_id = ?)
           OR (scope = 'dataset' AND measured_at >= (SELECT started_at FROM ops.files WHERE file_id = ?))""",
        [file_id, file_id],
    )
    superseded = [
        str(row[0])
        for row in connection.execute(
            "SELECT file_id FROM ops.files WHERE superseded_by = ? AND status = 'superseded' ORDER BY file_key",
            [file_id],
        ).fetchall()
    ]
    finished = now()
    connection.execute(_FAILED_SQL, [error, retryable, finished, finished, file_id])
    return superseded


def reinstate_file(connection: duckdb.DuckDBPyConnection, file_id: str) -> None:
    """Enter a version a failed run had superseded loaded again, once its silver rows are back."""
    connection.execute("UPDATE ops.files SET status = 'loaded', superseded_by = NULL WHERE file_id = ?", [file_id])


def mark_loaded(connection: duckdb.DuckDBPyConnection, *file_ids: str) -> None:
    """Mark the files loaded through every layer, together, each with its run's duration."""
    finished = now()
    with transaction(connection):
        connection.executemany(
            """UPDATE ops.files SET status = 'loaded', finished_at = ?,
               duration_s = date_diff('millisecond', started_at, ?) / 1000.0 WHERE file_id = ?""",
            [[finished, finished, file_id] for file_id in file_ids],
        )
