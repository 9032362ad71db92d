"""Gold over a real DuckDB warehouse: ties in the most frequent description or country give the same answer on
every build."""

from __future__ import annotations

from pathlib import Path

from medallion import gold, warehouse


def test_a_tie_between_descriptions_or_countries_goes_to_the_smallest(tmp_path: Path) -> None:
    # stock code 85123A: "HEART B" twice and "HEART A" twice; customer 17850: France and Belgium three times each.
    # DuckDB's mode() gave "HEART B" and France here, and can give either from one run to the next.
    lines = [
        (1, "536365", "85123A", "HEART B", "France"),
        (2, "536365", "85123A", "HEART A", "Belgium"),
        (3, "536366", "85123A", "HEART B", "France"),
        (4, "536366", "85123A", "HEART A", "Belgium"),
        (5, "536367", "85123A", None, "Belgium"),  # a missing description is no candidate
        (6, "536367", "85123A", None, "France"),
    ]
    with warehouse.open_warehouse(tmp_path / "w.duckdb") as connection:
        for row_number, invoice, stock, description, country in lines:
            connection.execute(
                """INSERT INTO silver.transactions BY NAME
                   SELECT ? AS file_id, ? AS row_number, 'sales.csv' AS source_file, ? AS invoice_no,
                          ? AS stock_code, ? AS description, 2 AS quantity, 1.5 AS unit_price, 3.0 AS line_amount,
                          'GBP' AS currency, '17850' AS customer_id, ? AS country, ? AS country_raw,
                          TIMESTAMP '2010-12-01 08:26' AS invoice_ts, DATE '2010-12-01' AS invoice_date,
                          2010 AS year, 12 AS month, false AS is_cancellation, false AS is_bad_debt,
                          false AS is_non_product""",
                ["f" * 64, row_number, invoice, stock, description, country, country],
            )
        gold.publish_gold(connection, top_n=10, vip_percentile=0.8, low_value_percentile=0.2)
        product = connection.execute("SELECT description, invoices FROM gold.top_products").fetchall()
        customer = connection.execute("SELECT country, invoices FROM gold.top_customers").fetchall()
        leftover = connection.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [gold.CUSTOMER_TOTALS]
        ).fetchall()
    assert product == [("HEART A", 3)]
    assert customer == [("Belgium", 3)]
    assert leftover == [(0,)]
