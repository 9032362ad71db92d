"""What the warehouse holds and where it came from: every table's rows and last change, the ledger by status, and the
lineage from source files to each gold table.

Steps record what they changed with `record_table_changes`; `warehouse_state` reads it all back as one model.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Literal

import duckdb
from pydantic import BaseModel

from medallion.warehouse.sql import now, scalar

# The schemas the state lists, in the order data flows through them.
SCHEMAS: tuple[str, ...] = ("bronze", "silver", "enrichment", "gold_state", "gold", "ops")
SOURCE_FILES = "source files"
# Each file's bronze rows are a table of their own; the state and the lineage show them as one node.
BRONZE_FILES = "bronze.file_*"
_BRONZE_FILE_PREFIX = "bronze.file_"
# Gold's state (each file's invoices, running totals) is many tables that gold's step moves together; the state and
# the lineage show them as one node too, and recording a change to it records each of them.
GOLD_STATE = "gold_state.*"
_GOLD_STATE_PREFIX = "gold_state."
_ENRICHMENT_DIMENSIONS = ("enrichment.rates", "enrichment.countries", "enrichment.products")
_GOLD_FROM_SILVER = ("sales_by_country", "sales_by_month", "top_products", "top_customers", "customer_segments", "kpis")
_GOLD_FROM_ENRICHED = ("sales_by_region", "sales_by_category")

# Which table or view each is made from, stated once; tests/test_catalog.py checks it against a loaded warehouse.
# The ledger, the quality history, the change log and the enrichment API cache are bookkeeping, not lineage.
LINEAGE: tuple[tuple[str, str], ...] = (
    (SOURCE_FILES, BRONZE_FILES),
    (SOURCE_FILES, "ops.files"),
    (BRONZE_FILES, "bronze.transactions"),
    (BRONZE_FILES, "silver.lines"),
    (BRONZE_FILES, "silver.rejected"),
    ("silver.lines", "silver.lines_derived"),
    ("silver.lines_derived", "silver.transactions"),
    ("ops.files", "silver.transactions"),
    *(("silver.transactions", dimension) for dimension in _ENRICHMENT_DIMENSIONS),
    ("silver.transactions", "silver.transactions_enriched"),
    *((dimension, "silver.transactions_enriched") for dimension in _ENRICHMENT_DIMENSIONS),
    ("silver.lines_derived", GOLD_STATE),
    *((dimension, GOLD_STATE) for dimension in _ENRICHMENT_DIMENSIONS),
    *((GOLD_STATE, f"gold.{name}") for name in (*_GOLD_FROM_SILVER, *_GOLD_FROM_ENRICHED)),
)

_RECENT_FAILURES = 5
# The ledger's statuses in the order a file passes through them; any other status follows these.
_STATUS_ORDER = ("started", "bronze", "silver", "loaded", "superseded", "failed")


class TableState(BaseModel):
    """One table or view: its rows now, and when and by which flow run it last changed (None if never recorded)."""

    name: str
    kind: Literal["table", "view"]
    rows: int
    changed_at: datetime | None = None
    flow_run_id: str | None = None
    # Only for BRONZE_FILES: how many per-file tables it stands for.
    files: int | None = None
    # Only for the lines that stand for several tables (BRONZE_FILES, GOLD_STATE): how many.
    tables: int | None = None

    @property
    def label(self) -> str:
        if self.files is not None:
            return f"{self.name} ({self.files} file{'' if self.files == 1 else 's'})"
        if self.tables is not None:
            return f"{self.name} ({self.tables} table{'' if self.tables == 1 else 's'})"
        return self.name


class FileFailure(BaseModel):
    file_name: str
    failed_at: datetime | None
    error: str | None
    retryable: bool | None


class LineageEdge(BaseModel):
    source: str
    target: str


class WarehouseState(BaseModel):
    """The warehouse at one moment, as the `medallion-warehouse` artifact shows it."""

    measured_at: datetime
    tables: list[TableState]
    files_by_status: dict[str, int]
    recent_failures: list[FileFailure]
    lineage: list[LineageEdge]

    def table(self, name: str) -> TableState | None:
        return next((table for table in self.tables if table.name == name), None)


def record_table_changes(
    connection: duckdb.DuckDBPyConnection, table_names: Iterable[str], flow_run_id: str | None
) -> list[str]:
    """Note now as the last change of each named table or view (`schema.name`; a quoted name is accepted), with
    its rows now and the flow run. A name the warehouse has no table or view for (a gold table built only when
    enrichment ran) is left out; returns the names recorded."""
    relations = _relations(connection)
    present = {(schema, name): kind for schema, name, kind in relations}
    recorded = []
    for table_name in _expanded(table_names, relations):
        schema, _, name = table_name.partition(".")
        name = name.strip('"')
        if (schema, name) not in present:
            continue
        rows = _row_count(connection, schema, name)
        connection.execute(
            """INSERT INTO ops.table_changes VALUES (?, ?, ?, ?)
               ON CONFLICT (table_name) DO UPDATE SET
                   changed_at = excluded.changed_at, flow_run_id = excluded.flow_run_id, rows = excluded.rows""",
            [f"{schema}.{name}", now(), flow_run_id, rows],
        )
        recorded.append(f"{schema}.{name}")
    return recorded


def _expanded(table_names: Iterable[str], relations: Sequence[tuple[str, str, str]]) -> Iterator[str]:
    """The names, GOLD_STATE replaced by each table of gold's state."""
    for table_name in table_names:
        if table_name == GOLD_STATE:
            yield from (f"{schema}.{name}" for schema, name, _ in relations if f"{schema}." == _GOLD_STATE_PREFIX)
        else:
            yield table_name


def warehouse_state(connection: duckdb.DuckDBPyConnection) -> WarehouseState:
    """Every table and view of the warehouse's schemas with its rows and last change, the ledger by status with the
    latest failures, and the lineage."""
    return WarehouseState(
        measured_at=now(),
        tables=_views_changed_with_their_sources(table_states(connection)),
        files_by_status=files_by_status(connection),
        recent_failures=recent_failures(connection),
        lineage=[LineageEdge(source=source, target=target) for source, target in LINEAGE],
    )


def table_states(connection: duckdb.DuckDBPyConnection) -> list[TableState]:
    """Every table and view of SCHEMAS, the per-file bronze tables summed into one BRONZE_FILES line and gold's
    state into one GOLD_STATE line."""
    changes = {
        str(name): (changed_at, flow_run_id)
        for name, changed_at, flow_run_id in connection.execute(
            "SELECT table_name, changed_at, flow_run_id FROM ops.table_changes"
        ).fetchall()
    }
    no_change: tuple[datetime | None, str | None] = (None, None)
    bronze_files: list[TableState] = []
    gold_state: list[TableState] = []
    others: list[TableState] = []
    for schema, name, kind in _relations(connection):
        changed_at, flow_run_id = changes.get(f"{schema}.{name}", no_change)
        state = TableState(
            name=f"{schema}.{name}",
            kind=kind,
            rows=_row_count(connection, schema, name),
            changed_at=changed_at,
            flow_run_id=flow_run_id,
        )
        if state.name.startswith(_BRONZE_FILE_PREFIX):
            bronze_files.append(state)
        elif state.name.startswith(_GOLD_STATE_PREFIX):
            gold_state.append(state)
        else:
            others.append(state)
    states = [_summed_state(BRONZE_FILES, bronze_files).model_copy(update={"files": len(bronze_files)}), *others]
    if gold_state:
        later = SCHEMAS[SCHEMAS.index("gold_state") + 1 :]
        position = next((index for index, state in enumerate(states) if state.name.split(".")[0] in later), len(states))
        states.insert(position, _summed_state(GOLD_STATE, gold_state))
    return states


def _summed_state(name: str, tables: list[TableState]) -> TableState:
    """Several tables as one line: their rows added up, the latest change among them."""
    changed = [state for state in tables if state.changed_at is not None]
    latest = max(changed, key=lambda state: state.changed_at or datetime.min, default=None)
    return TableState(
        name=name,
        kind="table",
        rows=sum(state.rows for state in tables),
        changed_at=latest.changed_at if latest else None,
        flow_run_id=latest.flow_run_id if latest else None,
        tables=len(tables),
    )


def _views_changed_with_their_sources(tables: list[TableState]) -> list[TableState]:
    """A view without a change of its own changed when the latest of the tables it reads (through LINEAGE) did."""
    by_name = {table.name: table for table in tables}
    sources: dict[str, list[str]] = {}
    for source, target in LINEAGE:
        sources.setdefault(target, []).append(source)

    def latest_change(name: str) -> TableState | None:
        table = by_name.get(name)
        if table is not None and (table.kind == "table" or table.changed_at is not None):
            return table if table.changed_at is not None else None
        changed = [change for change in map(latest_change, sources.get(name, [])) if change is not None]
        return max(changed, key=lambda change: change.changed_at or datetime.min, default=None)

    return [
        table.model_copy(update={"changed_at": change.changed_at, "flow_run_id": change.flow_run_id})
        if table.kind == "view" and table.changed_at is None and (change := latest_change(table.name)) is not None
        else table
        for table in tables
    ]


def files_by_status(connection: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """How many files of the ledger are in each status, in the order files pass through them."""
    counts = dict(connection.execute("SELECT status, count(*) FROM ops.files GROUP BY status").fetchall())
    order = {status: position for position, status in enumerate(_STATUS_ORDER)}
    return {
        str(status): int(counts[status])
        for status in sorted(counts, key=lambda status: (order.get(status, len(order)), status))
    }


def recent_failures(connection: duckdb.DuckDBPyConnection, limit: int = _RECENT_FAILURES) -> list[FileFailure]:
    """The latest failed files of the ledger with their error, the latest first."""
    return [
        FileFailure(file_name=file_name, failed_at=failed_at, error=error, retryable=retryable)
        for file_name, failed_at, error, retryable in connection.execute(
            """SELECT file_name, finished_at, error, retryable FROM ops.files WHERE status = 'failed'
               ORDER BY finished_at DESC NULLS LAST, file_name LIMIT ?""",
            [limit],
        ).fetchall()
    ]


def _relations(connection: duckdb.DuckDBPyConnection) -> list[tuple[str, str, Literal["table", "view"]]]:
    """(schema, name, kind) of every table and view of SCHEMAS in this database, in SCHEMAS' order then by name."""
    rows = connection.execute(
        """SELECT schema_name, table_name, 'table' FROM duckdb_tables()
               WHERE database_name = current_database() AND NOT temporary AND list_contains(?, schema_name)
           UNION ALL
           SELECT schema_name, view_name, 'view' FROM duckdb_views()
               WHERE database_name = current_database() AND NOT internal AND NOT temporary
               AND list_contains(?, schema_name)""",
        [list(SCHEMAS), list(SCHEMAS)],
    ).fetchall()
    return sorted(
        ((str(schema), str(name), "view" if kind == "view" else "table") for schema, name, kind in rows),
        key=lambda row: (SCHEMAS.index(row[0]), row[1]),
    )


def _row_count(connection: duckdb.DuckDBPyConnection, schema: str, name: str) -> int:
    """Rows of a table or view the catalog named; the names are quoted as identifiers, never read from input."""
    return int(scalar(connection, f"SELECT count(*) FROM {_identifier(schema)}.{_identifier(name)}"))  # noqa: S608


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
