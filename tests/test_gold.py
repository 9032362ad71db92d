"""Gold over a real DuckDB warehouse: ties in the most frequent description or country give the same answer on
every build, and revenue does not drift with the order or number of the lines DuckDB adds up."""

from __future__ import annotations

from pathlib import Path

from test_warehouse import warehouse_at

from medallion import gold


def test_a_tie_between_descriptions_or_countries_goes_to_the_smallest(tmp_path: Path) -> None:
    # stock code 85123A: "HEART B" twice and "HEART A" twice; customer 17850: France and Belgium three times each.
    # DuckDB's mode() can give either from one run to the next.
    lines = [
        (1, "536365", "85123A", "HEART B", "France"),
        (2, "536365", "85123A", "HEART A", "Belgium"),
        (3, "536366", "85123A", "HEART B", "France"),
        (4, "536366", "85123A", "HEART A", "Belgium"),
        (5, "536367", "85123A", None, "Belgium"),  # a missing description is no candidate
        (6, "536367", "85123A", None, "France"),
    ]
    with warehouse_at(tmp_path / "w.duckdb") as connection:
        for row_number, invoice, stock, description, country in lines:
            _insert_line(connection, row_number, invoice, stock, description, country)
        gold.publish_gold(connection, top_n=10, vip_percentile=0.8, low_value_percentile=0.2)
        product = connection.execute("SELECT description, invoices FROM gold.top_products").fetchall()
        customer = connection.execute("SELECT country, invoices FROM gold.top_customers").fetchall()
        leftover = connection.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchall()
    assert product == [("HEART A", 3)]
    assert customer == [("Belgium", 3)]
    assert leftover == [(0,)]


def test_revenue_does_not_depend_on_the_order_the_invoices_are_added_in(tmp_path: Path) -> None:
    # Added up one after another as doubles, 1e14 + 0.01 - 1e14 gives 0.015625, which rounds to 0.02; the lines sum
    # to 0.01. (Gold adds up each invoice's lines first; an invoice's own total is a double, exact to the penny below
    # about 1e13.)
    amounts = [("536365", 1e14), ("536367", 0.01), ("C536366", -1e14)]
    with warehouse_at(tmp_path / "w.duckdb") as connection:
        for row_number, (invoice, amount) in enumerate(amounts, start=1):
            _insert_line(connection, row_number, invoice, "85123A", "HEART", "France", line_amount=amount)
        kpis = gold.publish_gold(connection, top_n=10, vip_percentile=0.8, low_value_percentile=0.2)
        tables = [
            connection.execute(f"SELECT net_revenue FROM gold.{name}").fetchall()  # noqa: S608 - constant names
            for name in ("sales_by_country", "sales_by_month", "top_products", "top_customers")
        ]
    assert kpis["net_revenue"] == 0.01
    assert kpis["returns"] == 1e14
    assert tables == [[(0.01,)]] * 4


def test_gold_over_an_empty_silver_counts_zero(tmp_path: Path) -> None:
    with warehouse_at(tmp_path / "w.duckdb") as connection:
        kpis = gold.publish_gold(connection, top_n=10, vip_percentile=0.8, low_value_percentile=0.2)
        products = connection.execute("SELECT count(*) FROM gold.top_products").fetchall()
    assert (kpis["rows"], kpis["orders"], kpis["customers"], kpis["files"], kpis["distinct_products"]) == (
        0,
        0,
        0,
        0,
        0,
    )
    assert kpis["net_revenue"] is None
    assert products == [(0,)]


def _insert_line(
    connection: object,
    row_number: int,
    invoice: str,
    stock: str,
    description: str | None,
    country: str,
    *,
    line_amount: float = 3.0,
) -> None:
    connection.execute(  # type: ignore[attr-defined]
        """INSERT INTO silver.lines BY NAME
           SELECT 1 AS file_key, ? AS row_number, ? AS invoice_no,
                  ? AS stock_code, ? AS description, 2 AS quantity, 1.5 AS unit_price, ? AS line_amount,
                  '17850' AS customer_id, ? AS country, ? AS country_raw,
                  TIMESTAMP '2010-12-01 08:26' AS invoice_ts, false AS is_non_product""",
        [row_number, invoice, stock, description, line_amount, country, country],
    )
