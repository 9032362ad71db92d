"""The top products' distinct invoice and customer counts, moved by each refresh, and the lines they are moved from.

Only the products ranked in the top N are held: each with its counts in `top_product_counts` and the invoice and
customer of its lines of every live file in `top_product_lines`. A refresh moves a staying product's counts by the
change in the pairs of product and invoice (and of product and customer) its refreshed lines name, looked up among
the held lines; a product that enters the top has every line read and counted, and one that leaves it is dropped.
Ranking needs only each product's sums, kept in `product_totals`.
"""

from __future__ import annotations

import duckdb

from medallion.gold.state import IN_REFRESH, Selection
from medallion.warehouse.schema import LINES_VIEW

_NEW_LINES = "gold_new_top_lines"
_BEFORE = "gold_top_before"

_PRODUCT_LINES = f"""
    SELECT DISTINCT file_key, stock_code, invoice_no, customer_id, is_cancellation FROM {LINES_VIEW}
    WHERE NOT is_bad_debt AND NOT is_non_product AND {{which}}"""  # noqa: S608 - constants
# Per distinct count: the item counted and which lines count.
_COUNTS = {"invoices": ("invoice_no", "NOT is_cancellation"), "customers": ("customer_id", "customer_id IS NOT NULL")}
_DISTINCT_COUNTS = ", ".join(
    f"count(DISTINCT {item}) FILTER (WHERE {counted}) AS {count}" for count, (item, counted) in _COUNTS.items()
)
TEMPORARY_TABLES = (_NEW_LINES, *(f"{_BEFORE}_{count}" for count in _COUNTS))


def refresh_top_products(connection: duckdb.DuckDBPyConnection, lines: Selection, top_n: int) -> None:
    """Bring the held lines and counts to the top `top_n` products of `product_totals` as they are now, the refreshed
    files' lines read from `lines`."""
    top = [
        str(row[0])
        for row in connection.execute(
            "SELECT stock_code FROM gold_state.product_totals ORDER BY amount DESC, stock_code LIMIT ?", [top_n]
        ).fetchall()
    ]
    held = {
        str(row[0]) for row in connection.execute("SELECT stock_code FROM gold_state.top_product_counts").fetchall()
    }
    entering = [code for code in top if code not in held]
    staying = [code for code in top if code in held]
    leaving = sorted(held - set(top))
    if leaving:
        for table in ("top_product_lines", "top_product_counts"):
            connection.execute(f"DELETE FROM gold_state.{table} WHERE {_one_of(leaving)}", leaving)  # noqa: S608
    if staying:
        _move_staying(connection, lines, staying)
    if entering:
        # Codes as parameters, which DuckDB pushes down to the scan of silver.
        connection.execute(
            f"INSERT INTO gold_state.top_product_lines {_PRODUCT_LINES.format(which=_one_of(entering))}", entering
        )
        connection.execute(
            f"""INSERT INTO gold_state.top_product_counts BY NAME
                SELECT stock_code, {_DISTINCT_COUNTS}
                FROM gold_state.top_product_lines WHERE {_one_of(entering)} GROUP BY stock_code""",  # noqa: S608
            entering,
        )


def _move_staying(connection: duckdb.DuckDBPyConnection, lines: Selection, staying: list[str]) -> None:
    """Replace the refreshed files' lines of the staying products by those of `lines`, and move their counts."""
    refreshed = _PRODUCT_LINES.format(which=f"{lines.by_key} AND {_one_of(staying)}")
    connection.execute(f"CREATE OR REPLACE TEMP TABLE {_NEW_LINES} AS {refreshed}", [*lines.keys, *staying])
    changes = " UNION ALL BY NAME ".join(
        [_count_change(connection, count, item, counted) for count, (item, counted) in _COUNTS.items()]
    )
    connection.execute(
        f"""UPDATE gold_state.top_product_counts AS t
            SET invoices = t.invoices + d.invoices, customers = t.customers + d.customers
            FROM (SELECT stock_code, coalesce(sum(invoices), 0) AS invoices, coalesce(sum(customers), 0) AS customers
                  FROM ({changes}) GROUP BY stock_code) AS d
            WHERE t.stock_code = d.stock_code"""  # noqa: S608 - constants
    )
    connection.execute(f"DELETE FROM gold_state.top_product_lines WHERE {IN_REFRESH}")  # noqa: S608 - constants
    connection.execute(f"INSERT INTO gold_state.top_product_lines SELECT * FROM {_NEW_LINES}")  # noqa: S608


def _count_change(connection: duckdb.DuckDBPyConnection, count: str, item: str, counted: str) -> str:
    """Keep the held lines of the pairs of product and `item` that the refreshed files' lines name, as they were,
    and return a query of each product's change in its distinct `item`s: those pairs counted as they are (less the
    refreshed files' old lines, plus their new ones) less as they were. The other pairs count the same."""
    before = f"{_BEFORE}_{count}"
    connection.execute(
        f"""CREATE OR REPLACE TEMP TABLE {before} AS
            WITH pairs AS (
                SELECT stock_code, {item} FROM gold_state.top_product_lines WHERE {IN_REFRESH} AND {counted}
                UNION SELECT stock_code, {item} FROM {_NEW_LINES} WHERE {counted})
            -- The held lines filtered by the item alone first, which DuckDB does faster than by the pair.
            SELECT stock_code, {item}, {IN_REFRESH} AS refreshed
            FROM (SELECT * FROM gold_state.top_product_lines
                  WHERE {counted} AND {item} IN (SELECT {item} FROM pairs))
            SEMI JOIN pairs USING (stock_code, {item})"""  # noqa: S608 - constants
    )
    return f"""
        SELECT stock_code, count(*) AS {count} FROM (
            SELECT DISTINCT stock_code, {item} FROM {before} WHERE NOT refreshed
            UNION SELECT stock_code, {item} FROM {_NEW_LINES} WHERE {counted})
        GROUP BY stock_code
        UNION ALL BY NAME
        SELECT stock_code, -count(DISTINCT {item}) AS {count} FROM {before} GROUP BY stock_code"""  # noqa: S608


def _one_of(codes: list[str]) -> str:
    return f"stock_code IN ({', '.join('?' * len(codes))})" if codes else "false"
