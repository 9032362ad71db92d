"""Gold's per-file state: each file's silver rows summed at the grain gold needs, and which files to refresh.

A refresh replaces the state rows of the files in `REFRESH` with rows built from their silver lines as they are
now: a superseded or failed file has no lines left, so refreshing it takes its contributions out, and a file
loaded again brings its new ones. Amounts are summed as exact decimals (silver rounds each line amount to whole
cents, and converted amounts are held to twelve places), so any split of the lines into files adds up to the same
totals, where sums of doubles could differ in the last bit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import duckdb

from medallion.warehouse.schema import LINES_VIEW
from medallion.warehouse.sql import scalar

# The files whose state a step replaces, as a temporary table of file keys.
REFRESH = "gold_refresh"
IN_REFRESH = f"file_key IN (SELECT file_key FROM {REFRESH})"  # noqa: S608 - constant
LIVE_STATUSES = "('silver', 'loaded')"
# The state tables built with the enrichment dimensions, and the dimension values they were built with.
ENRICHED_STATE = ("enriched_invoices", "category_sums")
_SEEN = ("seen_rates", "seen_countries", "seen_products")
# The refreshed files' lines summed per invoice (the plain state's rows, with the bits of the invoice's product
# categories) and per product category and day, in one read of silver: see `line_sums`.
LINE_SUMS = "gold_line_sums"
# The bits of `enriched_invoices.categories`, one per category.
CATEGORY_BITS = 64

_EXACT_SUMS = """sum(line_amount::DECIMAL(38, 2)) AS amount, sum(quantity)::BIGINT AS quantity,
    count(*) AS rows"""
_INVOICE_GRAIN = "file_key, invoice_no, customer_id, country, invoice_date, year, month, is_cancellation"
# Amounts converted at the rate (`r`) of the day of the exact sums of one invoice, or of one category and day, of a
# file (`{of}`); summed with `{total}` when several days make one row.
_CONVERTED_SUMS = """{total}(coalesce((({of}.amount * r.usd)::DECIMAL(38, 12)), 0)) AS amount_usd,
    {total}(coalesce((({of}.amount * r.eur)::DECIMAL(38, 12)), 0)) AS amount_eur,
    {total}(CASE WHEN r.usd IS NULL THEN 0 ELSE {of}.rows END) AS usd_rows,
    {total}(CASE WHEN r.eur IS NULL THEN 0 ELSE {of}.rows END) AS eur_rows"""

# Per state table, its new rows for the files to refresh, read from `{lines}` (silver's lines of those files) or
# from `LINE_SUMS` (see `line_sums`) and the plain state. Bad-debt adjustments are accounting entries, not sales:
# gold leaves them out everywhere but in the date the customer segments are measured from.
_NEW_ROWS: dict[str, str] = {
    "files": f"""
        SELECT r.file_key, f.silver_at, f.silver_rows, coalesce(l.sale_rows, 0) AS sale_rows, l.first_ts, l.last_ts,
               l.last_date
        FROM {REFRESH} AS r
        LEFT JOIN (SELECT file_key, max(silver_at) AS silver_at, max(silver_rows) AS silver_rows,
                          bool_or(status IN {LIVE_STATUSES}) AS live
                   FROM ops.files GROUP BY file_key) AS f USING (file_key)
        LEFT JOIN (SELECT file_key, count(*) FILTER (WHERE NOT is_bad_debt) AS sale_rows,
                          min(invoice_ts) FILTER (WHERE NOT is_bad_debt) AS first_ts,
                          max(invoice_ts) FILTER (WHERE NOT is_bad_debt) AS last_ts, max(invoice_date) AS last_date
                   FROM {{lines}} GROUP BY file_key) AS l USING (file_key)
        WHERE l.file_key IS NOT NULL OR f.live""",  # noqa: S608 - constants
    "invoices": f"""
        SELECT {_INVOICE_GRAIN}, amount, quantity, rows, first_ts, last_ts
        FROM {LINE_SUMS} WHERE NOT by_category""",  # noqa: S608 - constants
    "products": f"""
        SELECT file_key, stock_code, description, {_EXACT_SUMS}
        FROM {{lines}} WHERE NOT is_bad_debt AND NOT is_non_product
        GROUP BY ALL""",  # noqa: S608 - constants
    # The enriched state per invoice: the invoice's plain state (refreshed before it), the dimensions of its country
    # and of its file's currency on its date, and the bits of its product lines' categories.
    "enriched_invoices": f"""
        SELECT i.file_key, i.invoice_no, i.customer_id, i.country, i.invoice_date, c.continent, c.region,
               c.subregion, i.is_cancellation, i.amount, i.quantity, i.rows, {_CONVERTED_SUMS.format(of="i", total="")},
               coalesce(x.categories, 0) AS categories
        FROM (SELECT * FROM gold_state.invoices WHERE {{by_key}}) AS i
        JOIN ops.files AS f USING (file_key)
        LEFT JOIN enrichment.rates AS r ON r.currency = f.currency AND r.invoice_date = i.invoice_date
        LEFT JOIN enrichment.countries AS c ON c.country = i.country
        LEFT JOIN (SELECT * FROM {LINE_SUMS} WHERE NOT by_category) AS x
            ON x.file_key = i.file_key AND x.invoice_no = i.invoice_no
               AND x.customer_id IS NOT DISTINCT FROM i.customer_id AND x.country = i.country
               AND x.invoice_date = i.invoice_date AND x.is_cancellation = i.is_cancellation""",  # noqa: S608
    "category_sums": f"""
        SELECT s.file_key, s.category, s.is_cancellation, sum(s.amount) AS amount, sum(s.quantity) AS quantity,
               sum(s.rows) AS rows, {_CONVERTED_SUMS.format(of="s", total="sum")}
        FROM (SELECT * FROM {LINE_SUMS} WHERE by_category AND category IS NOT NULL AND {IN_REFRESH}) AS s
        JOIN ops.files AS f USING (file_key)
        LEFT JOIN enrichment.rates AS r ON r.currency = f.currency AND r.invoice_date = s.invoice_date
        GROUP BY s.file_key, s.category, s.is_cancellation""",  # noqa: S608 - constants
}
# Silver's lines summed per invoice and, once enrichment has run (`_CATEGORY_PARTS`), per category of product lines
# and day, which the rate of that day converts; each invoice with the bits of its product lines' categories
# (numbered by `category_bits`, which `number_categories` keeps up to date first). A product's category comes from
# one row per product (the table has no key: the smallest category, should a key ever have two); a product line
# without one (none known for it) counts under 'other', as the category table shows it.
_LINE_SUMS = f"""
    SELECT {_INVOICE_GRAIN}, category, GROUPING(invoice_no) = 1 AS by_category, {_EXACT_SUMS},
           min(invoice_ts) AS first_ts, max(invoice_ts) AS last_ts, coalesce(bit_or(1::UBIGINT << bit), 0) AS categories
    FROM (SELECT l.*, {{category}} AS category, {{bit}} AS bit FROM {{lines}} AS l {{joins}} WHERE NOT l.is_bad_debt)
    GROUP BY GROUPING SETS ({{sets}})"""  # noqa: S608 - constants
# The bits are joined to the products, not to every line; every category and 'other' has one by then.
_CATEGORY_PARTS = {
    "category": "CASE WHEN NOT l.is_non_product THEN coalesce(p.category, 'other') END",
    "bit": """CASE WHEN NOT l.is_non_product
                   THEN coalesce(p.bit, (SELECT bit FROM gold_state.category_bits WHERE category = 'other')) END""",
    "joins": """
        LEFT JOIN (SELECT p.stock_code, p.description, p.category, b.bit
                   FROM (SELECT stock_code, description, min(category) AS category
                         FROM enrichment.products GROUP BY ALL) AS p
                   LEFT JOIN gold_state.category_bits AS b ON b.category = coalesce(p.category, 'other')) AS p
            ON p.stock_code IS NOT DISTINCT FROM l.stock_code AND p.description IS NOT DISTINCT FROM l.description""",
    "sets": f"({_INVOICE_GRAIN}), (file_key, category, is_cancellation, invoice_date)",
}
# Before enrichment has run: per invoice only (`category` is NULL on every line).
_NO_CATEGORY_PARTS = {
    "category": "NULL::VARCHAR",
    "bit": "NULL::INTEGER",
    "joins": "",
    "sets": f"({_INVOICE_GRAIN}, category)",
}


class Selection(NamedTuple):
    """The silver lines (and gold state rows) a refresh reads, as a condition on the file key with its parameters.
    The keys are written into the condition as a list of parameters, which DuckDB pushes down to the scan of
    silver; a join to `REFRESH` would read all of silver before filtering."""

    by_key: str
    keys: list[object]


def selection(connection: duckdb.DuckDBPyConnection, *, every_file: bool) -> Selection:
    """The lines of the files in `REFRESH`; with `every_file`, all of silver, which `REFRESH` then covers."""
    if every_file:
        return Selection("true", [])
    keys = [row[0] for row in connection.execute(f"SELECT file_key FROM {REFRESH} ORDER BY 1").fetchall()]  # noqa: S608
    return Selection(_one_of("file_key", keys), keys)


def _one_of(column: str, values: list[object]) -> str:
    return f"{column} IN ({', '.join('?' * len(values))})" if values else "false"


def new_rows(state: str, lines: Selection) -> tuple[str, list[object]]:
    """The query of a state table's new rows for the lines `lines` selects, and its parameters. The invoices' and
    categories' rows come from `LINE_SUMS` (see `line_sums`), the invoices' enriched state from the plain state."""
    if state in ("invoices", "category_sums"):
        return _NEW_ROWS[state], []
    if state == "enriched_invoices":
        return _NEW_ROWS[state].format(by_key=lines.by_key), lines.keys
    return _NEW_ROWS[state].format(lines=_lines_of(lines)), lines.keys


def _lines_of(lines: Selection) -> str:
    return f"(SELECT * FROM {LINES_VIEW} WHERE {lines.by_key})"  # noqa: S608 - constants and placeholders


def line_sums(connection: duckdb.DuckDBPyConnection, lines: Selection, *, categories: bool) -> None:
    """Make `LINE_SUMS`: the lines `lines` selects summed per invoice and, with `categories` (enrichment has run),
    per category and day, each invoice with its category bits."""
    _line_sums(connection, lines, categories=categories, into=f"CREATE OR REPLACE TEMP TABLE {LINE_SUMS} AS")


def _line_sums(connection: duckdb.DuckDBPyConnection, lines: Selection, *, categories: bool, into: str) -> None:
    parts = _CATEGORY_PARTS if categories else _NO_CATEGORY_PARTS
    connection.execute(f"{into} {_LINE_SUMS.format(lines=_lines_of(lines), **parts)}", lines.keys)


def enriched_sums(connection: duckdb.DuckDBPyConnection) -> None:
    """Add to `LINE_SUMS` the sums of the files in `REFRESH` that it lacks: those refreshed for a dimension that
    changed, whose lines did not change."""
    others = [
        row[0]
        for row in connection.execute(
            f"SELECT file_key FROM {REFRESH} EXCEPT SELECT file_key FROM {LINE_SUMS} ORDER BY 1"  # noqa: S608
        ).fetchall()
    ]
    if others:
        _line_sums(
            connection,
            Selection(_one_of("file_key", others), others),
            categories=True,
            into=f"INSERT INTO {LINE_SUMS} BY NAME",
        )


def set_refresh(connection: duckdb.DuckDBPyConnection, sql: str, parameters: object = None) -> None:
    """Make `REFRESH` hold the file keys `sql` selects."""
    # Built under another name first: `sql` may read the table it replaces.
    connection.execute(
        f"CREATE OR REPLACE TEMP TABLE {REFRESH}_next AS SELECT DISTINCT file_key FROM ({sql})",  # noqa: S608
        parameters,
    )
    connection.execute(f"DROP TABLE IF EXISTS {REFRESH}")
    connection.execute(f"ALTER TABLE {REFRESH}_next RENAME TO {REFRESH}")


def changed_files_sql(explicit: Iterable[int]) -> tuple[str, list[object]]:
    """The files whose silver rows differ from what the state holds: those named, those the ledger no longer counts
    as live (failed, superseded), and live files the state lacks or built when the ledger gave the file another
    silver time or row count (an earlier load, a rebuild). Whatever rewrites a file's silver rows records that in
    the ledger, or names the file to `update_gold`."""
    keys = sorted({int(key) for key in explicit})
    sql = f"""
        SELECT unnest(?::INTEGER[]) AS file_key
        UNION ALL
        SELECT s.file_key FROM gold_state.files AS s JOIN ops.files AS f USING (file_key)
        WHERE f.status NOT IN {LIVE_STATUSES}
        UNION ALL
        SELECT f.file_key FROM ops.files AS f LEFT JOIN gold_state.files AS s USING (file_key)
        WHERE f.status IN {LIVE_STATUSES} AND f.file_key IS NOT NULL
              AND (s.file_key IS NULL OR s.silver_at IS DISTINCT FROM f.silver_at
                   OR s.silver_rows IS DISTINCT FROM f.silver_rows)"""  # noqa: S608 - constants
    return sql, [keys]


ALL_FILES_SQL = f"""
    SELECT DISTINCT file_key FROM silver.lines
    UNION ALL SELECT file_key FROM ops.files WHERE status IN {LIVE_STATUSES} AND file_key IS NOT NULL"""  # noqa: S608


def clear_state(connection: duckdb.DuckDBPyConnection) -> None:
    """Empty every table of gold's state, before a rebuild from silver."""
    tables = connection.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'gold_state' AND table_name <> 'meta'"
    ).fetchall()
    for (name,) in tables:
        connection.execute(f"DELETE FROM gold_state.{name}")  # noqa: S608 - names from the catalog
    connection.execute("UPDATE gold_state.meta SET enriched = false, dimensions_seen_at = NULL")


def has_enriched_view(connection: duckdb.DuckDBPyConnection) -> bool:
    """Whether enrichment has made silver's enriched view, which the region and category tables group."""
    return bool(
        connection.execute(
            "SELECT 1 FROM duckdb_views() WHERE schema_name = 'silver' AND view_name = 'transactions_enriched'"
        ).fetchall()
    )


# Per dimension: its key columns (matched as the enriched view matches them), the values gold's enriched tables
# depend on, and how a changed key finds the state's files that hold it.
_DIMENSIONS = {
    "rates": (
        ("currency", "invoice_date"),
        ("usd", "eur"),
        """SELECT g.file_key FROM gold_state.enriched_invoices AS g JOIN ops.files AS f USING (file_key)
           JOIN gold_changed_rates AS c ON c.currency = f.currency AND c.invoice_date = g.invoice_date""",
    ),
    "countries": (
        ("country",),
        ("continent", "region", "subregion"),
        "SELECT g.file_key FROM gold_state.enriched_invoices AS g JOIN gold_changed_countries AS c USING (country)",
    ),
    "products": (
        ("stock_code", "description"),
        ("category",),
        """SELECT p.file_key FROM gold_state.products AS p JOIN gold_changed_products AS c
           ON c.stock_code = p.stock_code AND c.description IS NOT DISTINCT FROM p.description""",
    ),
}


def stale_enriched_files_sql(connection: duckdb.DuckDBPyConnection) -> str:
    """Find the dimension rows enriched since the state last looked whose values differ from the ones the state
    was built with (`gold_changed_<dimension>`), remember their new values, and return a query of the files
    holding one of their keys: those files' enriched state is out of date."""
    seen_at = scalar(connection, "SELECT dimensions_seen_at FROM gold_state.meta")
    for name, (keys, values, _) in _DIMENSIONS.items():
        matched = " AND ".join(f"s.{key} IS NOT DISTINCT FROM d.{key}" for key in keys)
        differs = " OR ".join(f"s.{value} IS DISTINCT FROM d.{value}" for value in values)
        columns = ", ".join(f"d.{column}" for column in (*keys, *values))
        connection.execute(
            f"""CREATE OR REPLACE TEMP TABLE gold_changed_{name} AS
                SELECT {columns} FROM enrichment.{name} AS d
                WHERE (?::TIMESTAMP IS NULL OR d.enriched_at >= ?)
                  AND NOT EXISTS (SELECT 1 FROM gold_state.seen_{name} AS s
                                  WHERE {matched} AND NOT ({differs}))""",  # noqa: S608 - constants
            [seen_at, seen_at],
        )
        connection.execute(
            f"""DELETE FROM gold_state.seen_{name} AS s USING gold_changed_{name} AS d
                WHERE {matched}"""  # noqa: S608 - constants
        )
        connection.execute(f"INSERT INTO gold_state.seen_{name} SELECT * FROM gold_changed_{name}")  # noqa: S608
    return " UNION ALL ".join(f"({finder})" for _, _, finder in _DIMENSIONS.values())


def reset_enriched_state(connection: duckdb.DuckDBPyConnection) -> None:
    """Empty the enriched state and remember every dimension row as it is now, before building the enriched state
    of every file afresh."""
    for name in (*ENRICHED_STATE, "region_totals", "category_totals", *_SEEN):
        connection.execute(f"DELETE FROM gold_state.{name}")  # noqa: S608 - constant names
    for name, (keys, values, _) in _DIMENSIONS.items():
        connection.execute(
            f"INSERT INTO gold_state.seen_{name} SELECT {', '.join((*keys, *values))} FROM enrichment.{name}"  # noqa: S608
        )


def mark_enriched(connection: duckdb.DuckDBPyConnection, *, enriched: bool) -> None:
    """Record whether the enriched state covers every file, and the newest dimension row it has seen."""
    if not enriched:
        connection.execute("UPDATE gold_state.meta SET enriched = false")
        return
    newest = " UNION ALL ".join(
        f"SELECT max(enriched_at) AS newest FROM enrichment.{name}"  # noqa: S608 - constant names
        for name in _DIMENSIONS
    )
    connection.execute(
        f"UPDATE gold_state.meta SET enriched = true, dimensions_seen_at = (SELECT max(newest) FROM ({newest}))"  # noqa: S608
    )


def number_categories(connection: duckdb.DuckDBPyConnection) -> None:
    """Give every category the enrichment knows (and 'other') a bit of `enriched_invoices.categories`; a number
    once given stays."""
    connection.execute(
        """INSERT INTO gold_state.category_bits
           SELECT category, (SELECT coalesce(max(bit) + 1, 0) FROM gold_state.category_bits)
                            + row_number() OVER (ORDER BY category) - 1
           FROM ((SELECT coalesce(category, 'other') AS category FROM enrichment.products UNION SELECT 'other')
                 EXCEPT SELECT category FROM gold_state.category_bits)"""
    )
    numbered = int(scalar(connection, "SELECT count(*) FROM gold_state.category_bits"))
    if numbered > CATEGORY_BITS:
        raise ValueError(
            f"enrichment knows {numbered} product categories; gold counts invoices per category in "
            f"{CATEGORY_BITS} bits (gold_state.enriched_invoices.categories)"
        )


def enriched_is_complete(connection: duckdb.DuckDBPyConnection) -> bool:
    return bool(scalar(connection, "SELECT enriched FROM gold_state.meta"))
