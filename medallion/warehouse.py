"""The DuckDB warehouse: schema, short-lived connections, the file ledger and atomic publication of layers."""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
from pydantic import BaseModel

from medallion.errors import WarehouseBusyError
from medallion.quality import QualityCounts, QualityScores
from medallion.reader import FileProfile
from medallion.silver import SilverSplit

SCHEMA_SQL = (
    "CREATE SCHEMA IF NOT EXISTS bronze",
    "CREATE SCHEMA IF NOT EXISTS silver",
    "CREATE SCHEMA IF NOT EXISTS gold",
    "CREATE SCHEMA IF NOT EXISTS ops",
    """CREATE TABLE IF NOT EXISTS bronze.transactions (
        file_id VARCHAR NOT NULL, source_file VARCHAR NOT NULL, row_number BIGINT NOT NULL,
        source_index VARCHAR, invoice_no VARCHAR, stock_code VARCHAR, description VARCHAR, quantity VARCHAR,
        invoice_date VARCHAR, unit_price VARCHAR, customer_id VARCHAR, country VARCHAR, parse_error VARCHAR,
        ingested_at TIMESTAMP NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS silver.transactions (
        file_id VARCHAR NOT NULL, row_number BIGINT NOT NULL, source_file VARCHAR NOT NULL,
        invoice_no VARCHAR NOT NULL, stock_code VARCHAR NOT NULL, description VARCHAR,
        quantity BIGINT NOT NULL, unit_price DOUBLE NOT NULL, line_amount DOUBLE NOT NULL, currency VARCHAR NOT NULL,
        customer_id VARCHAR, country VARCHAR NOT NULL, country_raw VARCHAR,
        invoice_ts TIMESTAMP NOT NULL, invoice_date DATE NOT NULL, year INTEGER, month INTEGER, quarter INTEGER,
        day_of_week INTEGER, is_weekend BOOLEAN, transaction_type VARCHAR NOT NULL,
        is_cancellation BOOLEAN NOT NULL, is_bad_debt BOOLEAN NOT NULL, is_non_product BOOLEAN NOT NULL,
        is_guest BOOLEAN NOT NULL, is_zero_price BOOLEAN NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS silver.rejected (
        file_id VARCHAR NOT NULL, row_number BIGINT NOT NULL, source_file VARCHAR NOT NULL, reason VARCHAR NOT NULL,
        invoice_no VARCHAR, stock_code VARCHAR, description VARCHAR, quantity VARCHAR, invoice_date VARCHAR,
        unit_price VARCHAR, customer_id VARCHAR, country VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS ops.files (
        file_id VARCHAR PRIMARY KEY, file_name VARCHAR NOT NULL, size_bytes BIGINT, file_format VARCHAR,
        encoding VARCHAR, layout VARCHAR, date_formats VARCHAR, date_order_source VARCHAR, status VARCHAR NOT NULL,
        bronze_rows BIGINT, silver_rows BIGINT, rejected_rows BIGINT, duplicate_rows BIGINT,
        error VARCHAR, retryable BOOLEAN, started_at TIMESTAMP, bronze_at TIMESTAMP, silver_at TIMESTAMP,
        finished_at TIMESTAMP, duration_s DOUBLE, flow_run_id VARCHAR, superseded_by VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS ops.quality (
        scope VARCHAR NOT NULL, file_id VARCHAR, measured_at TIMESTAMP NOT NULL,
        rows BIGINT, cells BIGINT, filled_cells BIGINT, valid_rows BIGINT, unique_rows BIGINT,
        checked_rows BIGINT, consistent_rows BIGINT,
        completeness DOUBLE, validity DOUBLE, uniqueness DOUBLE, consistency DOUBLE, score DOUBLE,
        threshold DOUBLE, passed BOOLEAN)""",
)

LIVE_STATUSES = ("bronze", "silver", "loaded")
LOCK_MARKERS = ("Could not set lock", "Conflicting lock", "database is locked")


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@contextmanager
def open_warehouse(
    path: Path, *, read_only: bool = False, lock_timeout_s: float = 120.0, memory_limit: str = "512MB"
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection with the schema in place; waits while another process holds the file.

    DuckDB spills to disk beyond `memory_limit`, which keeps a large file's load within bounded memory.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + lock_timeout_s
    delay = 0.05
    while True:
        try:
            connection = duckdb.connect(str(path), read_only=read_only, config={"memory_limit": memory_limit})
            break
        except duckdb.IOException as error:
            if not any(marker in str(error) for marker in LOCK_MARKERS):
                raise
            if time.monotonic() >= deadline:
                raise WarehouseBusyError(
                    f"the warehouse {path.name} stayed locked by another process for {lock_timeout_s:.0f} s"
                ) from None
            time.sleep(delay + random.uniform(0, delay))
            delay = min(delay * 2, 1.0)
    try:
        if not read_only:
            for statement in SCHEMA_SQL:
                connection.execute(statement)
        yield connection
    finally:
        connection.close()


@contextmanager
def transaction(connection: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Everything inside commits together or not at all."""
    connection.begin()
    try:
        yield connection
    except BaseException:
        connection.rollback()
        raise
    connection.commit()


class FrameStream:
    """Frames handed to DuckDB as one Arrow stream, so a whole file is one INSERT with bounded memory.

    A file that fits in one frame is handed over as that frame instead, which DuckDB scans on every core.
    DuckDB reports an exception raised while the frames are produced as its own error; `reraise` restores it.
    """

    def __init__(self, frames: Iterable[pl.DataFrame]) -> None:
        self._frames = iter(frames)
        self.error: BaseException | None = None
        first = next(self._frames, None)
        second = next(self._frames, None) if first is not None else None
        self._head = [frame for frame in (first, second) if frame is not None]
        self.only_frame = first if second is None else None
        self.rows = self.only_frame.height if self.only_frame is not None else 0
        self.schema = first.to_arrow().schema if first is not None else None

    def source(self) -> pl.DataFrame | pa.RecordBatchReader:
        """What to register with DuckDB: the single frame, or a stream of all of them."""
        if self.schema is None:
            raise ValueError("an empty stream has no schema")
        if self.only_frame is not None:
            return self.only_frame
        return pa.RecordBatchReader.from_batches(self.schema, self._arrow_batches())

    def _arrow_batches(self) -> Iterator[pa.RecordBatch]:
        try:
            for frame in _chain(self._head, self._frames):
                self.rows += frame.height
                yield from frame.to_arrow().cast(self.schema).to_batches()
        except BaseException as error:
            self.error = error
            raise

    def reraise(self, error: BaseException) -> None:
        """Raise what the producer raised, if the DuckDB error came from there, else the DuckDB error."""
        if self.error is not None:
            raise self.error from None
        raise error


def _chain(head: list[pl.DataFrame], rest: Iterator[pl.DataFrame]) -> Iterator[pl.DataFrame]:
    yield from head
    yield from rest


def first_row(connection: duckdb.DuckDBPyConnection, sql: str, parameters: object = None) -> dict[str, Any] | None:
    """The first row of a query by column name; the whole result is consumed so the connection stays usable."""
    cursor = connection.execute(sql, parameters)
    rows = cursor.fetchall()
    if not rows:
        return None
    return dict(zip([column[0] for column in cursor.description], rows[0], strict=True))


def file_record(connection: duckdb.DuckDBPyConnection, file_id: str) -> dict[str, Any] | None:
    return first_row(connection, "SELECT * FROM ops.files WHERE file_id = ?", [file_id])


def query_frame(connection: duckdb.DuckDBPyConnection, sql: str, parameters: object = None) -> pl.DataFrame:
    """The result of a query as a Polars frame, through Arrow."""
    result = pl.from_arrow(connection.sql(sql, params=parameters).to_arrow_table())
    assert isinstance(result, pl.DataFrame)
    return result


def file_ledger(connection: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return query_frame(
        connection,
        """SELECT file_name, status, bronze_rows, silver_rows, rejected_rows, duplicate_rows,
                  finished_at, duration_s, left(file_id, 12) AS file_id, error
           FROM ops.files ORDER BY coalesce(finished_at, started_at) DESC NULLS LAST""",
    )


def publish_bronze(
    connection: duckdb.DuckDBPyConnection,
    profile: FileProfile,
    batches: Iterable[pl.DataFrame],
    *,
    flow_run_id: str | None,
    started_at: datetime,
) -> tuple[int, pl.DataFrame | None]:
    """Replace this file's bronze rows and mark it `bronze` in the ledger, in one transaction.

    Returns the row count and, when the file came in a single batch, that batch.
    """
    ingested_at = now()
    stream = FrameStream(batches)
    with transaction(connection):
        connection.execute("DELETE FROM bronze.transactions WHERE file_id = ?", [profile.file_id])
        if stream.schema is not None:
            connection.register("bronze_batches", stream.source())
            try:
                connection.execute(
                    """INSERT INTO bronze.transactions BY NAME
                       SELECT ? AS file_id, ? AS source_file, ?::TIMESTAMP AS ingested_at, row_number, source_index,
                              invoice_no, stock_code, description, quantity, invoice_date, unit_price, customer_id,
                              country, parse_error
                       FROM bronze_batches""",
                    [profile.file_id, profile.file_name, ingested_at],
                )
            except duckdb.Error as error:
                stream.reraise(error)
            connection.unregister("bronze_batches")
        _upsert_file(connection, profile, flow_run_id=flow_run_id, started_at=started_at)
        connection.execute(
            "UPDATE ops.files SET status = 'bronze', bronze_rows = ?, bronze_at = ? WHERE file_id = ?",
            [stream.rows, ingested_at, profile.file_id],
        )
    return stream.rows, stream.only_frame


def record_failure(
    connection: duckdb.DuckDBPyConnection,
    profile: FileProfile,
    error: str,
    *,
    retryable: bool,
    flow_run_id: str | None,
    started_at: datetime,
) -> None:
    """Mark a file failed in the ledger and take its rows out of silver, so no layer holds part of it."""
    with transaction(connection):
        _upsert_file(connection, profile, flow_run_id=flow_run_id, started_at=started_at)
        for table in ("silver.transactions", "silver.rejected"):
            connection.execute(_DELETE_BY_FILE[table], [profile.file_id])
        finished = now()
        connection.execute(
            """UPDATE ops.files SET status = 'failed', error = ?, retryable = ?, finished_at = ?,
               duration_s = date_diff('millisecond', started_at, ?) / 1000.0 WHERE file_id = ?""",
            [error, retryable, finished, finished, profile.file_id],
        )


def _upsert_file(
    connection: duckdb.DuckDBPyConnection,
    profile: FileProfile,
    *,
    flow_run_id: str | None,
    started_at: datetime,
) -> None:
    connection.execute(
        """INSERT INTO ops.files (file_id, file_name, size_bytes, file_format, encoding, layout, status,
               started_at, flow_run_id)
           VALUES (?, ?, ?, ?, ?, ?, 'started', ?, ?)
           ON CONFLICT (file_id) DO UPDATE SET file_name = excluded.file_name, status = 'started',
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


def bronze_rows(
    connection: duckdb.DuckDBPyConnection, file_id: str, first_row: int = 1, last_row: int | None = None
) -> pl.DataFrame:
    """One file's bronze rows numbered `first_row` to `last_row` (to the end when None), in file order."""
    return query_frame(
        connection,
        """SELECT source_file, row_number, source_index, invoice_no, stock_code, description, quantity,
                  invoice_date, unit_price, customer_id, country, parse_error
           FROM bronze.transactions
           WHERE file_id = ? AND row_number BETWEEN ? AND coalesce(?, 9223372036854775807)
           ORDER BY row_number""",
        [file_id, first_row, last_row],
    )


class BronzeContext(BaseModel, arbitrary_types_allowed=True):
    """What transforming one batch needs to know about the whole file."""

    file_name: str
    rows: int
    distinct_dates: pl.Series
    duplicate_rows: pl.Series
    inconsistent_invoices: pl.Series


_CONTENT = "invoice_no, stock_code, description, quantity, invoice_date, unit_price, customer_id, country"

_DUPLICATE_ROWS_SQL = f"""
    WITH hashed AS (
        SELECT row_number, hash({_CONTENT}) AS line_hash FROM bronze.transactions WHERE file_id = $file_id),
    repeated AS (SELECT line_hash FROM hashed GROUP BY line_hash HAVING count(*) > 1),
    candidates AS (
        SELECT b.row_number, {", ".join(f"b.{column}" for column in _CONTENT.split(", "))}
        FROM bronze.transactions b JOIN hashed h USING (row_number)
        WHERE b.file_id = $file_id AND h.line_hash IN (SELECT line_hash FROM repeated))
    SELECT row_number FROM candidates
    QUALIFY row_number() OVER (PARTITION BY {_CONTENT} ORDER BY row_number) > 1
    ORDER BY row_number"""  # noqa: S608 - built from constant fragments only

# An invoice is one order: one customer in one country. Compared on trimmed text as received.
_INCONSISTENT_INVOICES_SQL = """
    SELECT upper(trim(invoice_no)) AS invoice_no
    FROM bronze.transactions WHERE file_id = ? AND nullif(trim(invoice_no), '') IS NOT NULL
    GROUP BY 1
    HAVING count(DISTINCT coalesce(regexp_replace(trim(customer_id), '\.0+$', ''), '')) > 1
        OR count(DISTINCT coalesce(upper(trim(country)), '')) > 1"""


def bronze_context(connection: duckdb.DuckDBPyConnection, file_id: str) -> BronzeContext:
    """File-wide facts computed in DuckDB: distinct date strings, exact repeat lines, inconsistent invoices."""
    summary = first_row(
        connection,
        "SELECT any_value(source_file) AS file_name, count(*) AS rows FROM bronze.transactions WHERE file_id = ?",
        [file_id],
    )
    if summary is None or not summary["rows"]:
        raise LookupError(f"file {file_id[:12]} has no bronze rows; load its bronze layer first")
    dates = query_frame(
        connection,
        "SELECT DISTINCT invoice_date FROM bronze.transactions WHERE file_id = ? AND invoice_date IS NOT NULL",
        [file_id],
    )["invoice_date"]
    duplicates = query_frame(connection, _DUPLICATE_ROWS_SQL, {"file_id": file_id})["row_number"]
    inconsistent = query_frame(connection, _INCONSISTENT_INVOICES_SQL, [file_id])["invoice_no"]
    return BronzeContext(
        file_name=summary["file_name"],
        rows=summary["rows"],
        distinct_dates=dates,
        duplicate_rows=duplicates,
        inconsistent_invoices=inconsistent,
    )


_INSERT_SILVER = {
    False: """INSERT INTO silver.transactions BY NAME
              SELECT ? AS file_id, ? AS source_file, ? AS currency, * FROM silver_batches""",
    True: """INSERT INTO silver.transactions_rebuild BY NAME
             SELECT ? AS file_id, ? AS source_file, ? AS currency, * FROM silver_batches""",
}
_INSERT_REJECTED = {
    False: "INSERT INTO silver.rejected BY NAME SELECT ? AS file_id, ? AS source_file, * FROM rejected_rows",
    True: "INSERT INTO silver.rejected_rebuild BY NAME SELECT ? AS file_id, ? AS source_file, * FROM rejected_rows",
}


class SilverPublication:
    """One transaction that replaces a file's silver rows batch by batch, then records the totals.

    Older versions of the same file name leave silver in the same transaction. With `rebuild`, the rows go to
    the rebuild tables that `swap_in_rebuilt_silver` later puts in place of silver, and the ledger is left alone.
    """

    def __init__(
        self,
        connection: duckdb.DuckDBPyConnection,
        file_id: str,
        file_name: str,
        currency: str,
        *,
        rebuild: bool = False,
    ) -> None:
        self.rebuild = rebuild
        self.connection = connection
        self.file_id = file_id
        self.file_name = file_name
        self.currency = currency
        self.silver_rows = 0
        self.rejected_rows = 0
        self.duplicate_rows = 0
        self.superseded: list[str] = []

    def __enter__(self) -> SilverPublication:
        connection = self.connection
        connection.begin()
        if self.rebuild:
            return self
        try:
            if not connection.execute("SELECT 1 FROM ops.files WHERE file_id = ?", [self.file_id]).fetchall():
                raise LookupError(f"file {self.file_id[:12]} has no ledger entry; load its bronze layer first")
            self.superseded = [
                row[0]
                for row in connection.execute(
                    """SELECT file_id FROM ops.files
                       WHERE file_name = ? AND file_id <> ? AND status IN ('silver', 'loaded')""",
                    [self.file_name, self.file_id],
                ).fetchall()
            ]
            for table in ("silver.transactions", "silver.rejected"):
                for target in [self.file_id, *self.superseded]:
                    connection.execute(_DELETE_BY_FILE[table], [target])
        except BaseException:
            connection.rollback()
            raise
        return self

    def add(self, splits: Iterable[SilverSplit]) -> None:
        """Insert the silver rows of every split as one stream; the rejected rows follow in one insert."""
        rejected: list[pl.DataFrame] = []

        def silver_frames() -> Iterator[pl.DataFrame]:
            for split in splits:
                rejected.append(split.rejected)
                self.rejected_rows += split.rejected.height
                self.duplicate_rows += split.duplicate_rows
                yield split.silver

        stream = FrameStream(silver_frames())
        connection = self.connection
        if stream.schema is not None:
            connection.register("silver_batches", stream.source())
            try:
                connection.execute(_INSERT_SILVER[self.rebuild], [self.file_id, self.file_name, self.currency])
            except duckdb.Error as error:
                stream.reraise(error)
            connection.unregister("silver_batches")
        self.silver_rows += stream.rows
        if rejected:
            connection.register("rejected_rows", pl.concat(rejected, how="vertical"))
            connection.execute(_INSERT_REJECTED[self.rebuild], [self.file_id, self.file_name])
            connection.unregister("rejected_rows")

    def finish(self, *, date_formats: list[str], date_order_source: str) -> None:
        """Record the totals in the ledger; the rows become visible when the block ends without error."""
        if self.rebuild:
            return
        for old in self.superseded:
            self.connection.execute(
                "UPDATE ops.files SET status = 'superseded', superseded_by = ? WHERE file_id = ?",
                [self.file_id, old],
            )
        self.connection.execute(
            """UPDATE ops.files SET status = 'silver', silver_rows = ?, rejected_rows = ?, duplicate_rows = ?,
               date_formats = ?, date_order_source = ?, silver_at = ? WHERE file_id = ?""",
            [
                self.silver_rows,
                self.rejected_rows,
                self.duplicate_rows,
                " | ".join(date_formats),
                date_order_source,
                now(),
                self.file_id,
            ],
        )

    def __exit__(self, error_type: object, error: object, traceback: object) -> None:
        if error_type is None:
            self.connection.commit()
        else:
            self.connection.rollback()


def live_files(connection: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(file_id, file_name) of every file whose rows are in silver now, oldest first."""
    return [
        (row[0], row[1])
        for row in connection.execute(
            """SELECT file_id, file_name FROM ops.files WHERE status IN ('silver', 'loaded')
               ORDER BY silver_at, file_id"""
        ).fetchall()
    ]


def prepare_silver_rebuild(connection: duckdb.DuckDBPyConnection) -> None:
    """Empty rebuild tables shaped exactly like silver's."""
    with transaction(connection):
        for statement in _REBUILD_TABLES_SQL:
            connection.execute(statement)


def swap_in_rebuilt_silver(
    connection: duckdb.DuckDBPyConnection,
    totals: list[tuple[str, int, int, int, QualityCounts, QualityScores]],
    *,
    threshold: float,
) -> None:
    """Put the rebuilt tables in place of silver and record each file's new totals, all in one transaction.

    `totals` holds (file_id, silver rows, rejected rows, duplicate rows, quality counts, quality scores).
    """
    with transaction(connection):
        for statement in _SWAP_SQL:
            connection.execute(statement)
        for file_id, silver_rows, rejected_rows, duplicate_rows, counts, scores in totals:
            connection.execute(
                """UPDATE ops.files SET silver_rows = ?, rejected_rows = ?, duplicate_rows = ?, silver_at = ?
                   WHERE file_id = ?""",
                [silver_rows, rejected_rows, duplicate_rows, now(), file_id],
            )
            connection.execute("DELETE FROM ops.quality WHERE scope = 'file' AND file_id = ?", [file_id])
            _insert_quality(connection, "file", file_id, counts, scores, threshold)


_REBUILD_TABLES_SQL = (
    "DROP TABLE IF EXISTS silver.transactions_rebuild",
    "DROP TABLE IF EXISTS silver.rejected_rebuild",
    SCHEMA_SQL[5].replace("IF NOT EXISTS silver.transactions", "silver.transactions_rebuild"),
    SCHEMA_SQL[6].replace("IF NOT EXISTS silver.rejected", "silver.rejected_rebuild"),
)
_SWAP_SQL = (
    "DROP TABLE silver.transactions",
    "ALTER TABLE silver.transactions_rebuild RENAME TO transactions",
    "DROP TABLE silver.rejected",
    "ALTER TABLE silver.rejected_rebuild RENAME TO rejected",
)


_DELETE_BY_FILE = {
    "silver.transactions": "DELETE FROM silver.transactions WHERE file_id = ?",
    "silver.rejected": "DELETE FROM silver.rejected WHERE file_id = ?",
}


def record_quality(
    connection: duckdb.DuckDBPyConnection,
    *,
    scope: str,
    file_id: str | None,
    counts: QualityCounts,
    scores: QualityScores,
    threshold: float,
) -> None:
    """Store one quality measurement; a file's measurement replaces its previous one."""
    with transaction(connection):
        if scope == "file":
            connection.execute("DELETE FROM ops.quality WHERE scope = 'file' AND file_id = ?", [file_id])
        _insert_quality(connection, scope, file_id, counts, scores, threshold)


def _insert_quality(
    connection: duckdb.DuckDBPyConnection,
    scope: str,
    file_id: str | None,
    counts: QualityCounts,
    scores: QualityScores,
    threshold: float,
) -> None:
    connection.execute(
        "INSERT INTO ops.quality VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            scope,
            file_id,
            now(),
            counts.rows,
            counts.cells,
            counts.filled_cells,
            counts.valid_rows,
            counts.unique_rows,
            counts.checked_rows,
            counts.consistent_rows,
            scores.completeness,
            scores.validity,
            scores.uniqueness,
            scores.consistency,
            scores.score,
            threshold,
            scores.score >= threshold,
        ],
    )


def live_quality_counts(connection: duckdb.DuckDBPyConnection) -> QualityCounts:
    """The quality counts of every file whose rows are in silver now, added up."""
    row = first_row(
        connection,
        """SELECT count(*) AS files, coalesce(sum(q.rows), 0), coalesce(sum(q.cells), 0),
                  coalesce(sum(q.filled_cells), 0), coalesce(sum(q.valid_rows), 0), coalesce(sum(q.unique_rows), 0),
                  coalesce(sum(q.checked_rows), 0), coalesce(sum(q.consistent_rows), 0)
           FROM ops.quality q JOIN ops.files f USING (file_id)
           WHERE q.scope = 'file' AND f.status IN ('silver', 'loaded')""",
    )
    assert row is not None
    names = ("rows", "cells", "filled_cells", "valid_rows", "unique_rows", "checked_rows", "consistent_rows")
    values = list(row.values())[1:]
    return QualityCounts(**dict(zip(names, (int(value) for value in values), strict=True)))


def mark_loaded(connection: duckdb.DuckDBPyConnection, file_id: str) -> None:
    finished = now()
    with transaction(connection):
        connection.execute(
            """UPDATE ops.files SET status = 'loaded', finished_at = ?,
               duration_s = date_diff('millisecond', started_at, ?) / 1000.0 WHERE file_id = ?""",
            [finished, finished, file_id],
        )
