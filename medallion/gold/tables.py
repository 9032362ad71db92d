"""The gold tables, each read from gold's running totals (a few rows per country, month, customer or product)."""

from __future__ import annotations

from typing import Any

import duckdb

from medallion.warehouse.sql import first_row

# Returns are cancellation lines; a group with no sales has no gross revenue, as a sum over no rows has none.
_REVENUE = """CASE WHEN sale_rows > 0 THEN sales::DOUBLE END AS gross_revenue, (-cancelled)::DOUBLE AS returns,
    (sales + cancelled)::DOUBLE AS net_revenue"""
_MEASURES = f"{_REVENUE}, invoices, customers, quantity::BIGINT AS quantity, rows"
_CONVERTED = """round(CASE WHEN usd_rows > 0 THEN amount_usd END, 2)::DOUBLE AS net_revenue_usd,
    round(CASE WHEN eur_rows > 0 THEN amount_eur END, 2)::DOUBLE AS net_revenue_eur"""

GOLD_SQL: dict[str, str] = {
    "sales_by_country": f"""
        CREATE OR REPLACE TABLE gold.sales_by_country AS
        SELECT country, {_MEASURES} FROM gold_state.country_totals
        ORDER BY net_revenue DESC, country""",  # noqa: S608 - built from constant fragments only
    "sales_by_month": f"""
        CREATE OR REPLACE TABLE gold.sales_by_month AS
        SELECT year, month, make_date(year, month, 1) AS month_start, {_MEASURES} FROM gold_state.month_totals
        ORDER BY year, month""",  # noqa: S608 - built from constant fragments only
    # Ranking needs only each product's sums; the top products' distinct invoices and customers are kept for them
    # alone (medallion/gold/top_products.py).
    "top_products": """
        CREATE OR REPLACE TABLE gold.top_products AS
        WITH ranked AS (
            SELECT row_number() OVER (ORDER BY amount DESC, stock_code) AS rank, stock_code,
                   amount::DOUBLE AS net_revenue, quantity::BIGINT AS quantity
            FROM gold_state.product_totals QUALIFY rank <= $top_n),
        -- The description on most of the product's rows, the smallest on a tie, so two builds read the same.
        descriptions AS (
            SELECT stock_code, first(description ORDER BY rows DESC, description) AS description
            FROM gold_state.description_totals WHERE stock_code IN (SELECT stock_code FROM ranked)
            GROUP BY stock_code)
        SELECT rank, stock_code, description, net_revenue, quantity, coalesce(c.invoices, 0) AS invoices,
               coalesce(c.customers, 0) AS customers
        FROM ranked LEFT JOIN gold_state.top_product_counts AS c USING (stock_code)
             LEFT JOIN descriptions USING (stock_code)
        ORDER BY rank""",
    "top_customers": """
        CREATE OR REPLACE TABLE gold.top_customers AS
        SELECT row_number() OVER (ORDER BY amount DESC, customer_id) AS rank, customer_id, country,
               amount::DOUBLE AS net_revenue, invoices, quantity::BIGINT AS quantity, first_purchase, last_purchase
        FROM (SELECT * FROM gold_state.customer_totals ORDER BY amount DESC, customer_id LIMIT $top_n)
        ORDER BY rank""",
    "customer_segments": """
        CREATE OR REPLACE TABLE gold.customer_segments AS
        -- Read from the state twice rather than materialised: every customer of the warehouse is here.
        WITH customers AS NOT MATERIALIZED (
            SELECT customer_id, amount::DOUBLE AS net_revenue, invoices AS frequency,
                   last_purchase::DATE AS last_purchase
            FROM gold_state.customer_totals),
        bounds AS (
            SELECT quantile_cont(net_revenue, $vip) AS vip_above,
                   quantile_cont(net_revenue, $low) AS low_below,
                   (SELECT max(last_date) FROM gold_state.files) AS as_of
            FROM customers),
        scored AS (
            SELECT c.*, date_diff('day', c.last_purchase, b.as_of) AS recency_days,
                   -- The most recent purchase last: the same order as recency from the highest, a plain date.
                   ntile(5) OVER (ORDER BY c.last_purchase, c.customer_id) AS recency_score,
                   ntile(5) OVER (ORDER BY c.frequency, c.customer_id) AS frequency_score,
                   ntile(5) OVER (ORDER BY c.net_revenue, c.customer_id) AS monetary_score,
                   CASE WHEN c.net_revenue > b.vip_above THEN 'VIP'
                        WHEN c.net_revenue < b.low_below THEN 'Low Value'
                        ELSE 'Regular' END AS segment,
                   b.vip_above, b.low_below
            FROM customers c CROSS JOIN bounds b)
        SELECT customer_id, net_revenue, frequency, last_purchase, recency_days,
               recency_score, frequency_score, monetary_score,
               -- The three digits, each score being 1 to 5.
               (recency_score * 100 + frequency_score * 10 + monetary_score)::VARCHAR AS rfm_score,
               segment, vip_above AS vip_threshold, low_below AS low_value_threshold
        FROM scored ORDER BY net_revenue DESC, customer_id""",
    "kpis": """
        CREATE OR REPLACE TABLE gold.kpis AS
        WITH files AS (
            SELECT count(*) FILTER (WHERE sale_rows > 0) AS files, min(first_ts) AS first_invoice,
                   max(last_ts) AS last_invoice
            FROM gold_state.files),
        products AS (SELECT count(*) AS distinct_products FROM gold_state.product_totals)
        SELECT (t.sales + t.cancelled)::DOUBLE AS net_revenue,
               CASE WHEN t.sale_rows > 0 THEN t.sales::DOUBLE END AS gross_revenue,
               coalesce(-t.cancelled, 0)::DOUBLE AS returns, coalesce(t.invoices, 0) AS orders,
               coalesce(t.customers, 0) AS customers,
               round((t.sales + t.cancelled)::DOUBLE / nullif(t.invoices, 0), 2) AS average_order_value,
               p.distinct_products, f.first_invoice, f.last_invoice, coalesce(t.rows, 0)::BIGINT AS rows, f.files,
               now()::TIMESTAMP AS refreshed_at
        FROM files f CROSS JOIN products p LEFT JOIN gold_state.overall_totals t ON true""",
}
# Built when enrichment has made silver.transactions_enriched: revenue by region and by product category.
ENRICHED_GOLD_SQL: dict[str, str] = {
    "sales_by_region": f"""
        CREATE OR REPLACE TABLE gold.sales_by_region AS
        SELECT continent, region, subregion, {_MEASURES}, {_CONVERTED} FROM gold_state.region_totals
        ORDER BY net_revenue DESC, continent, region, subregion""",  # noqa: S608 - constant fragments only
    "sales_by_category": f"""
        CREATE OR REPLACE TABLE gold.sales_by_category AS
        SELECT category, {_MEASURES}, {_CONVERTED} FROM gold_state.category_totals
        ORDER BY net_revenue DESC, category""",  # noqa: S608 - constant fragments only
}
GOLD_TABLES: tuple[str, ...] = (*GOLD_SQL, *ENRICHED_GOLD_SQL)


def publish_tables(connection: duckdb.DuckDBPyConnection, parameters: dict[str, Any], *, enriched: bool) -> None:
    """Rewrite every gold table from the totals; the enriched ones when `enriched`."""
    for sql in (*GOLD_SQL.values(), *(ENRICHED_GOLD_SQL.values() if enriched else ())):
        used = {name: value for name, value in parameters.items() if f"${name}" in sql}
        connection.execute(sql, used)


def gold_kpis(connection: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """The row of gold.kpis by column name."""
    return first_row(connection, "SELECT * FROM gold.kpis") or {}
