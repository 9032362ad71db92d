"""Readers that answer while a run holds the warehouse: the ledger for `medallion status` and read-only SQL for
`medallion query`.

DuckDB lets no reader in while a writer holds the file, so each reader waits briefly, saying for which process, and
then answers from the Parquet exports instead: gold's tables and the ledger snapshot `export_ledger` writes after
every run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import duckdb
import polars as pl

from medallion.errors import MedallionError, WarehouseBusyError, unusable_path
from medallion.gold import GOLD_TABLES
from medallion.names import printable
from medallion.settings import PipelineSettings, Settings
from medallion.warehouse import Warehouse
from medallion.warehouse.connection import LOCK_MARKERS
from medallion.warehouse.ledger import file_ledger
from medallion.warehouse.sql import query_frame

# Long enough for a write between a run's steps to finish, short enough that a user is not left waiting.
READER_WAIT_S = 2.0
LEDGER_EXPORT = "_ledger.parquet"
# DuckDB's lock error: `Conflicting lock is held in /usr/bin/python3.11 (PID 4242)`.
_HOLDER = re.compile(r"held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")
_MAX_COMMAND_CHARS = 160

Announce = Callable[[str], None]


@dataclass(frozen=True)
class LockHolder:
    """The process DuckDB names as holding the warehouse's lock, and what it runs."""

    pid: int | None
    command: str

    def __str__(self) -> str:
        if self.pid is None:
            return "another process"
        return f"process {self.pid} ({self.command})" if self.command else f"process {self.pid}"


def lock_holder(path: Path) -> LockHolder | None:
    """The process holding the DuckDB file at `path`, or None when the file opens read-only now.

    Any error other than the lock (no such file, not a database) is raised.
    """
    try:
        duckdb.connect(str(path), read_only=True).close()
    except duckdb.IOException as error:
        if not any(marker in str(error) for marker in LOCK_MARKERS):
            raise
        return holder_in_message(str(error))
    return None


def holder_in_message(message: str) -> LockHolder:
    """The holder a DuckDB lock error names, its command line read from /proc when this machine shows it."""
    found = _HOLDER.search(message)
    if found is None:
        return LockHolder(None, "")
    pid = int(found["pid"])
    return LockHolder(pid, _command_line(pid) or printable(found["program"]))


def _command_line(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    words = [word.decode("utf-8", errors="replace") for word in raw.split(b"\0") if word]
    command = printable(" ".join(words))
    if len(command) > _MAX_COMMAND_CHARS:
        command = command[: _MAX_COMMAND_CHARS - 3] + "..."
    return command or None


class ReadSource(StrEnum):
    """Where a reader's answer came from."""

    WAREHOUSE = "warehouse"
    EXPORTS = "exports"
    NOTHING = "nothing"


@dataclass(frozen=True)
class ReadAnswer:
    """A reader's rows and one line saying where they came from (and why, when not from the warehouse)."""

    frame: pl.DataFrame
    source: ReadSource
    note: str


class QueryError(MedallionError):
    """`medallion query` refused the statement, or the statement failed; the message says which and why."""

    retryable = False


def export_ledger(connection: duckdb.DuckDBPyConnection, target_dir: Path) -> Path:
    """Write `ops.files` to `<target_dir>/_ledger.parquet` through a temporary name and an atomic rename, for the
    readers to answer from while a later run holds the warehouse. A directory that cannot be written is a
    configuration error naming GOLD_EXPORT_PATH."""
    target = target_dir / LEDGER_EXPORT
    temporary = target_dir / f".{LEDGER_EXPORT}.{os.getpid()}.tmp"
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
        query_frame(connection, "SELECT * FROM ops.files").write_parquet(temporary)
        os.replace(temporary, target)
    except BaseException as error:
        with suppress(OSError):
            temporary.unlink(missing_ok=True)
        unusable = unusable_path("GOLD_EXPORT_PATH", target_dir, error)
        if unusable is not None:
            raise unusable from error
        raise
    return target


def ledger_rows(settings: Settings, *, wait_s: float = READER_WAIT_S, on_wait: Announce | None = None) -> ReadAnswer:
    """The file ledger as `ledger.file_ledger` shows it: from the warehouse when it opens within `wait_s`, else
    from the last ledger snapshot. `on_wait` hears, before the wait, which process holds the warehouse."""
    pipeline = settings.pipeline
    if not pipeline.warehouse_path.exists():
        return ReadAnswer(pl.DataFrame(), ReadSource.NOTHING, f"no warehouse yet at {pipeline.warehouse_path}")
    try:
        frame = _read_warehouse(pipeline, file_ledger, wait_s, on_wait)
    except WarehouseBusyError as busy:
        return _ledger_snapshot(pipeline.gold_export_path, str(busy))
    return ReadAnswer(frame, ReadSource.WAREHOUSE, f"from the warehouse {pipeline.warehouse_path}")


def _ledger_snapshot(export_dir: Path, busy: str) -> ReadAnswer:
    snapshot = export_dir / LEDGER_EXPORT
    if not snapshot.is_file():
        return ReadAnswer(
            pl.DataFrame(), ReadSource.NOTHING, f"{busy}, and no ledger snapshot exists yet at {snapshot}"
        )
    try:
        with duckdb.connect() as connection:
            _export_views(connection, export_dir)
            frame = file_ledger(connection)
    except duckdb.Error as error:
        problem = printable(str(error).splitlines()[0])
        return ReadAnswer(
            pl.DataFrame(), ReadSource.NOTHING, f"{busy}, and the ledger snapshot {snapshot} is unreadable: {problem}"
        )
    return ReadAnswer(frame, ReadSource.EXPORTS, f"{busy}: the ledger as of {_as_of(snapshot)}, from {snapshot}")


def query(
    settings: Settings, sql: str, *, wait_s: float = READER_WAIT_S, on_wait: Announce | None = None
) -> ReadAnswer:
    """Run one SELECT (WITH, FROM, DESCRIBE, SHOW...) read-only: against the warehouse when it opens within `wait_s`,
    else against the Parquet exports, where gold's tables are `gold.<name>` and the ledger snapshot `ops.files`.

    Raises QueryError for a statement that writes, several statements, invalid SQL or a query that fails.
    """
    statement = read_only_statement(sql)
    pipeline = settings.pipeline
    busy = f"there is no warehouse at {pipeline.warehouse_path}"
    if pipeline.warehouse_path.exists():
        try:
            frame = _read_warehouse(pipeline, lambda connection: _run(connection, statement), wait_s, on_wait)
        except WarehouseBusyError as error:
            busy = str(error)
        else:
            return ReadAnswer(frame, ReadSource.WAREHOUSE, f"from the warehouse {pipeline.warehouse_path}")
    return _query_exports(pipeline.gold_export_path, statement, busy)


def read_only_statement(sql: str) -> str:
    """The one statement in `sql` when it only reads; else a QueryError saying what was refused."""
    with duckdb.connect() as parser:
        try:
            statements = parser.extract_statements(sql)
        except duckdb.Error as error:
            raise QueryError(f"the query is not valid SQL: {str(error).splitlines()[0]}") from None
    if len(statements) != 1:
        raise QueryError(f"give exactly one SELECT statement (found {len(statements)})")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise QueryError(
            f"refused: a {kind.name} statement can write or change settings, and `medallion query` only reads; "
            "give one SELECT (or WITH, FROM, DESCRIBE, SHOW)"
        )
    return sql


def _read_warehouse(
    pipeline: PipelineSettings,
    read: Callable[[duckdb.DuckDBPyConnection], pl.DataFrame],
    wait_s: float,
    on_wait: Announce | None,
) -> pl.DataFrame:
    """`read` on the warehouse opened read-only; a WarehouseBusyError naming the holder when it stays locked."""
    try:
        return _read_within(pipeline, read, 0.0)
    except WarehouseBusyError:
        holder = lock_holder(pipeline.warehouse_path)
    if holder is not None and on_wait is not None:
        on_wait(f"the warehouse is held by {holder}; waiting up to {wait_s:g} s for it")
    try:
        return _read_within(pipeline, read, wait_s)
    except WarehouseBusyError:
        holder = holder or lock_holder(pipeline.warehouse_path) or LockHolder(None, "")
    raise WarehouseBusyError(f"the warehouse {pipeline.warehouse_path} is held by {holder}")


def _read_within(
    pipeline: PipelineSettings, read: Callable[[duckdb.DuckDBPyConnection], pl.DataFrame], wait_s: float
) -> pl.DataFrame:
    brief = pipeline.model_copy(update={"warehouse_lock_timeout_s": wait_s})
    with Warehouse(brief, read_only=True) as warehouse, warehouse.connection() as connection:
        return read(connection)


def _run(connection: duckdb.DuckDBPyConnection, statement: str, hint: str = "") -> pl.DataFrame:
    try:
        return query_frame(connection, statement)
    except duckdb.Error as error:
        raise QueryError(f"the query failed: {str(error).splitlines()[0]}{hint}") from None


def _query_exports(export_dir: Path, statement: str, busy: str) -> ReadAnswer:
    with duckdb.connect() as connection:
        views = _export_views(connection, export_dir)
        if not views:
            raise QueryError(f"{busy}, and there are no Parquet exports in {export_dir} to answer from")
        hint = f" (the exports hold {', '.join(views)}; silver and bronze are in the warehouse only)"
        frame = _run(connection, statement, hint)
    newest = max(views.values(), key=lambda path: path.stat().st_mtime)
    as_of = _as_of(views.get("ops.files", newest))
    return ReadAnswer(
        frame, ReadSource.EXPORTS, f"{busy}: answered from the Parquet exports in {export_dir} as of {as_of}"
    )


def _export_views(connection: duckdb.DuckDBPyConnection, export_dir: Path) -> dict[str, Path]:
    """A view for each export present: `gold.<table>` and the ledger snapshot as `ops.files`; returns them by name.

    The path reaches the view through a variable, as a parameter, never spliced into the SQL; view and variable
    names come from gold's own list of tables."""
    exports = {f"gold.{name}": export_dir / f"{name}.parquet" for name in GOLD_TABLES}
    exports["ops.files"] = export_dir / LEDGER_EXPORT
    present = {name: path for name, path in exports.items() if path.is_file()}
    for schema in sorted({name.split(".")[0] for name in present}):
        connection.execute(f"CREATE SCHEMA {schema}")
    for name, path in present.items():
        variable = "export_" + name.replace(".", "_")
        connection.execute(f"SET VARIABLE {variable} = ?", [str(path)])
        connection.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet(getvariable('{variable}'))")  # noqa: S608
    return present


def _as_of(path: Path) -> str:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
