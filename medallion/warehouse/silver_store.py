"""Silver in the warehouse: one file's typed rows and rejected rows published from its bronze rows, and the
rebuild of all of silver swapped in at once."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import NamedTuple

import duckdb
from pydantic import BaseModel

from medallion import silver, silver_numbers
from medallion.quality import QualityCounts, QualityScores
from medallion.settings import PipelineSettings
from medallion.warehouse.bronze import bronze_source, bronze_table
from medallion.warehouse.ledger import delete_file_silver, key_of_file
from medallion.warehouse.quality_store import file_quality_counts, insert_quality
from medallion.warehouse.schema import lines_table_sql, rejected_table_sql, stored_lines_columns
from medallion.warehouse.sql import now, scalar, transaction


class SilverTotals(BaseModel):
    """What publishing one file's silver rows wrote, and the file's quality counts as received."""

    silver_rows: int
    rejected_rows: int
    duplicate_rows: int
    rejected_by_reason: dict[str, int]
    superseded: list[str]
    counts: QualityCounts


class RebuiltFile(NamedTuple):
    """One file's totals in the rebuilt silver tables, and its quality then."""

    file_id: str
    silver_rows: int
    rejected_rows: int
    duplicate_rows: int
    counts: QualityCounts
    scores: QualityScores


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
    in absolute value than `max_abs_quantity` or `max_abs_unit_price` is out of range. Older versions of the same
    file name leave silver in the same transaction. `currency` is the ledger's for the file. With `rebuild`, the rows
    go to the rebuild tables that `swap_in_rebuilt_silver` later puts in place of silver (recording the currency
    then), and the ledger is left alone.
    """
    source = bronze_source(file_id)
    lines, rejected = _REBUILD_TABLES if rebuild else _SILVER_TABLES
    with _optimizers_kept(connection) as optimizers, transaction(connection):
        duplicate_rows = _stage_file_checks(connection, source)
        connection.execute(silver_numbers.number_rules_sql(source), [max_abs_quantity, max_abs_unit_price])
        superseded = [] if rebuild else _clear_file_silver(connection, file_id, file_name)
        key = key_of_file(connection, file_id)
        bronze_rows = int(scalar(connection, f"SELECT count(*) FROM {bronze_table(file_id)}"))  # noqa: S608
        with _without_filter_pushdown(connection, optimizers):
            silver_rows = int(
                scalar(
                    connection,
                    f"""INSERT INTO {lines} BY NAME SELECT ?::INTEGER AS file_key, *
                        FROM ({silver.silver_rows_sql(source, date_formats)})""",  # noqa: S608 - validated id
                    [key],
                )
            )
        rejected_rows = bronze_rows - duplicate_rows - silver_rows
        rejected_by_reason = (
            _publish_rejected(connection, file_id, file_name, date_formats, rejected, optimizers)
            if rejected_rows
            else {}
        )
        if sum(rejected_by_reason.values()) != rejected_rows:
            raise RuntimeError(
                f"file {file_id[:12]}: {bronze_rows} bronze rows are not {silver_rows} silver + "
                f"{sum(rejected_by_reason.values())} rejected + {duplicate_rows} repeats"
            )
        totals = SilverTotals(
            silver_rows=silver_rows,
            rejected_rows=rejected_rows,
            duplicate_rows=duplicate_rows,
            rejected_by_reason=rejected_by_reason,
            superseded=superseded,
            counts=file_quality_counts(connection, file_id, key, date_formats, duplicate_rows, lines, rejected),
        )
        if not rebuild:
            _record_silver(connection, file_id, totals, currency, date_formats, date_order_source)
    return totals


_SILVER_TABLES = ("silver.lines", "silver.rejected")
_REBUILD_TABLES = ("silver.lines_rebuild", "silver.rejected_rebuild")


def _stage_file_checks(connection: duckdb.DuckDBPyConnection, source: str) -> int:
    """Make the file's tables of repeats and inconsistent invoices, which the silver SQL reads; returns the
    number of repeats."""
    connection.execute(f"CREATE OR REPLACE TEMP TABLE {silver.DUPLICATES_TABLE} AS {silver.duplicates_sql(source)}")
    connection.execute(
        f"CREATE OR REPLACE TEMP TABLE {silver.INCONSISTENT_TABLE} AS {silver.inconsistent_invoices_sql(source)}"
    )
    return int(scalar(connection, f"SELECT count(*) FROM {silver.DUPLICATES_TABLE}"))  # noqa: S608


def _publish_rejected(
    connection: duckdb.DuckDBPyConnection,
    file_id: str,
    file_name: str,
    date_formats: list[str],
    rejected: str,
    optimizers: str,
) -> dict[str, int]:
    """Insert the file's rejected rows into the table `rejected` and count them by reason."""
    with _without_filter_pushdown(connection, optimizers):
        connection.execute(
            f"""INSERT INTO {rejected} BY NAME SELECT ? AS file_id, ? AS source_file, *
                FROM ({silver.rejected_rows_sql(bronze_source(file_id), date_formats)})""",  # noqa: S608
            [file_id, file_name],
        ).fetchall()
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
        delete_file_silver(connection, target)
    return superseded


def _record_silver(
    connection: duckdb.DuckDBPyConnection,
    file_id: str,
    totals: SilverTotals,
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
    connection: duckdb.DuckDBPyConnection, files: Iterable[RebuiltFile], *, currency: str, threshold: float
) -> None:
    """Put the rebuilt tables in place of silver and record each rebuilt file's new totals, its rows' `currency`
    and its quality, all in one transaction."""
    with transaction(connection):
        for statement in _SWAP_SQL:
            connection.execute(statement)
        for file in files:
            connection.execute(
                """UPDATE ops.files SET silver_rows = ?, rejected_rows = ?, duplicate_rows = ?, currency = ?,
                   silver_at = ? WHERE file_id = ?""",
                [file.silver_rows, file.rejected_rows, file.duplicate_rows, currency, now(), file.file_id],
            )
            connection.execute("DELETE FROM ops.quality WHERE scope = 'file' AND file_id = ?", [file.file_id])
            insert_quality(connection, "file", file.file_id, file.counts, file.scores, threshold)
