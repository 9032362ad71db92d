"""The top products' lines (invoice and customer of each), which their distinct invoice and customer counts read.

Only the products ranked in the top N are held, each with the lines of every live file: a refresh replaces the
refreshed files' lines of the products that stay in the top, reads every line of a product that enters it, and
drops the products that leave it. Ranking needs only each product's sums, kept in `product_totals`.
"""

from __future__ import annotations

import duckdb

from medallion.gold.state import REFRESH, Selection
from medallion.warehouse.schema import LINES_VIEW

_PRODUCT_LINES = f"""
    INSERT INTO gold_state.top_product_lines
    SELECT DISTINCT file_key, stock_code, invoice_no, customer_id, is_cancellation FROM {LINES_VIEW}
    WHERE NOT is_bad_debt AND NOT is_non_product AND {{which}}"""  # noqa: S608 - constants


def refresh_top_product_lines(connection: duckdb.DuckDBPyConnection, lines: Selection, top_n: int) -> None:
    """Bring the held lines to the top `top_n` products of `product_totals` as they are now."""
    top = [
        str(row[0])
        for row in connection.execute(
            "SELECT stock_code FROM gold_state.product_totals ORDER BY amount DESC, stock_code LIMIT ?", [top_n]
        ).fetchall()
    ]
    held = {
        str(row[0])
        for row in connection.execute("SELECT DISTINCT stock_code FROM gold_state.top_product_lines").fetchall()
    }
    entering = [code for code in top if code not in held]
    staying = [code for code in top if code in held]
    connection.execute(
        f"""DELETE FROM gold_state.top_product_lines
            WHERE file_key IN (SELECT file_key FROM {REFRESH}) OR NOT {_one_of(top)}""",  # noqa: S608
        top,
    )
    # Codes as parameters, which DuckDB pushes down to the scan of silver.
    if entering:
        connection.execute(_PRODUCT_LINES.format(which=_one_of(entering)), entering)
    if staying:
        connection.execute(
            _PRODUCT_LINES.format(which=f"{lines.by_key} AND {_one_of(staying)}"), [*lines.keys, *staying]
        )


def _one_of(codes: list[str]) -> str:
    return f"stock_code IN ({', '.join('?' * len(codes))})" if codes else "false"
