"""The DuckDB warehouse: schema, short-lived connections, the file ledger and atomic publication of layers."""

from __future__ import annotations

import random
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
from pydantic import BaseModel

from medallion import quality, silver
from medallion.errors import BadInputError, WarehouseBusyError
from medallion.quality import QualityCounts, QualityScores
from medallion.reader import CANONICAL_COLUMNS, FileProfile, TolerantParseNeeded, read_alike
from medallion.settings import DEFAULT_DUCKDB_MEMORY_LIMIT

# Silver's rows as stored. What is the same for every row of a file (its id, name and currency) is in ops.files,
# reached through a small file key: written per row, those three columns cost 0.3 s of the 10x file's 2.3 s insert.
# `silver.transactions` is the view with every column.
SILVER_LINES_SQL = """CREATE TABLE IF NOT EXISTS silver.lines (
    file_key INTEGER NOT NULL, row_number BIGINT NOT NULL,
    invoice_no VARCHAR NOT NULL, stock_code VARCHAR NOT NULL, description VARCHAR,
    quantity BIGINT NOT NULL, unit_price DOUBLE NOT NULL, line_amount DOUBLE NOT NULL,
    customer_id VARCHAR, country VARCHAR NOT NULL, country_raw VARCHAR,
    invoice_ts TIMESTAMP NOT NULL, is_non_product BOOLEAN NOT NULL)"""
# silver.lines with silver.DERIVED_COLUMNS, which gold reads.
LINES_VIEW = "silver.lines_derived"
LINES_VIEW_SQL = f"CREATE OR REPLACE VIEW {LINES_VIEW} AS {silver.with_derived_columns('silver.lines')}"
# The columns of silver.transactions, in the order its table had before the file key.
SILVER_VIEW_SQL = f"""CREATE OR REPLACE VIEW silver.transactions AS
    SELECT f.file_id, l.row_number, f.file_name AS source_file, l.invoice_no, l.stock_code, l.description,
           l.quantity, l.unit_price, l.line_amount, f.currency, l.customer_id, l.country, l.country_raw,
           l.invoice_ts, l.invoice_date, l.year, l.month, l.quarter, l.day_of_week, l.is_weekend,
           l.transaction_type, l.is_cancellation, l.is_bad_debt, l.is_non_product, l.is_guest, l.is_zero_price
    FROM {LINES_VIEW} AS l JOIN ops.files AS f USING (file_key)"""  # noqa: S608 - constants only
REJECTED_SQL = """CREATE TABLE IF NOT EXISTS silver.rejected (
    file_id VARCHAR NOT NULL, row_number BIGINT NOT NULL, source_file VARCHAR NOT NULL, reason VARCHAR NOT NULL,
    invoice_no VARCHAR, stock_code VARCHAR, description VARCHAR, quantity VARCHAR, invoice_date VARCHAR,
    unit_price VARCHAR, customer_id VARCHAR, country VARCHAR)"""
SCHEMA_SQL = (
    "CREATE SCHEMA IF NOT EXISTS bronze",
    "CREATE SCHEMA IF NOT EXISTS silver",
    "CREATE SCHEMA IF NOT EXISTS gold",
    "CREATE SCHEMA IF NOT EXISTS ops",
    "CREATE SEQUENCE IF NOT EXISTS ops.file_keys",
    """CREATE TABLE IF NOT EXISTS ops.files (
        file_id VARCHAR PRIMARY KEY, file_name VARCHAR NOT NULL, size_bytes BIGINT, file_format VARCHAR,
        encoding VARCHAR, layout VARCHAR, date_formats VARCHAR, date_order_source VARCHAR, status VARCHAR NOT NULL,
        bronze_rows BIGINT, silver_rows BIGINT, rejected_rows BIGINT, duplicate_rows BIGINT,
        error VARCHAR, retryable BOOLEAN, started_at TIMESTAMP, bronze_at TIMESTAMP, silver_at TIMESTAMP,
        finished_at TIMESTAMP, duration_s DOUBLE, flow_run_id VARCHAR, superseded_by VARCHAR,
        file_key INTEGER, currency VARCHAR)""",
    # A ledger of an earlier version lacks the last two; silver's migration gives every file its key.
    "ALTER TABLE ops.files ADD COLUMN IF NOT EXISTS file_key INTEGER",
    "ALTER TABLE ops.files ADD COLUMN IF NOT EXISTS currency VARCHAR",
    SILVER_LINES_SQL,
    REJECTED_SQL,
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
    path: Path,
    *,
    read_only: bool = False,
    lock_timeout_s: float = 120.0,
    memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT,
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
            _ensure_bronze_view(connection)
            _ensure_silver_views(connection)
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


def scalar(connection: duckdb.DuckDBPyConnection, sql: str, parameters: object = None) -> Any:
    """The first column of the first row of a query (None when it has no rows), the result consumed."""
    rows = connection.execute(sql, parameters).fetchall()
    return rows[0][0] if rows else None


def file_record(connection: duckdb.DuckDBPyConnection, file_id: str) -> dict[str, Any] | None:
    return first_row(connection, "SELECT * FROM ops.files WHERE file_id = ?", [file_id])


def query_frame(connection: duckdb.DuckDBPyConnection, sql: str, parameters: object = None) -> pl.DataFrame:
    """The result of a query as a Polars frame, through Arrow."""
    result = pl.from_arrow(connection.sql(sql, params=parameters).to_arrow_table())
    assert isinstance(result, pl.DataFrame)
    return result


def loaded_file_like(connection: duckdb.DuckDBPyConnection, profile: FileProfile) -> bool:
    """Whether a loaded file has this file's name and size: a hint, not proof, that its content is loaded."""
    return bool(
        connection.execute(
            "SELECT 1 FROM ops.files WHERE file_name = ? AND size_bytes = ? AND status = 'loaded' LIMIT 1",
            [profile.file_name, profile.size_bytes],
        ).fetchall()
    )


def file_ledger(connection: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return query_frame(
        connection,
        """SELECT file_name, status, bronze_rows, silver_rows, rejected_rows, duplicate_rows,
                  finished_at, duration_s, left(file_id, 12) AS file_id, error
           FROM ops.files ORDER BY coalesce(finished_at, started_at) DESC NULLS LAST""",
    )


BRONZE_COLUMNS: tuple[str, ...] = ("source_index", *CANONICAL_COLUMNS, "parse_error")
_FILE_ID = re.compile(r"[0-9a-f]{64}")


def bronze_table(file_id: str) -> str:
    """The table holding one file's bronze rows in file order: a row's number is its rowid + 1.

    Each file's rows are one table that is only ever created whole and dropped whole, so row ids never move;
    that is what lets DuckDB read a file on every core and still know each row's line.
    """
    if not _FILE_ID.fullmatch(file_id):
        raise ValueError(f"not a file id (SHA-256 hex): {file_id[:80]!r}")
    return f'bronze."file_{file_id}"'


def bronze_source(file_id: str) -> str:
    """One file's bronze rows with their row number, as a parenthesised query for the silver SQL."""
    return f"(SELECT rowid + 1 AS row_number, * FROM {bronze_table(file_id)})"  # noqa: S608 - validated id


class AlreadyLoaded(Exception):  # noqa: N818 - an outcome, not an error
    """The file's content turned out to be loaded already; nothing was written."""

    def __init__(self, profile: FileProfile, record: dict[str, Any]) -> None:
        super().__init__(profile.file_id)
        self.profile = profile
        self.record = record


def publish_bronze(
    connection: duckdb.DuckDBPyConnection,
    profile: FileProfile,
    frames: Iterable[pl.DataFrame] | None,
    *,
    flow_run_id: str | None,
    started_at: datetime,
    identify: Callable[[], FileProfile] | None = None,
) -> int:
    """Replace this file's bronze rows and mark it `bronze` in the ledger, in one transaction; returns the rows.

    With `frames` None, DuckDB reads the CSV file itself, strictly, streaming and on every core; a file its
    strict reader refuses raises TolerantParseNeeded and nothing is written. Otherwise the rows are `frames`
    (row_number, source_index, the canonical columns, parse_error), in file order.

    With `identify`, `profile` is a `reader.head_profile` and DuckDB reads the file under a staging name while
    `identify` (running elsewhere) hashes it; the whole profile it returns then names the table. Content already
    loaded raises AlreadyLoaded, a whole profile that reads the file otherwise than the head raises
    TolerantParseNeeded, and either way nothing is written.
    """
    if identify is not None and frames is not None:
        raise ValueError("a file read while it is hashed is read by DuckDB, not from frames")
    ingested_at = now()
    with transaction(connection):
        if identify is None:
            table = bronze_table(profile.file_id)
            connection.execute(f"DROP TABLE IF EXISTS {table}")
            if frames is None:
                _create_bronze_from_csv(connection, profile, table)
            else:
                _create_bronze_from_frames(connection, table, frames)
        else:
            staged = f'bronze."incoming_{uuid.uuid4().hex}"'
            _create_bronze_from_csv(connection, profile, staged)
            head, profile = profile, identify()
            if not read_alike(head, profile):
                # The file changed while it was read, or its head misled about the whole (Latin-1 further on, say).
                raise TolerantParseNeeded(f"{profile.file_name}: the whole file reads otherwise than its head")
            record = file_record(connection, profile.file_id)
            if record is not None and record["status"] == "loaded":
                raise AlreadyLoaded(profile, record)
            table = bronze_table(profile.file_id)
            connection.execute(f"DROP TABLE IF EXISTS {table}")
            connection.execute(f"ALTER TABLE {staged} RENAME TO {table.removeprefix('bronze.')}")
        rows = scalar(connection, f"SELECT count(*) FROM {table}")  # noqa: S608 - validated id
        if rows == 0:
            raise BadInputError(f"{profile.file_name}: the file has a header but no data rows")
        _upsert_file(connection, profile, flow_run_id=flow_run_id, started_at=started_at)
        connection.execute(
            "UPDATE ops.files SET status = 'bronze', bronze_rows = ?, bronze_at = ? WHERE file_id = ?",
            [rows, ingested_at, profile.file_id],
        )
        refresh_bronze_view(connection)
    return rows


# DuckDB's CSV reader cuts a plain file into buffers of this size for its threads. A buffer of exactly 32 MiB read
# the bench files faster than DuckDB's default, with less CPU, on this machine (the floor's statement, two or
# three runs each): 1x 0.32-0.35 s against 0.44-0.46 s, 10x 2.26-2.32 s against 2.80-2.82 s, 100x 23.4-23.7 s
# against 25.1-25.8 s. 16 MiB, 30,000,000 bytes, 40 MiB and 64 MiB were all slower than 32 MiB at 1x. A gzip file
# is read on one thread whatever the buffer, and keeps the default.
CSV_BUFFER_BYTES = 32 * 2**20


def _create_bronze_from_csv(connection: duckdb.DuckDBPyConnection, profile: FileProfile, table: str) -> None:
    position: dict[str, int] = {}
    for number, name in enumerate(profile.source_columns):
        position.setdefault(name, number)
    source_of = {canonical: source for source, canonical in profile.column_map.items()}
    index = f"c{position[profile.index_column]}" if profile.index_column is not None else "NULL::VARCHAR"
    selected = ", ".join(f"c{position[source_of[column]]} AS {column}" for column in CANONICAL_COLUMNS)
    buffer = "" if profile.compressed else f", buffer_size = {CSV_BUFFER_BYTES}"
    try:
        connection.execute(
            f"""CREATE TABLE {table} AS
                SELECT {index} AS source_index, {selected}, NULL::VARCHAR AS parse_error
                FROM read_csv($path, header = true, auto_detect = false, columns = $columns, delim = $delimiter,
                              quote = '"', escape = '"', strict_mode = true, allow_quoted_nulls = false,
                              encoding = $encoding, compression = $compression{buffer})""",  # noqa: S608
            {
                "path": str(profile.path),
                "columns": {f"c{number}": "VARCHAR" for number in range(len(profile.source_columns))},
                "delimiter": profile.delimiter,
                "encoding": "latin-1" if profile.encoding == "latin-1" else "utf-8",
                "compression": "gzip" if profile.compressed else "none",
            },
        )
    except (duckdb.InvalidInputException, duckdb.ConversionException) as error:
        raise TolerantParseNeeded(str(error).splitlines()[0]) from None
    if not profile.compressed and _last_record_cut_short(connection, profile, table):
        connection.execute(
            f"UPDATE {table} SET parse_error = 'too_few_fields' WHERE rowid = (SELECT max(rowid) FROM {table})"  # noqa: S608
        )


def _last_record_cut_short(connection: duckdb.DuckDBPyConnection, profile: FileProfile, table: str) -> bool:
    """A file cut off inside its last record ends without a newline and with that record's last field empty."""
    with profile.path.open("rb") as handle:
        handle.seek(max(0, profile.size_bytes - 1))
        if handle.read(1) in (b"\n", b"\r"):
            return False
    last_source = profile.source_columns[-1]
    column = profile.column_map.get(last_source, "source_index" if last_source == profile.index_column else None)
    if column is None:
        return False
    sql = f"SELECT coalesce({column}, '') = '' FROM {table} WHERE rowid = (SELECT max(rowid) FROM {table})"  # noqa: S608
    return bool(scalar(connection, sql))


def _create_bronze_from_frames(
    connection: duckdb.DuckDBPyConnection, table: str, frames: Iterable[pl.DataFrame]
) -> None:
    stream = FrameStream(frames)
    if stream.schema is None:
        connection.execute(f"CREATE TABLE {table} ({', '.join(f'{name} VARCHAR' for name in BRONZE_COLUMNS)})")
        return
    connection.register("bronze_batches", stream.source())
    try:
        connection.execute(
            f"CREATE TABLE {table} AS SELECT {', '.join(BRONZE_COLUMNS)} FROM bronze_batches ORDER BY row_number"  # noqa: S608
        )
    except duckdb.Error as error:
        stream.reraise(error)
    finally:
        connection.unregister("bronze_batches")


def refresh_bronze_view(connection: duckdb.DuckDBPyConnection) -> None:
    """`bronze.transactions`: every file's bronze rows with their lineage, one view over the per-file tables."""
    file_ids = [
        row[0].removeprefix("file_")
        for row in connection.execute(
            """SELECT table_name FROM duckdb_tables()
               WHERE schema_name = 'bronze' AND starts_with(table_name, 'file_') ORDER BY table_name"""
        ).fetchall()
    ]
    columns = ", ".join(f"b.{column}" for column in BRONZE_COLUMNS)
    parts = [
        f"""SELECT f.file_id, f.file_name AS source_file, b.rowid + 1 AS row_number, {columns},
                   f.bronze_at AS ingested_at
            FROM {bronze_table(file_id)} b,
                 (SELECT file_id, file_name, bronze_at FROM ops.files WHERE file_id = '{file_id}') f"""  # noqa: S608
        for file_id in file_ids
        if _FILE_ID.fullmatch(file_id)
    ]
    if not parts:
        empty = ", ".join(f"NULL::VARCHAR AS {column}" for column in BRONZE_COLUMNS)
        parts = [
            f"""SELECT NULL::VARCHAR AS file_id, NULL::VARCHAR AS source_file, NULL::BIGINT AS row_number, {empty},
                       NULL::TIMESTAMP AS ingested_at WHERE false"""
        ]
    connection.execute("CREATE OR REPLACE VIEW bronze.transactions AS " + "\nUNION ALL\n".join(parts))


def _ensure_bronze_view(connection: duckdb.DuckDBPyConnection) -> None:
    """Make the bronze view, moving a warehouse written with one bronze table into per-file tables first."""
    kind = first_row(
        connection,
        """SELECT table_type FROM information_schema.tables
           WHERE table_schema = 'bronze' AND table_name = 'transactions'""",
    )
    if kind is not None and kind["table_type"] == "VIEW":
        return
    with transaction(connection):
        if kind is not None:
            file_ids = [
                row[0] for row in connection.execute("SELECT DISTINCT file_id FROM bronze.transactions").fetchall()
            ]
            for file_id in file_ids:
                connection.execute(
                    f"""CREATE TABLE {bronze_table(file_id)} AS SELECT {", ".join(BRONZE_COLUMNS)}
                        FROM bronze.transactions WHERE file_id = ? ORDER BY row_number""",  # noqa: S608
                    [file_id],
                )
            connection.execute("DROP TABLE bronze.transactions")
        refresh_bronze_view(connection)


def _silver_table_sql(name: str) -> str:
    """The CREATE TABLE of silver.lines, for a new table `name` of the same shape."""
    return SILVER_LINES_SQL.replace("IF NOT EXISTS silver.lines", name)


def _ensure_silver_views(connection: duckdb.DuckDBPyConnection) -> None:
    """Make the silver views, first moving what an earlier version left, keeping every row, in one transaction:
    a silver table that stored every column per row (the derived ones too in the oldest) into silver.lines and the
    ledger, or a silver.lines that stored or generated columns this version derives in its view."""
    kinds = dict(
        connection.execute(
            """SELECT table_name, table_type FROM information_schema.tables
               WHERE table_schema = 'silver' AND table_name IN ('transactions', ?)""",
            [LINES_VIEW.removeprefix("silver.")],
        ).fetchall()
    )
    derived_in_lines = [
        row[0]
        for row in connection.execute(
            """SELECT column_name FROM information_schema.columns
               WHERE table_schema = 'silver' AND table_name = 'lines'"""
        ).fetchall()
        if row[0] in silver.DERIVED_COLUMNS
    ]
    if kinds == {"transactions": "VIEW", LINES_VIEW.removeprefix("silver."): "VIEW"} and not derived_in_lines:
        return
    with transaction(connection):
        if derived_in_lines:
            _relay_lines(connection)
        if kinds.get("transactions") == "BASE TABLE":
            _move_silver_table(connection)
        connection.execute(LINES_VIEW_SQL)
        connection.execute(SILVER_VIEW_SQL)


def _relay_lines(connection: duckdb.DuckDBPyConnection) -> None:
    """Rewrite silver.lines into this version's table, without the columns it now derives."""
    kept = ", ".join(column for column in _stored_lines_columns(connection) if column not in silver.DERIVED_COLUMNS)
    connection.execute("DROP TABLE IF EXISTS silver.lines_relaid")
    connection.execute(_silver_table_sql("silver.lines_relaid"))
    connection.execute(f"INSERT INTO silver.lines_relaid BY NAME SELECT {kept} FROM silver.lines")  # noqa: S608
    connection.execute("DROP TABLE silver.lines")
    connection.execute("ALTER TABLE silver.lines_relaid RENAME TO lines")


def _move_silver_table(connection: duckdb.DuckDBPyConnection) -> None:
    """Move a silver.transactions table into silver.lines and the ledger."""
    # A file silver names and the ledger lacks gets a ledger row, so none of its rows is lost: loaded, its silver
    # rows counted, no bronze (a rebuild carries its rows over).
    connection.execute(
        """INSERT INTO ops.files (file_id, file_name, status, silver_rows, silver_at, finished_at)
           SELECT file_id, any_value(source_file), 'loaded', count(*), now()::TIMESTAMP, now()::TIMESTAMP
           FROM silver.transactions
           WHERE file_id NOT IN (SELECT file_id FROM ops.files) GROUP BY file_id"""
    )
    connection.execute(
        """UPDATE ops.files SET currency = t.currency
           FROM (SELECT file_id, any_value(currency) AS currency FROM silver.transactions GROUP BY file_id) t
           WHERE ops.files.file_id = t.file_id"""
    )
    connection.execute("UPDATE ops.files SET file_key = nextval('ops.file_keys') WHERE file_key IS NULL")
    stored = [column for column in _stored_lines_columns(connection) if column != "file_key"]
    connection.execute(
        f"""INSERT INTO silver.lines BY NAME
            SELECT f.file_key, {", ".join("t." + column for column in stored)}
            FROM silver.transactions AS t JOIN ops.files AS f USING (file_id)"""  # noqa: S608
    )
    connection.execute("DROP TABLE silver.transactions")


def _stored_lines_columns(connection: duckdb.DuckDBPyConnection) -> list[str]:
    """silver.lines' stored (not generated) columns, in order (an earlier version generated some)."""
    return [
        row[0]
        for row in connection.execute(
            """SELECT column_name FROM information_schema.columns
               WHERE table_schema = 'silver' AND table_name = 'lines' AND is_generated = 'NEVER'
               ORDER BY ordinal_position"""
        ).fetchall()
    ]


def key_of_file(connection: duckdb.DuckDBPyConnection, file_id: str) -> int:
    """The small key silver.lines knows a file by, from the ledger."""
    key = scalar(connection, "SELECT file_key FROM ops.files WHERE file_id = ?", [file_id])
    if key is None:
        raise LookupError(f"file {file_id[:12]} has no file key in the ledger; load its bronze layer first")
    return int(key)


def has_bronze(connection: duckdb.DuckDBPyConnection, file_id: str) -> bool:
    return bool(
        connection.execute(
            "SELECT 1 FROM duckdb_tables() WHERE schema_name = 'bronze' AND table_name = ?", [f"file_{file_id}"]
        ).fetchall()
    )


def carry_over_silver(connection: duckdb.DuckDBPyConnection, file_id: str) -> None:
    """Copy a live file's silver and rejected rows as they are into the rebuild tables: a file without bronze rows
    (entered into the ledger when an earlier version's silver was moved) cannot be rebuilt from them."""
    stored = ", ".join(_stored_lines_columns(connection))
    with transaction(connection):
        connection.execute(
            f"""INSERT INTO silver.lines_rebuild BY NAME SELECT {stored} FROM silver.lines
                WHERE file_key = ?""",  # noqa: S608 - column names from the catalog
            [key_of_file(connection, file_id)],
        )
        connection.execute(
            "INSERT INTO silver.rejected_rebuild SELECT * FROM silver.rejected WHERE file_id = ?", [file_id]
        )


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
        _delete_file_silver(connection, profile.file_id)
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


class SilverTotals(BaseModel):
    """What publishing one file's silver rows wrote, and the file's quality counts as received."""

    silver_rows: int
    rejected_rows: int
    duplicate_rows: int
    rejected_by_reason: dict[str, int]
    superseded: list[str]
    counts: QualityCounts


def bronze_summary(connection: duckdb.DuckDBPyConnection, file_id: str) -> tuple[str, int]:
    """The file's name and bronze row count, or LookupError when its bronze layer is not loaded."""
    record = file_record(connection, file_id)
    if record is None or not has_bronze(connection, file_id):
        raise LookupError(f"file {file_id[:12]} has no bronze rows; load its bronze layer first")
    rows = scalar(connection, f"SELECT count(*) FROM {bronze_table(file_id)}")  # noqa: S608 - validated id
    return str(record["file_name"]), int(rows)


def date_evidence(connection: duckdb.DuckDBPyConnection, file_id: str) -> list[tuple[str, int, int, int]]:
    """The file's invoice date shapes with their day/month evidence (`silver.date_evidence_sql`)."""
    return [
        (str(shape), int(day_first), int(month_first), int(numbered))
        for shape, day_first, month_first, numbered in connection.execute(
            silver.date_evidence_sql(bronze_table(file_id))
        ).fetchall()
    ]


def publish_silver(
    connection: duckdb.DuckDBPyConnection,
    file_id: str,
    file_name: str,
    currency: str,
    *,
    date_formats: list[str],
    date_order_source: str,
    rebuild: bool = False,
) -> SilverTotals:
    """Replace one file's silver and rejected rows from its bronze rows, in one transaction, all inside DuckDB.

    `date_formats` are the file's invoice date formats (`silver.date_parsing`). Older versions of the same file
    name leave silver in the same transaction. `currency` is the ledger's for the file. With `rebuild`, the rows go
    to the rebuild tables that `swap_in_rebuilt_silver` later puts in place of silver (recording the currency then),
    and the ledger is left alone.
    """
    source = bronze_source(file_id)
    suffix = "_rebuild" if rebuild else ""
    with _optimizers_kept(connection) as optimizers, transaction(connection):
        connection.execute(f"CREATE OR REPLACE TEMP TABLE {silver.DUPLICATES_TABLE} AS {silver.duplicates_sql(source)}")
        connection.execute(
            f"CREATE OR REPLACE TEMP TABLE {silver.INCONSISTENT_TABLE} AS {silver.inconsistent_invoices_sql(source)}"
        )
        superseded = [] if rebuild else _clear_file_silver(connection, file_id, file_name)
        key = key_of_file(connection, file_id)
        bronze_rows = int(scalar(connection, f"SELECT count(*) FROM {bronze_table(file_id)}"))  # noqa: S608
        duplicate_rows = int(scalar(connection, f"SELECT count(*) FROM {silver.DUPLICATES_TABLE}"))  # noqa: S608
        with _without_filter_pushdown(connection, optimizers):
            silver_rows = int(
                scalar(
                    connection,
                    f"""INSERT INTO silver.lines{suffix} BY NAME
                        SELECT ?::INTEGER AS file_key, *
                        FROM ({silver.silver_rows_sql(source, date_formats)})""",  # noqa: S608 - validated id
                    [key],
                )
            )
        rejected_rows = bronze_rows - duplicate_rows - silver_rows
        rejected_by_reason: dict[str, int] = {}
        if rejected_rows:
            with _without_filter_pushdown(connection, optimizers):
                connection.execute(
                    f"""INSERT INTO silver.rejected{suffix} BY NAME
                        SELECT ? AS file_id, ? AS source_file, *
                        FROM ({silver.rejected_rows_sql(source, date_formats)})""",  # noqa: S608
                    [file_id, file_name],
                ).fetchall()
            rejected_by_reason = {
                str(reason): int(count)
                for reason, count in connection.execute(
                    f"SELECT reason, count(*) FROM silver.rejected{suffix} WHERE file_id = ? GROUP BY reason",  # noqa: S608
                    [file_id],
                ).fetchall()
            }
        if sum(rejected_by_reason.values()) != rejected_rows:
            raise RuntimeError(
                f"file {file_id[:12]}: {bronze_rows} bronze rows are not {silver_rows} silver + "
                f"{sum(rejected_by_reason.values())} rejected + {duplicate_rows} repeats"
            )
        counts = _file_quality_counts(connection, file_id, key, date_formats, duplicate_rows, suffix)
        totals = SilverTotals(
            silver_rows=silver_rows,
            rejected_rows=rejected_rows,
            duplicate_rows=duplicate_rows,
            rejected_by_reason=dict(sorted(rejected_by_reason.items())),
            superseded=superseded,
            counts=counts,
        )
        if not rebuild:
            _record_silver(
                connection,
                file_id,
                totals,
                currency=currency,
                date_formats=date_formats,
                date_order_source=date_order_source,
            )
    return totals


@contextmanager
def _optimizers_kept(connection: duckdb.DuckDBPyConnection) -> Iterator[str]:
    """Yield DuckDB's `disabled_optimizers` setting and put that value back after the block. Entered outside a
    transaction, it restores the setting after a commit and after a rollback alike (a statement cannot run in a
    transaction a failure has aborted). The setting holds for the whole database, not one connection."""
    before = str(scalar(connection, "SELECT current_setting('disabled_optimizers')") or "")
    try:
        yield before
    finally:
        _set_disabled_optimizers(connection, before)


@contextmanager
def _without_filter_pushdown(connection: duckdb.DuckDBPyConnection, before: str) -> Iterator[None]:
    """Keep DuckDB from pushing silver's "the row types" test into the scan of bronze, for one statement. Pushed
    down, the cleaning expressions run twice, once in the scan's filter and again for the columns: on the 10x file
    the silver rows took 2.07 s with the push and 1.66 s without, the search for rejected rows 1.27 s and 0.61 s;
    the same rows. Other statements keep the push, which reads one file's rows of a large silver table quickly.

    After a failure the setting is left for `_optimizers_kept` to restore once the transaction is rolled back."""
    names = [name.strip() for name in before.split(",") if name.strip()]
    _set_disabled_optimizers(connection, ",".join([*names, "filter_pushdown"]))
    yield
    _set_disabled_optimizers(connection, before)


def _set_disabled_optimizers(connection: duckdb.DuckDBPyConnection, names: str) -> None:
    if names:
        connection.execute("SET disabled_optimizers = " + "'" + names.replace("'", "''") + "'")
    else:
        connection.execute("RESET disabled_optimizers")


_OUTSIDE_SILVER_TABLE = "file_outside_silver"


def _file_quality_counts(
    connection: duckdb.DuckDBPyConnection,
    file_id: str,
    key: int,
    date_formats: list[str],
    duplicate_rows: int,
    suffix: str,
) -> QualityCounts:
    """The file's quality counts over every row as received: its silver rows read from silver, and only the rows
    silver left out (rejected rows and repeats, few) typed again."""
    connection.execute(
        f"""CREATE OR REPLACE TEMP TABLE {_OUTSIDE_SILVER_TABLE} AS
            SELECT row_number FROM {silver.DUPLICATES_TABLE}
            UNION ALL SELECT row_number FROM silver.rejected{suffix} WHERE file_id = ?""",  # noqa: S608
        [file_id],
    )
    outside = f"""(SELECT rowid + 1 AS row_number, * FROM {bronze_table(file_id)}
                   WHERE rowid + 1 IN (SELECT row_number FROM {_OUTSIDE_SILVER_TABLE}))"""  # noqa: S608
    rows = [
        first_row(connection, quality.quality_sql(silver.typed_rows_sql(outside, date_formats))) or {},
        first_row(
            connection,
            quality.silver_quality_sql(f"({silver.with_derived_columns(f'silver.lines{suffix}')})"),
            {"file_key": key},
        )
        or {},
    ]
    return quality.counts_of(rows, duplicate_rows)


def _clear_file_silver(connection: duckdb.DuckDBPyConnection, file_id: str, file_name: str) -> list[str]:
    """Take this file's and its older versions' rows out of silver; returns the older versions' ids."""
    if not connection.execute("SELECT 1 FROM ops.files WHERE file_id = ?", [file_id]).fetchall():
        raise LookupError(f"file {file_id[:12]} has no ledger entry; load its bronze layer first")
    superseded = [
        row[0]
        for row in connection.execute(
            """SELECT file_id FROM ops.files
               WHERE file_name = ? AND file_id <> ? AND status IN ('silver', 'loaded')""",
            [file_name, file_id],
        ).fetchall()
    ]
    for target in [file_id, *superseded]:
        _delete_file_silver(connection, target)
    return superseded


def _record_silver(
    connection: duckdb.DuckDBPyConnection,
    file_id: str,
    totals: SilverTotals,
    *,
    currency: str,
    date_formats: list[str],
    date_order_source: str,
) -> None:
    for old in totals.superseded:
        connection.execute(
            "UPDATE ops.files SET status = 'superseded', superseded_by = ? WHERE file_id = ?", [file_id, old]
        )
    connection.execute(
        """UPDATE ops.files SET status = 'silver', silver_rows = ?, rejected_rows = ?, duplicate_rows = ?,
           currency = ?, date_formats = ?, date_order_source = ?, silver_at = ? WHERE file_id = ?""",
        [
            totals.silver_rows,
            totals.rejected_rows,
            totals.duplicate_rows,
            currency,
            " | ".join(date_formats),
            date_order_source,
            now(),
            file_id,
        ],
    )


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
    currency: str,
    threshold: float,
) -> None:
    """Put the rebuilt tables in place of silver and record each file's new totals and its rows' `currency`, all in
    one transaction.

    `totals` holds (file_id, silver rows, rejected rows, duplicate rows, quality counts, quality scores).
    """
    with transaction(connection):
        for statement in _SWAP_SQL:
            connection.execute(statement)
        for file_id, silver_rows, rejected_rows, duplicate_rows, counts, scores in totals:
            connection.execute(
                """UPDATE ops.files SET silver_rows = ?, rejected_rows = ?, duplicate_rows = ?, currency = ?,
                   silver_at = ? WHERE file_id = ?""",
                [silver_rows, rejected_rows, duplicate_rows, currency, now(), file_id],
            )
            connection.execute("DELETE FROM ops.quality WHERE scope = 'file' AND file_id = ?", [file_id])
            _insert_quality(connection, "file", file_id, counts, scores, threshold)


_REBUILD_TABLES_SQL = (
    "DROP TABLE IF EXISTS silver.lines_rebuild",
    "DROP TABLE IF EXISTS silver.rejected_rebuild",
    _silver_table_sql("silver.lines_rebuild"),
    REJECTED_SQL.replace("IF NOT EXISTS silver.rejected", "silver.rejected_rebuild"),
)
_SWAP_SQL = (
    "DROP TABLE silver.lines",
    "ALTER TABLE silver.lines_rebuild RENAME TO lines",
    "DROP TABLE silver.rejected",
    "ALTER TABLE silver.rejected_rebuild RENAME TO rejected",
)


def _delete_file_silver(connection: duckdb.DuckDBPyConnection, file_id: str) -> None:
    """Take one file's rows out of silver.lines and silver.rejected."""
    connection.execute("DELETE FROM silver.lines WHERE file_key = ?", [key_of_file(connection, file_id)])
    connection.execute("DELETE FROM silver.rejected WHERE file_id = ?", [file_id])


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
