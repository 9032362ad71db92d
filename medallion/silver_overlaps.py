"""Lines a file shares with silver, as DuckDB SQL: exports overlap ("last 7 days", a month sent again), and a line
added twice would count its revenue twice.

A line whose fields all equal a line another live file has in silver already is an overlap: bronze keeps it, the
ledger counts it, silver does not add it again. An invoice silver has that a file brings back with a line silver
lacks is a changed invoice: the lines silver lacks are added (a longer export of the same invoice completes it),
the lines it shares are overlaps, and the invoice is counted (`changed_invoices`) and lowers the consistency
score. An invoice that comes back with fewer lines is no change: what it has is all overlap.

Only silver's lines of the invoices the file shares with it are compared, found first in silver's one column of
invoice numbers (DuckDB pushes a Bloom filter of the file's into that scan): beyond the file's own cost, a file
shares nothing costs the warehouse a scan of one column.
"""

from __future__ import annotations

from medallion.silver import invoice_number_sql

SHARED_INVOICES_TABLE = "file_shared_invoices"
MATCHES_TABLE = "file_silver_matches"
SHARED_LINES_TABLE = "file_shared_lines"
SHARED_LINES_COLUMNS = "row_number BIGINT, invoice_no VARCHAR, is_overlap BOOLEAN"

# What makes two lines one line, as silver stores it: every canonical field, typed and cleaned (so `EIRE` and
# `Ireland`, or `2.5` and `2.50`, are the same).
LINE_FIELDS = (
    "invoice_no",
    "stock_code",
    "description",
    "quantity",
    "unit_price",
    "customer_id",
    "country",
    "invoice_ts",
)


def shared_invoices_sql(source: str, lines: str) -> str:
    """The invoice numbers `source`'s bronze rows name that `lines` (silver's, without the file's own) holds, read
    from the one column of invoice numbers. `source` and `lines` are the caller's identifiers or parenthesised
    queries, never user text."""
    return f"""
    SELECT DISTINCT invoice_no FROM {lines}
    WHERE invoice_no IN (SELECT {invoice_number_sql("invoice_no")} FROM (SELECT DISTINCT invoice_no FROM {source}))
    """  # noqa: S608 - constants and the caller's identifiers


def silver_matches_sql(lines: str) -> str:
    """The distinct lines of `lines` of the shared invoices (`SHARED_INVOICES_TABLE`), but for the file's own (its
    key is `$file_key`)."""
    return f"""
    SELECT DISTINCT {", ".join(LINE_FIELDS)} FROM {lines}
    WHERE file_key <> $file_key AND invoice_no IN (SELECT invoice_no FROM {SHARED_INVOICES_TABLE})
    """  # noqa: S608 - constants and the caller's identifier


def shared_lines_sql(lines: str) -> str:
    """The file's rows in `lines` (its key is `$file_key`) of the shared invoices, each marked an overlap when silver
    had the line itself (`MATCHES_TABLE`)."""
    equal = " AND ".join(f"l.{field} IS NOT DISTINCT FROM m.{field}" for field in LINE_FIELDS)
    return f"""
    SELECT l.row_number, l.invoice_no, m.invoice_no IS NOT NULL AS is_overlap
    FROM {lines} AS l LEFT JOIN {MATCHES_TABLE} AS m ON {equal}
    WHERE l.file_key = $file_key AND l.invoice_no IN (SELECT invoice_no FROM {SHARED_INVOICES_TABLE})
    """  # noqa: S608 - constants and the caller's identifier


def changed_invoices_sql() -> str:
    """The changed invoices' numbers."""
    return f"SELECT DISTINCT invoice_no FROM {SHARED_LINES_TABLE} WHERE NOT is_overlap"  # noqa: S608 - constant
