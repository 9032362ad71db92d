"""Gold tables computed in DuckDB from silver, published in one transaction and exported to Parquet."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import duckdb

from medallion.warehouse.schema import LINES_VIEW
from medallion.warehouse.sql import first_row, query_frame, transaction

# Bad-debt adjustments are accounting entries, not sales: gold leaves them out. Returns are cancellation lines.
_REVENUE = """round(fsum(line_amount) FILTER (WHERE NOT is_cancellation), 2) AS gross_revenue,
    round(coalesce(-fsum(line_amount) FILTER (WHERE is_cancellation), 0), 2) AS returns,
    round(fsum(line_amount), 2) AS net_revenue"""
# Distinct invoices leave cancellations out; distinct customers leave guests out (count skips NULL).
_INVOICE_COUNT = "count(DISTINCT invoice_no) FILTER (WHERE NOT is_cancellation)"
_CUSTOMER_COUNT = "count(DISTINCT customer_id)"
# The measures of the enriched tables, which group silver's rows through a view; the country, month and customer
# tables group INVOICES instead, which is faster.
_MEASURES = f"""
    {_REVENUE},
    {_INVOICE_COUNT} AS invoices,
    {_CUSTOMER_COUNT} AS customers,
    sum(quantity)::BIGINT AS quantity,
    count(*) AS rows"""


def _distinct_counts(key: str, where: str) -> str:
    """Per `key` of silver's rows matching `where`: distinct invoices (cancellations left out) and distinct
    customers (guests left out). `key` must be a column silver declares NOT NULL: a NULL key would find no partner
    in the join. Each count is its own DISTINCT over the pairs of key and value, joined back, which is faster than
    DuckDB's per-group `count(DISTINCT ...)` over many keys and gives the same figures."""
    return f"""
        WITH sales AS NOT MATERIALIZED (SELECT * FROM {LINES_VIEW} WHERE {where}),
        invoices AS (
            SELECT {key}, count(*) AS invoices
            FROM (SELECT DISTINCT {key}, invoice_no FROM sales WHERE NOT is_cancellation) GROUP BY {key}),
        customers AS (
            SELECT {key}, count(*) AS customers
            FROM (SELECT DISTINCT {key}, customer_id FROM sales WHERE customer_id IS NOT NULL) GROUP BY {key})
        SELECT * FROM invoices FULL JOIN customers USING ({key})"""  # noqa: S608


def _most_frequent(key: str, column: str, where: str, *, source: str = LINES_VIEW, rows: str = "count(*)") -> str:
    """Per `key`, the value of `column` on most of `source`'s rows matching `where` (`rows` counts them), the
    smallest on a tie; NULL values are left out. DuckDB's `mode()` breaks ties by whichever thread saw a value
    first, so a table built twice from the same rows could differ."""
    return f"""
        SELECT {key}, first({column} ORDER BY rows DESC, {column}) AS {column}
        FROM (SELECT {key}, {column}, {rows} AS rows FROM {source}
              WHERE {where} AND {column} IS NOT NULL GROUP BY ALL)
        GROUP BY {key}"""  # noqa: S608 - built from constant fragments only


# Silver's sales rows (bad debts left out) summed per invoice, with everything the country, month, customer and KPI
# tables group by: those tables then read one row per invoice instead of one per line. Their counts are the same as
# over the lines; their revenue is the sum of the invoices' totals, each a double (exact to the penny below about
# 1e13). Made once per publication.
INVOICES = "gold_invoices"
INVOICES_SQL = f"""
    CREATE OR REPLACE TEMP TABLE {INVOICES} AS
    SELECT invoice_no, customer_id, country, year, month, is_cancellation,
           fsum(line_amount) AS line_amount, sum(quantity) AS quantity, count(*) AS rows,
           min(invoice_ts) AS first_ts, max(invoice_ts) AS last_ts
    FROM {LINES_VIEW} WHERE NOT is_bad_debt
    GROUP BY ALL"""  # noqa: S608 - built from constant fragments only


def _by_invoices(keys: str) -> str:
    """The sales of `INVOICES` grouped by `keys`: revenue, distinct invoices (cancellations left out), distinct
    customers (guests left out), quantity and silver rows."""
    return f"""
        SELECT {keys}, {_REVENUE},
               {_INVOICE_COUNT} AS invoices, {_CUSTOMER_COUNT} AS customers, sum(quantity)::BIGINT AS quantity,
               sum(rows)::BIGINT AS rows
        FROM {INVOICES} GROUP BY {keys}"""  # noqa: S608 - built from constant fragments only


_PRODUCT_SUMS = """round(fsum(line_amount), 2) AS net_revenue, sum(quantity)::BIGINT AS quantity"""
_PRODUCTS = "NOT is_bad_debt AND NOT is_non_product"
# Only inside top_products, whose CTE `ranked` holds the top N products.
_TOP_PRODUCTS = f"{_PRODUCTS} AND stock_code IN (SELECT stock_code FROM ranked)"  # noqa: S608 - constants
_BY_INVOICES_COLUMNS = "gross_revenue, returns, net_revenue, invoices, customers, quantity, rows"

# Each customer's totals, which top_customers and customer_segments share: made once per publication.
CUSTOMER_TOTALS = "gold_customer_totals"
_CUSTOMER_COUNTRY = _most_frequent(
    "customer_id", "country", "customer_id IS NOT NULL", source=INVOICES, rows="sum(rows)"
)
CUSTOMER_TOTALS_SQL = f"""
    CREATE OR REPLACE TEMP TABLE {CUSTOMER_TOTALS} AS
    SELECT customer_id, country, net_revenue, invoices, quantity, first_purchase, last_purchase
    FROM (SELECT customer_id, round(fsum(line_amount), 2) AS net_revenue, {_INVOICE_COUNT} AS invoices,
                 sum(quantity)::BIGINT AS quantity, min(first_ts) AS first_purchase, max(last_ts) AS last_purchase
          FROM {INVOICES} WHERE customer_id IS NOT NULL GROUP BY customer_id)
         LEFT JOIN ({_CUSTOMER_COUNTRY}) USING (customer_id)"""  # noqa: S608

GOLD_SQL: dict[str, str] = {
    "sales_by_country": f"""
        CREATE OR REPLACE TABLE gold.sales_by_country AS
        SELECT country, {_BY_INVOICES_COLUMNS}
        FROM ({_by_invoices("country")})
        ORDER BY net_revenue DESC, country""",  # noqa: S608 - built from constant fragments only
    "sales_by_month": f"""
        CREATE OR REPLACE TABLE gold.sales_by_month AS
        SELECT year, month, make_date(year, month, 1) AS month_start, {_BY_INVOICES_COLUMNS}
        FROM ({_by_invoices("year, month")})
        ORDER BY year, month""",  # noqa: S608 - built from constant fragments only
    # Only the top products' rows are searched for distinct invoices and customers: ranking needs only each
    # product's sums, and the distinct (product, invoice) pairs of every product are most of this table's cost.
    "top_products": f"""
        CREATE OR REPLACE TABLE gold.top_products AS
        WITH ranked AS (
            SELECT row_number() OVER (ORDER BY net_revenue DESC, stock_code) AS rank, *
            FROM (SELECT stock_code, {_PRODUCT_SUMS} FROM {LINES_VIEW} WHERE {_PRODUCTS} GROUP BY stock_code)
            QUALIFY rank <= $top_n)
        SELECT rank, stock_code, description, net_revenue, quantity, coalesce(invoices, 0) AS invoices,
               coalesce(customers, 0) AS customers
        FROM ranked
             LEFT JOIN ({_distinct_counts("stock_code", _TOP_PRODUCTS)}) USING (stock_code)
             LEFT JOIN ({_most_frequent("stock_code", "description", _TOP_PRODUCTS)}) USING (stock_code)
        ORDER BY rank""",  # noqa: S608 - built from constant fragments only
    "top_customers": f"""
        CREATE OR REPLACE TABLE gold.top_customers AS
        SELECT row_number() OVER (ORDER BY net_revenue DESC, customer_id) AS rank, customer_id, country,
               net_revenue, invoices, quantity, first_purchase, last_purchase
        FROM {CUSTOMER_TOTALS}
        ORDER BY rank LIMIT $top_n""",  # noqa: S608 - built from constant fragments only
    "customer_segments": f"""
        CREATE OR REPLACE TABLE gold.customer_segments AS
        WITH customers AS (
            SELECT customer_id, net_revenue, invoices AS frequency, last_purchase::DATE AS last_purchase
            FROM {CUSTOMER_TOTALS}),
        bounds AS (
            SELECT quantile_cont(net_revenue, $vip) AS vip_above,
                   quantile_cont(net_revenue, $low) AS low_below,
                   (SELECT max(invoice_date) FROM {LINES_VIEW}) AS as_of
            FROM customers),
        scored AS (
            SELECT c.*, date_diff('day', c.last_purchase, b.as_of) AS recency_days,
                   ntile(5) OVER (ORDER BY date_diff('day', c.last_purchase, b.as_of) DESC, c.customer_id)
                       AS recency_score,
                   ntile(5) OVER (ORDER BY c.frequency, c.customer_id) AS frequency_score,
                   ntile(5) OVER (ORDER BY c.net_revenue, c.customer_id) AS monetary_score,
                   CASE WHEN c.net_revenue > b.vip_above THEN 'VIP'
                        WHEN c.net_revenue < b.low_below THEN 'Low Value'
                        ELSE 'Regular' END AS segment,
                   b.vip_above, b.low_below
            FROM customers c CROSS JOIN bounds b)
        SELECT customer_id, net_revenue, frequency, last_purchase, recency_days,
               recency_score, frequency_score, monetary_score,
               concat(recency_score, frequency_score, monetary_score) AS rfm_score,
               segment, vip_above AS vip_threshold, low_below AS low_value_threshold
        FROM scored ORDER BY net_revenue DESC, customer_id""",  # noqa: S608 - built from constant fragments only
    "kpis": f"""
        CREATE OR REPLACE TABLE gold.kpis AS
        WITH totals AS (
            SELECT {_REVENUE},
                   fsum(line_amount) AS net_exact,
                   min(first_ts) AS first_invoice, max(last_ts) AS last_invoice,
                   coalesce(sum(rows), 0)::BIGINT AS rows, {_INVOICE_COUNT} AS orders, {_CUSTOMER_COUNT} AS customers
            FROM {INVOICES}),
        -- Not a key of INVOICES: grouping the invoices by the file as well costs more than this count.
        files AS (SELECT count(DISTINCT file_key) AS files FROM {LINES_VIEW} WHERE NOT is_bad_debt),
        products AS (
            SELECT count(*) AS distinct_products
            FROM (SELECT DISTINCT stock_code FROM {LINES_VIEW} WHERE {_PRODUCTS}))
        SELECT t.net_revenue, t.gross_revenue, t.returns, t.orders, t.customers,
               round(t.net_exact / nullif(t.orders, 0), 2) AS average_order_value,
               p.distinct_products, t.first_invoice, t.last_invoice, t.rows, f.files,
               now()::TIMESTAMP AS refreshed_at
        FROM totals t, products p, files f""",  # noqa: S608 - built from constant fragments
}
# Built when enrichment has made silver.transactions_enriched: revenue by region and by product category.
ENRICHED_GOLD_SQL: dict[str, str] = {
    "sales_by_region": f"""
        CREATE OR REPLACE TABLE gold.sales_by_region AS
        SELECT coalesce(country_continent, 'Unmapped') AS continent, coalesce(country_region, 'Unmapped') AS region,
               coalesce(country_subregion, 'Unmapped') AS subregion, {_MEASURES},
               round(fsum(amount_usd), 2) AS net_revenue_usd, round(fsum(amount_eur), 2) AS net_revenue_eur
        FROM silver.transactions_enriched WHERE NOT is_bad_debt
        GROUP BY ALL ORDER BY net_revenue DESC""",  # noqa: S608 - built from constant fragments only
    "sales_by_category": f"""
        CREATE OR REPLACE TABLE gold.sales_by_category AS
        SELECT coalesce(product_category, 'other') AS category, {_MEASURES},
               round(fsum(amount_usd), 2) AS net_revenue_usd, round(fsum(amount_eur), 2) AS net_revenue_eur
        FROM silver.transactions_enriched WHERE NOT is_bad_debt AND NOT is_non_product
        GROUP BY ALL ORDER BY net_revenue DESC""",  # noqa: S608 - built from constant fragments only
}
GOLD_TABLES: tuple[str, ...] = (*GOLD_SQL, *ENRICHED_GOLD_SQL)
_SELECT_GOLD = {name: f"SELECT * FROM gold.{name}" for name in GOLD_TABLES}  # noqa: S608 - names from the SQL above


def publish_gold(
    connection: duckdb.DuckDBPyConnection,
    *,
    top_n: int,
    vip_percentile: float,
    low_value_percentile: float,
) -> dict[str, Any]:
    """Rebuild every gold table from silver in one transaction and return the KPI row."""
    parameters = {"top_n": top_n, "vip": vip_percentile, "low": low_value_percentile}
    enriched = bool(
        connection.execute(
            """SELECT 1 FROM duckdb_views() WHERE schema_name = 'silver' AND view_name = 'transactions_enriched'"""
        ).fetchall()
    )
    statements = gold_statements(enriched=enriched)
    with transaction(connection):
        for sql in statements:
            used = {name: value for name, value in parameters.items() if f"${name}" in sql}
            connection.execute(sql, used)
    return gold_kpis(connection)


def gold_statements(*, enriched: bool) -> list[str]:
    """Every statement that builds the gold tables from silver, in order; the enriched tables when `enriched`."""
    return [
        INVOICES_SQL,
        CUSTOMER_TOTALS_SQL,
        *GOLD_SQL.values(),
        *(ENRICHED_GOLD_SQL.values() if enriched else ()),
        f"DROP TABLE {CUSTOMER_TOTALS}",
        f"DROP TABLE {INVOICES}",
    ]


def gold_kpis(connection: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    return first_row(connection, _SELECT_GOLD["kpis"]) or {}


def export_gold(connection: duckdb.DuckDBPyConnection, target_dir: Path) -> list[Path]:
    """Write each gold table to `<table>.parquet`, through a temporary name and an atomic rename."""
    target_dir.mkdir(parents=True, exist_ok=True)
    written = []
    present = {
        row[0]
        for row in connection.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'gold'").fetchall()
    }
    for name in (name for name in GOLD_TABLES if name in present):
        target = target_dir / f"{name}.parquet"
        temporary = target_dir / f".{name}.{os.getpid()}.parquet.tmp"
        query_frame(connection, _SELECT_GOLD[name]).write_parquet(temporary)
        os.replace(temporary, target)
        written.append(target)
    return written
