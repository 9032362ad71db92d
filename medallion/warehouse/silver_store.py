"""Silver in the warehouse: one file's typed rows and rejected rows published from its bronze rows, less the lines
other live files have there already, and the rebuild of all of silver, in ledger order, swapped in at once."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import NamedTuple

import duckdb
from pydantic import BaseModel

from medallion import silver, silver_numbers
from medallion import silver_overlaps as overlaps
from medallion.quality import QualityCounts, QualityScores
from medallion.settings import PipelineSettings
from medallion.warehouse.bronze import bronze_source, bronze_table
from medallion.warehouse.ledger import delete_file_silver, key_of_file
from medallion.warehouse.quality_store import file_quality_counts, insert_quality
from medallion.warehouse.schema import lines_table_sql, rejected_table_sql, stored_lines_columns
from medallion.warehouse.sql import create_temp_table_as, now, scalar, table_name, transaction


class FileSilver(BaseModel):
    """Where one file's bronze rows went (each to exactly one of silver, rejected, repeats and overlaps), and the
    file's quality counts as received."""

    silver_rows: int
    rejected_rows: int
    duplicate_rows: int
    overlap_rows: int
    changed_invoices: int
    rejected_by_reason: dict[str, int]
    counts: QualityCounts


class SilverTotals(FileSilver):
    """What publishing one file's silver rows wrote: the file's own totals, the older versions of its name it
    superseded, and the later files published again because a line of theirs was in one of those versions."""

    superseded: list[str]
    republished: dict[str, FileSilver]


class RebuiltFile(NamedTuple):
    """One file's totals in the rebuilt silver tables, and its quality then."""

    file_id: str
    totals: FileSilver
    scores: QualityScores


class _File(NamedTuple):
    """A file to publish: its id, name and invoice date formats."""

    file_id: str
    file_name: str
    date_formats: list[str]


class _Limits(NamedTuple):
    """Silver's bounds on a quantity and a unit price."""

    max_abs_quantity: int
    max_abs_unit_price: float


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
    max_abs_quantity: int = PipelineSettings.model_fields["max_abs_quantity"].default,
    max_abs_unit_price: float = PipelineSettings.model_fields["max_abs_unit_price"].default,
) -> SilverTotals:
    """Replace one file's silver and rejected rows from its bronze rows, in one transaction, all inside DuckDB.

    `date_formats` are the file's invoice date formats (`silver.date_parsing`); a quantity or unit price larger
    in absolute value than `max_abs_quantity` or `max_abs_unit_price` is out of range. A line another file has in
    silver already is an overlap, not added again (`silver_overlaps`). Older versions of the same file name leave
    silver in the same transaction, and the later files that shared lines with silver are published again, in
    ledger order, before this file is compared with the others. `currency` is the ledger's for the file. With
    `rebuild`, the rows go to the rebuild tables that `swap_in_rebuilt_silver` later puts in place of silver
    (recording the currency then), and the ledger is left alone.
    """
    tables = _REBUILD_TABLES if rebuild else _SILVER_TABLES
    limits = _Limits(max_abs_quantity, max_abs_unit_price)
    with _optimizers_kept(connection) as optimizers, transaction(connection):
        superseded, leaving = ([], []) if rebuild else _clear_file_silver(connection, file_id, file_name)
        republished = _republish_later_files(connection, leaving, limits, optimizers) if leaving else {}
        totals = _publish_file(connection, _File(file_id, file_name, date_formats), tables, limits, optimizers)
        if not rebuild:
            _record_superseded(connection, file_id, superseded)
            _record_totals(connection, file_id, totals)
            connection.execute(
                "UPDATE ops.files SET status = 'silver', currency = ?, date_formats = ?, date_order_source = ? "
                "WHERE file_id = ?",
                [currency, " | ".join(date_formats), date_order_source, file_id],
            )
    return SilverTotals(**dict(totals), superseded=superseded, republished=republished)


_SILVER_TABLES = ("silver.lines", "silver.rejected")
_REBUILD_TABLES = ("silver.lines_rebuild", "silver.rejected_rebuild")


def _publish_file(
    connection: duckdb.DuckDBPyConnection, file: _File, tables: tuple[str, str], limits: _Limits, optimizers: str
) -> FileSilver:
    """Insert one file's silver rows and rejected rows into `tables` (lines, rejected), where none of its rows are,
    inside the caller's transaction; its lines already in `tables` from other files are left out and counted."""
    file_id, date_formats = file.file_id, file.date_formats
    source = bronze_source(file_id)
    lines, rejected = tables
    key = key_of_file(connection, file_id)
    duplicate_rows = _stage_file_checks(connection, source, lines)
    connection.execute(silver_numbers.number_rules_sql(source), list(limits))
    bronze_rows = int(scalar(connection, f"SELECT count(*) FROM {bronze_table(file_id)}"))  # noqa: S608
    with _without_filter_pushdown(connection, optimizers):
        inserted = int(
            scalar(
                connection,
                f"""INSERT INTO {lines} BY NAME SELECT ?::INTEGER AS file_key, *
                    FROM ({silver.silver_rows_sql(source, date_formats)})""",  # noqa: S608 - validated id
                [key],
            )
        )
    overlap_rows, changed_rows, changed_invoices = _set_aside_shared_lines(connection, file, key, tables)
    silver_rows = inserted - overlap_rows - changed_rows
    rejected_rows = bronze_rows - duplicate_rows - silver_rows - overlap_rows
    if rejected_rows > changed_rows:
        _publish_rejected(connection, file, rejected, optimizers)
    rejected_by_reason = _rejected_by_reason(connection, file_id, rejected) if rejected_rows else {}
    if sum(rejected_by_reason.values()) != rejected_rows:
        raise RuntimeError(
            f"file {file_id[:12]}: {bronze_rows} bronze rows are not {silver_rows} silver + "
            f"{sum(rejected_by_reason.values())} rejected + {duplicate_rows} repeats + {overlap_rows} overlaps"
        )
    return FileSilver(
        silver_rows=silver_rows,
        rejected_rows=rejected_rows,
        duplicate_rows=duplicate_rows,
        overlap_rows=overlap_rows,
        changed_invoices=changed_invoices,
        rejected_by_reason=rejected_by_reason,
        counts=file_quality_counts(connection, file_id, key, date_formats, duplicate_rows, lines, rejected),
    )


def _stage_file_checks(connection: duckdb.DuckDBPyConnection, source: str, lines: str) -> int:
    """Make the file's tables of repeats, inconsistent invoices and the invoices silver has already (read before
    the file's own rows go in); returns the number of repeats."""
    create_temp_table_as(connection, silver.DUPLICATES_TABLE, silver.duplicates_sql(source))
    create_temp_table_as(connection, silver.INCONSISTENT_TABLE, silver.inconsistent_invoices_sql(source))
    create_temp_table_as(connection, overlaps.SHARED_INVOICES_TABLE, overlaps.shared_invoices_sql(source, lines))
    return int(scalar(connection, f"SELECT count(*) FROM {silver.DUPLICATES_TABLE}"))  # noqa: S608


def _set_aside_shared_lines(
    connection: duckdb.DuckDBPyConnection, file: _File, key: int, tables: tuple[str, str]
) -> tuple[int, int, int]:
    """Take the file's overlaps back out of `lines` (they are only counted); a changed invoice (one silver had,
    brought back with lines silver lacks) keeps those new lines and counts as inconsistent. Returns the overlaps,
    the rows rejected here (none) and the changed invoices."""
    lines, _ = tables
    if not scalar(connection, f"SELECT count(*) FROM {overlaps.SHARED_INVOICES_TABLE}"):  # noqa: S608 - constant
        connection.execute(
            f"CREATE OR REPLACE TEMP TABLE {overlaps.SHARED_LINES_TABLE} ({overlaps.SHARED_LINES_COLUMNS})"
        )
        return 0, 0, 0
    for table, query in (
        (overlaps.MATCHES_TABLE, overlaps.silver_matches_sql(lines)),
        (overlaps.SHARED_LINES_TABLE, overlaps.shared_lines_sql(lines)),
    ):
        create_temp_table_as(connection, table, query, {"file_key": key})
    connection.execute(
        f"""DELETE FROM {lines} WHERE file_key = ?
            AND row_number IN (SELECT row_number FROM {overlaps.SHARED_LINES_TABLE} WHERE is_overlap)""",  # noqa: S608
        [key],
    )
    connection.execute(f"INSERT INTO {table_name(silver.INCONSISTENT_TABLE)} {overlaps.changed_invoices_sql()}")
    shared, changed_rows, changed_invoices = connection.execute(
        f"""SELECT count(*), count(*) FILTER (WHERE NOT is_overlap), count(DISTINCT invoice_no) FILTER (WHERE NOT
            is_overlap) FROM {overlaps.SHARED_LINES_TABLE}"""  # noqa: S608 - constant
    ).fetchall()[0]
    # A changed invoice's new lines stay in silver: a longer export of an invoice adds the lines silver lacked.
    return int(shared) - int(changed_rows), 0, int(changed_invoices)


def _publish_rejected(connection: duckdb.DuckDBPyConnection, file: _File, rejected: str, optimizers: str) -> None:
    """Insert the file's rows that do not type (`silver.rejected_rows_sql`) into the table `rejected`."""
    with _without_filter_pushdown(connection, optimizers):
        connection.execute(
            f"""INSERT INTO {rejected} BY NAME SELECT ? AS file_id, ? AS source_file, *
                FROM ({silver.rejected_rows_sql(bronze_source(file.file_id), file.date_formats)})""",  # noqa: S608
            [file.file_id, file.file_name],
        ).fetchall()


def _rejected_by_reason(connection: duckdb.DuckDBPyConnection, file_id: str, rejected: str) -> dict[str, int]:
    by_reason = {
        str(reason): int(count)
        for reason, count in connection.execute(
            f"SELECT reason, count(*) FROM {rejected} WHERE file_id = ? GROUP BY reason",  # noqa: S608
            [file_id],
        ).fetchall()
    }
    return dict(sorted(by_reason.items()))


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
    """Keep DuckDB from pushing silver's "the row types" test into the scan of bronze, for one statement: pushed
    down, the cleaning expressions run twice, once in the scan's filter and again for the columns. Other
    statements keep the push, which reads one file's rows of a large silver table quickly.

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


def _clear_file_silver(
    connection: duckdb.DuckDBPyConnection, file_id: str, file_name: str
) -> tuple[list[str], list[str]]:
    """Take this file's and its older versions' rows out of silver; returns the older versions' ids, and the ids of
    those files that were live (the older versions, and this file when it is published again)."""
    status = scalar(connection, "SELECT status FROM ops.files WHERE file_id = ?", [file_id])
    if status is None:
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
        delete_file_silver(connection, target)
    return superseded, [file_id, *superseded] if status in ("silver", "loaded") else superseded


def _republish_later_files(
    connection: duckdb.DuckDBPyConnection, leaving: list[str], limits: _Limits, optimizers: str
) -> dict[str, FileSilver]:
    """Publish again, in ledger order, the live files that came into silver after the first of the files `leaving`
    it (the file loaded and the versions it supersedes, whose rows are out already) and shared lines with silver
    then: a line or an invoice that was first in a version leaving is first in one of them now. A file that shared
    nothing is left as it is, since none of its invoices was in silver before it."""
    later = connection.execute(
        """SELECT file_id, file_name, date_formats FROM ops.files
           WHERE status IN ('silver', 'loaded') AND NOT list_contains(?, file_id)
             AND silver_at > (SELECT min(silver_at) FROM ops.files WHERE list_contains(?, file_id))
             AND (overlap_rows > 0 OR changed_invoices > 0)
           ORDER BY silver_at, file_id""",
        [leaving, leaving],
    ).fetchall()
    republished = {}
    for file_id, file_name, formats in later:
        delete_file_silver(connection, file_id)
        file = _File(file_id, file_name, [name for name in (formats or "").split(" | ") if name])
        republished[file_id] = _publish_file(connection, file, _SILVER_TABLES, limits, optimizers)
        _record_totals(connection, file_id, republished[file_id])
    return republished


def _record_superseded(connection: duckdb.DuckDBPyConnection, file_id: str, superseded: list[str]) -> None:
    for old in superseded:
        connection.execute(
            "UPDATE ops.files SET status = 'superseded', superseded_by = ? WHERE file_id = ?", [file_id, old]
        )


def _record_totals(
    connection: duckdb.DuckDBPyConnection, file_id: str, totals: FileSilver, silver_at: datetime | None = None
) -> None:
    """Enter the file's silver totals in the ledger, and when its rows came into silver: the order in which a
    rebuild takes the files, and how gold finds the files whose rows changed."""
    connection.execute(
        """UPDATE ops.files SET silver_rows = ?, rejected_rows = ?, duplicate_rows = ?, overlap_rows = ?,
           changed_invoices = ?, silver_at = ? WHERE file_id = ?""",
        [
            totals.silver_rows,
            totals.rejected_rows,
            totals.duplicate_rows,
            totals.overlap_rows,
            totals.changed_invoices,
            silver_at or now(),
            file_id,
        ],
    )


_REBUILD_TABLES_SQL = (
    *(f"DROP TABLE IF EXISTS {table}" for table in _REBUILD_TABLES),
    lines_table_sql(_REBUILD_TABLES[0]),
    rejected_table_sql(_REBUILD_TABLES[1]),
)
# The silver views name silver.lines, so they read the rebuilt table once it has that name.
_SWAP_SQL = (
    "DROP TABLE silver.lines",
    "ALTER TABLE silver.lines_rebuild RENAME TO lines",
    "DROP TABLE silver.rejected",
    "ALTER TABLE silver.rejected_rebuild RENAME TO rejected",
)


def prepare_silver_rebuild(connection: duckdb.DuckDBPyConnection) -> None:
    """Empty rebuild tables shaped exactly like silver's."""
    with transaction(connection):
        for statement in _REBUILD_TABLES_SQL:
            connection.execute(statement)


def carry_over_silver(connection: duckdb.DuckDBPyConnection, file_id: str) -> None:
    """Copy a live file's silver and rejected rows as they are into the rebuild tables: a file without bronze rows
    (entered into the ledger when an unversioned release's silver table was moved) cannot be rebuilt from them."""
    stored = ", ".join(stored_lines_columns(connection))
    with transaction(connection):
        connection.execute(
            f"""INSERT INTO silver.lines_rebuild BY NAME SELECT {stored} FROM silver.lines
                WHERE file_key = ?""",  # noqa: S608 - column names from the catalog
            [key_of_file(connection, file_id)],
        )
        connection.execute(
            "INSERT INTO silver.rejected_rebuild SELECT * FROM silver.rejected WHERE file_id = ?", [file_id]
        )


def swap_in_rebuilt_silver(
    connection: duckdb.DuckDBPyConnection,
    files: Iterable[RebuiltFile],
    *,
    ledger_order: list[str],
    currency: str,
    threshold: float,
) -> None:
    """Put the rebuilt tables in place of silver and record each rebuilt file's new totals, its rows' `currency`
    and its quality, all in one transaction. `ledger_order` names every live file in the order it was rebuilt or
    carried over: their times in silver keep that order, a microsecond apart, for the next rebuild to take them in
    it again."""
    rebuilt_at = now()
    silver_at = {file_id: rebuilt_at + timedelta(microseconds=offset) for offset, file_id in enumerate(ledger_order)}
    with transaction(connection):
        for statement in _SWAP_SQL:
            connection.execute(statement)
        connection.executemany(
            "UPDATE ops.files SET silver_at = ? WHERE file_id = ?", [[at, file_id] for file_id, at in silver_at.items()]
        )
        for file in files:
            _record_totals(connection, file.file_id, file.totals, silver_at[file.file_id])
            connection.execute("UPDATE ops.files SET currency = ? WHERE file_id = ?", [currency, file.file_id])
            connection.execute("DELETE FROM ops.quality WHERE scope = 'file' AND file_id = ?", [file.file_id])
            insert_quality(connection, "file", file.file_id, file.totals.counts, file.scores, threshold)
