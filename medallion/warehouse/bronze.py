"""Bronze: every file's rows as received, one table per file, read by DuckDB itself or handed over as frames."""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any, NamedTuple

import duckdb
import polars as pl
import pyarrow as pa

from medallion.errors import BadInputError
from medallion.file_kinds import FileFormat
from medallion.reader import (
    CANONICAL_COLUMNS,
    FileChangedError,
    FileProfile,
    TolerantParseNeeded,
    ensure_unchanged,
    read_alike,
)
from medallion.warehouse.ledger import file_record, upsert_file
from medallion.warehouse.sql import now, scalar, transaction

# A row as the file gave it: its index, the canonical columns and what kept it from fitting the header.
BRONZE_COLUMNS: tuple[str, ...] = ("source_index", *CANONICAL_COLUMNS, "parse_error")
# The workbook sheet a row came from, NULL for a CSV file; the tables of files loaded before it lack the column.
SOURCE_SHEET = "source_sheet"
_TABLE_COLUMNS = (*BRONZE_COLUMNS, SOURCE_SHEET)
_FILE_ID = re.compile(r"[0-9a-f]{64}")

# DuckDB's CSV reader hands a plain file to its threads in buffers of this size, which reads the files faster than
# its default (docs/scaling.md); a gzip file is read on one thread whatever the buffer, and keeps the default.
CSV_BUFFER_BYTES = 32 * 2**20


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


def has_bronze(connection: duckdb.DuckDBPyConnection, file_id: str) -> bool:
    """Whether the file's bronze table exists."""
    return bool(
        connection.execute(
            "SELECT 1 FROM duckdb_tables() WHERE schema_name = 'bronze' AND table_name = ?", [f"file_{file_id}"]
        ).fetchall()
    )


class BronzeSummary(NamedTuple):
    file_name: str
    rows: int


def bronze_summary(connection: duckdb.DuckDBPyConnection, file_id: str) -> BronzeSummary:
    """The file's name and bronze row count, or LookupError when its bronze layer is not loaded."""
    record = file_record(connection, file_id)
    if record is None or not has_bronze(connection, file_id):
        raise LookupError(f"file {file_id[:12]} has no bronze rows; load its bronze layer first")
    rows = scalar(connection, f"SELECT count(*) FROM {bronze_table(file_id)}")  # noqa: S608 - validated id
    return BronzeSummary(str(record["file_name"]), int(rows))


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
    refresh_view: bool = True,
) -> int:
    """Replace this file's bronze rows and mark it `bronze` in the ledger, in one transaction; returns the rows.
    With `refresh_view` False, `bronze.transactions` is left for the caller to refresh once after several files.

    With `frames` None, DuckDB reads the CSV file itself, strictly, streaming and on every core; a file its
    strict reader refuses raises TolerantParseNeeded and nothing is written. Otherwise the rows are `frames`
    (row_number, source_index, the canonical columns, parse_error, and source_sheet for a workbook), in file order.

    With `identify`, `profile` is a `reader.head_profile` and DuckDB reads the file under a staging name while
    `identify` (running elsewhere) hashes it; the whole profile it returns then names the table. Content already
    loaded raises AlreadyLoaded, a whole profile that reads the file otherwise than the head raises
    TolerantParseNeeded, and either way nothing is written.

    A file that changed since `profile` looked at it raises FileChangedError and nothing is written: the file id
    must be the hash of exactly the rows loaded.
    """
    if identify is not None and frames is not None:
        raise ValueError("a file read while it is hashed is read by DuckDB, not from frames")
    ingested_at = now()
    with transaction(connection):
        try:
            profile, table = _create_bronze(connection, profile, frames, identify)
            _mark_cut_short_last_record(connection, profile, table)
            rows = scalar(connection, f"SELECT count(*) FROM {table}")  # noqa: S608 - validated id
        except BadInputError:
            ensure_unchanged(profile)  # a file that changed while it was read is unfinished, not bad
            raise
        ensure_unchanged(profile)
        if rows == 0:
            raise BadInputError(f"{profile.file_name}: the file has a header but no data rows")
        upsert_file(connection, profile, flow_run_id=flow_run_id, started_at=started_at)
        connection.execute(
            "UPDATE ops.files SET status = 'bronze', bronze_rows = ?, bronze_at = ? WHERE file_id = ?",
            [rows, ingested_at, profile.file_id],
        )
        if refresh_view:
            refresh_bronze_view(connection)
    return rows


def _create_bronze(
    connection: duckdb.DuckDBPyConnection,
    profile: FileProfile,
    frames: Iterable[pl.DataFrame] | None,
    identify: Callable[[], FileProfile] | None,
) -> tuple[FileProfile, str]:
    """Create the file's bronze table; returns the file's whole profile and the table."""
    if identify is not None:
        profile = _create_bronze_while_identified(connection, profile, identify)
        return profile, bronze_table(profile.file_id)
    table = bronze_table(profile.file_id)
    connection.execute(f"DROP TABLE IF EXISTS {table}")
    if frames is None:
        _create_bronze_from_csv(connection, profile, table)
    else:
        _create_bronze_from_frames(connection, table, frames)
    return profile, table


def _create_bronze_while_identified(
    connection: duckdb.DuckDBPyConnection, head: FileProfile, identify: Callable[[], FileProfile]
) -> FileProfile:
    """Read the file under a staging name, then give the table the name of the whole profile `identify` returns."""
    staged = f'bronze."incoming_{uuid.uuid4().hex}"'
    _create_bronze_from_csv(connection, head, staged)
    profile = identify()
    if profile.stamp != head.stamp:
        raise FileChangedError(profile.file_name)
    if not read_alike(head, profile):
        # The head misled about the whole (Latin-1 further on, say).
        raise TolerantParseNeeded(f"{profile.file_name}: the whole file reads otherwise than its head")
    record = file_record(connection, profile.file_id)
    if record is not None and record["status"] == "loaded":
        raise AlreadyLoaded(profile, record)
    table = bronze_table(profile.file_id)
    connection.execute(f"DROP TABLE IF EXISTS {table}")
    connection.execute(f"ALTER TABLE {staged} RENAME TO {table.removeprefix('bronze.')}")
    return profile


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
                SELECT {index} AS source_index, {selected}, NULL::VARCHAR AS parse_error,
                       NULL::VARCHAR AS {SOURCE_SHEET}
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
    except (duckdb.InvalidInputException, duckdb.ConversionException, duckdb.IOException) as error:
        raise TolerantParseNeeded(str(error).splitlines()[0]) from None


def _mark_cut_short_last_record(connection: duckdb.DuckDBPyConnection, profile: FileProfile, table: str) -> None:
    """Mark the last row `too_few_fields` when the file was cut off inside it: a CSV file that ends without a line
    break, with that record's last field empty. Whichever reader read the file, the mark is the same."""
    if profile.file_format is not FileFormat.CSV or profile.ends_with_line_break is not False:
        return
    last_source = profile.source_columns[-1]
    column = profile.column_map.get(last_source, "source_index" if last_source == profile.index_column else None)
    if column is None:
        return  # the last field is not kept, so an empty one cannot be told apart
    connection.execute(
        f"""UPDATE {table} SET parse_error = 'too_few_fields'
            WHERE rowid = (SELECT max(rowid) FROM {table}) AND parse_error IS NULL
              AND coalesce({column}, '') = ''"""  # noqa: S608 - validated id, a canonical column
    )


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

    def source(self) -> pa.Table | pa.RecordBatchReader:
        """What to hand to DuckDB: the single frame as a table, or a stream of all of them."""
        if self.schema is None:
            raise ValueError("an empty stream has no schema")
        if self.only_frame is not None:
            return self.only_frame.to_arrow()
        return pa.RecordBatchReader.from_batches(self.schema, self._arrow_batches())

    def _arrow_batches(self) -> Iterator[pa.RecordBatch]:
        try:
            for frame in itertools.chain(self._head, self._frames):
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


def _create_bronze_from_frames(
    connection: duckdb.DuckDBPyConnection, table: str, frames: Iterable[pl.DataFrame]
) -> None:
    stream = FrameStream(frames)
    if stream.schema is None:
        connection.execute(f"CREATE TABLE {table} ({', '.join(f'{name} VARCHAR' for name in _TABLE_COLUMNS)})")
        return
    # A relation, not a name registered on the connection: nothing is left to undo once a failed read has
    # aborted the transaction.
    batches = connection.from_arrow(stream.source())
    sheet = SOURCE_SHEET if SOURCE_SHEET in stream.schema.names else f"NULL::VARCHAR AS {SOURCE_SHEET}"
    try:
        batches.order("row_number").select(*BRONZE_COLUMNS, duckdb.SQLExpression(sheet)).create(table)
    except duckdb.Error as error:
        stream.reraise(error)


def _bronze_file_ids(connection: duckdb.DuckDBPyConnection) -> list[str]:
    """The ids of the files with a bronze table, in the order of their tables' names."""
    names = connection.execute(
        """SELECT table_name FROM duckdb_tables()
           WHERE schema_name = 'bronze' AND starts_with(table_name, 'file_') ORDER BY table_name"""
    ).fetchall()
    file_ids = [str(name).removeprefix("file_") for (name,) in names]
    return [file_id for file_id in file_ids if _FILE_ID.fullmatch(file_id)]


# `bronze.transactions` reads the per-file tables through views of groups of them, a group per first two hex digits
# of the file's id, in the schema BRONZE_GROUPS: DuckDB binds a view again whenever it is made, so a load makes again
# only its own file's group and, when that group is new, the view over the groups (docs/scaling.md, a year of files).
BRONZE_GROUPS = "bronze_groups"
_GROUP_VIEW = re.compile(r"bronze_groups\.files_([0-9a-f]{2})\b")


def refresh_bronze_view(connection: duckdb.DuckDBPyConnection) -> None:
    """`bronze.transactions`: every file's bronze rows with their lineage, over the per-file tables.

    The parts are matched by name, so a table without a later column (source_sheet) gives NULL in it. Each part
    names its file by a constant, which a filter on the file's id prunes, and the ledger is joined once.
    """
    groups: dict[str, list[str]] = {}
    for file_id in _bronze_file_ids(connection):
        groups.setdefault(file_id[:2], []).append(file_id)
    connection.execute(f"CREATE SCHEMA IF NOT EXISTS {BRONZE_GROUPS}")
    made = dict(
        connection.execute(
            "SELECT view_name, sql FROM duckdb_views() WHERE schema_name = ? AND NOT internal", [BRONZE_GROUPS]
        ).fetchall()
    )
    for prefix, file_ids in groups.items():
        name = f"files_{prefix}"
        if name not in made or set(_FILE_ID.findall(made[name])) != set(file_ids):
            connection.execute(f"CREATE OR REPLACE VIEW {BRONZE_GROUPS}.{name} AS {_group_sql(file_ids)}")
    for name in made.keys() - {f"files_{prefix}" for prefix in groups}:
        connection.execute(f"DROP VIEW {BRONZE_GROUPS}.{name}")  # noqa: S608 - a name this function made
    current = connection.execute(
        "SELECT sql FROM duckdb_views() WHERE schema_name = 'bronze' AND view_name = 'transactions'"
    ).fetchall()
    if not current or set(_GROUP_VIEW.findall(current[0][0])) != set(groups):
        _make_transactions_view(connection, sorted(groups))


_EMPTY_PART = "SELECT NULL::VARCHAR AS file_id, NULL::BIGINT AS row_number, {columns} WHERE false".format(
    columns=", ".join(f"NULL::VARCHAR AS {column}" for column in _TABLE_COLUMNS)
)


def _group_sql(file_ids: list[str]) -> str:
    parts = [_EMPTY_PART]
    parts += [
        f"SELECT '{file_id}' AS file_id, rowid + 1 AS row_number, * FROM {bronze_table(file_id)}"  # noqa: S608
        for file_id in file_ids
    ]
    return " UNION ALL BY NAME ".join(parts)


def _make_transactions_view(connection: duckdb.DuckDBPyConnection, prefixes: list[str]) -> None:
    parts = [_EMPTY_PART, *(f"SELECT * FROM {BRONZE_GROUPS}.files_{prefix}" for prefix in prefixes)]  # noqa: S608
    columns = ", ".join(f"b.{column}" for column in _TABLE_COLUMNS)
    connection.execute(
        f"""CREATE OR REPLACE VIEW bronze.transactions AS
            SELECT b.file_id, f.file_name AS source_file, b.row_number, {columns}, f.bronze_at AS ingested_at
            FROM ({" UNION ALL BY NAME ".join(parts)}) AS b JOIN ops.files AS f USING (file_id)"""  # noqa: S608
    )
