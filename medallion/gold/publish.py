"""Publishing gold: a file's run moves gold's state and totals by that file's rows; a rebuild makes them afresh
from the whole of silver. Either way the gold tables are then read from the totals, all in one transaction, and
the two give the same gold."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import duckdb

from medallion.gold import state, top_products, totals
from medallion.gold.tables import gold_kpis, publish_tables
from medallion.warehouse.sql import transaction


def update_gold(
    connection: duckdb.DuckDBPyConnection,
    *,
    added_file_keys: Iterable[int],
    removed_file_keys: Iterable[int],
    top_n: int,
    vip_percentile: float,
    low_value_percentile: float,
) -> dict[str, Any]:
    """Move gold by the files whose silver rows changed, in one transaction, and return the KPI row.

    Besides the files named (the one loaded and the versions it superseded), any file whose silver rows the state
    does not hold as they are now (the ledger no longer counts it live, or it was loaded again or rebuilt) is
    refreshed too, so a gold step that failed or never ran is caught up.
    """
    changed, parameters = state.changed_files_sql([*added_file_keys, *removed_file_keys])
    with transaction(connection):
        state.set_refresh(connection, changed, parameters)
        _publish(connection, {"top_n": top_n, "vip": vip_percentile, "low": low_value_percentile}, rebuild=False)
    return gold_kpis(connection)


def publish_gold(
    connection: duckdb.DuckDBPyConnection,
    *,
    top_n: int,
    vip_percentile: float,
    low_value_percentile: float,
) -> dict[str, Any]:
    """Rebuild gold's state and every gold table from the whole of silver in one transaction; return the KPI row."""
    with transaction(connection):
        state.clear_state(connection)
        state.set_refresh(connection, state.ALL_FILES_SQL)
        _publish(connection, {"top_n": top_n, "vip": vip_percentile, "low": low_value_percentile}, rebuild=True)
    return gold_kpis(connection)


def _publish(connection: duckdb.DuckDBPyConnection, parameters: dict[str, Any], *, rebuild: bool) -> None:
    """Refresh the state of the files in `state.REFRESH` (every file in a `rebuild`), move the totals, and rewrite
    the gold tables."""
    lines = state.selection(connection, every_file=rebuild)
    enriched = state.has_enriched_view(connection)
    if enriched:
        state.number_categories(connection)
    state.line_sums(connection, lines, categories=enriched)
    _refresh_base(connection, lines)
    top_products.refresh_top_products(connection, lines, parameters["top_n"])
    if enriched:
        _refresh_enriched(connection)
    state.mark_enriched(connection, enriched=enriched)
    publish_tables(connection, parameters, enriched=enriched)
    for name in totals.TEMPORARY_VIEWS:
        connection.execute(f"DROP VIEW IF EXISTS {name}")
    for name in (*totals.TEMPORARY_TABLES, *top_products.TEMPORARY_TABLES, state.LINE_SUMS, state.REFRESH):
        connection.execute(f"DROP TABLE IF EXISTS {name}")


def _refresh_base(connection: duckdb.DuckDBPyConnection, lines: state.Selection) -> None:
    totals.refresh_state(connection, "files", lines)
    totals.refresh_products(connection, lines)
    totals.refresh_sliced_state(connection, "invoices", lines)
    for spec in totals.BASE_TOTALS:
        totals.move_totals(connection, spec)
    totals.move_customer_totals(connection)


def _refresh_enriched(connection: duckdb.DuckDBPyConnection) -> None:
    """Refresh the enriched state of the files refreshed above and of those holding a dimension row that changed
    since; every file's when the enriched state does not cover every file."""
    every_file = not state.enriched_is_complete(connection)
    if every_file:
        state.reset_enriched_state(connection)
        state.set_refresh(connection, "SELECT file_key FROM gold_state.files")
    else:
        stale = state.stale_enriched_files_sql(connection)
        state.set_refresh(connection, f"SELECT file_key FROM {state.REFRESH} UNION ALL {stale}")  # noqa: S608
    lines = state.selection(connection, every_file=every_file)
    state.enriched_sums(connection)
    totals.refresh_sliced_state(connection, "enriched_invoices", lines)
    totals.move_totals(connection, totals.REGION_TOTALS)
    totals.move_category_totals(connection, lines)
