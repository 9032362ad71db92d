"""Gold's running totals, moved by the change a refresh of some files' state makes.

Sums move by the refreshed files' new rows less their old ones. A distinct count cannot be subtracted that way, so
each count is taken over the rows of the invoices (or customers) a refresh touches, once as they were and once as
they are, and moves by the difference: the other invoices count the same before and after.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from medallion.gold.state import NEW_ROWS, REFRESH

_IN_REFRESH = f"file_key IN (SELECT file_key FROM {REFRESH})"  # noqa: S608 - constant
_NEW = "gold_new"
# A sliced state table's rows that a refresh touches, signed: -1 as they were, +1 as they are.
BY_INVOICE = "gold_by_invoice"
BY_CUSTOMER = "gold_by_customer"
TEMPORARY = (_NEW, BY_INVOICE, BY_CUSTOMER, "gold_delta", "gold_merged")

_MEASURES = ("sales", "cancelled", "sale_rows", "quantity", "rows", "invoices", "customers")
_CONVERTED = ("amount_usd", "amount_eur", "usd_rows", "eur_rows")


@dataclass(frozen=True)
class Totals:
    """A totals table in gold_state: the rows of `state` grouped by `keys` (SQL, each with its alias)."""

    table: str
    state: str
    keys: tuple[str, ...]
    key_names: tuple[str, ...]
    converted: bool = False

    @property
    def measures(self) -> tuple[str, ...]:
        return (*_MEASURES, *(_CONVERTED if self.converted else ()))


BASE_TOTALS = (
    Totals("country_totals", "invoices", ("country",), ("country",)),
    Totals("month_totals", "invoices", ("year", "month"), ("year", "month")),
    Totals("overall_totals", "invoices", ("'all' AS scope",), ("scope",)),
)
ENRICHED_TOTALS = (
    Totals(
        "region_totals",
        "regions",
        (
            "coalesce(continent, 'Unmapped') AS continent",
            "coalesce(region, 'Unmapped') AS region",
            "coalesce(subregion, 'Unmapped') AS subregion",
        ),
        ("continent", "region", "subregion"),
        converted=True,
    ),
    Totals("category_totals", "categories", ("coalesce(category, 'other') AS category",), ("category",), True),
)


def refresh_sliced_state(connection: duckdb.DuckDBPyConnection, state: str) -> None:
    """Replace the refreshed files' rows of a state table with one row per invoice and customer, keeping in
    `BY_INVOICE` and `BY_CUSTOMER` every row of the invoices and customers that changes, signed."""
    connection.execute(f"CREATE OR REPLACE TEMP TABLE {_NEW} AS {NEW_ROWS[state]}")
    for signed, item, present in (
        (BY_INVOICE, "invoice_no", "true"),
        (BY_CUSTOMER, "customer_id", "customer_id IS NOT NULL"),
    ):
        connection.execute(
            f"""CREATE OR REPLACE TEMP TABLE {signed} AS
                WITH touched AS (
                    SELECT * FROM gold_state.{state} WHERE {item} IN (
                        SELECT {item} FROM gold_state.{state} WHERE {_IN_REFRESH} AND {present}
                        UNION SELECT {item} FROM {_NEW} WHERE {present}))
                SELECT -1 AS sign, * FROM touched
                UNION ALL SELECT 1 AS sign, * FROM touched WHERE NOT {_IN_REFRESH}
                UNION ALL SELECT 1 AS sign, * FROM {_NEW} WHERE {present}"""  # noqa: S608 - constants
        )
    _replace_rows(connection, state)


def refresh_state(connection: duckdb.DuckDBPyConnection, state: str) -> None:
    """Replace the refreshed files' rows of a state table that no distinct count reads."""
    connection.execute(f"CREATE OR REPLACE TEMP TABLE {_NEW} AS {NEW_ROWS[state]}")
    _replace_rows(connection, state)


def _replace_rows(connection: duckdb.DuckDBPyConnection, state: str) -> None:
    connection.execute(f"DELETE FROM gold_state.{state} WHERE {_IN_REFRESH}")  # noqa: S608 - constants
    connection.execute(f"INSERT INTO gold_state.{state} BY NAME SELECT * FROM {_NEW}")  # noqa: S608 - constants


def move_totals(connection: duckdb.DuckDBPyConnection, totals: Totals) -> None:
    """Move a totals table by the change in `BY_INVOICE` (sums and invoices) and `BY_CUSTOMER` (customers)."""
    keys = ", ".join(totals.keys)
    converted = (
        """, coalesce(sum(sign * amount_usd), 0) AS amount_usd, coalesce(sum(sign * amount_eur), 0) AS amount_eur,
           coalesce(sum(sign * usd_rows), 0) AS usd_rows, coalesce(sum(sign * eur_rows), 0) AS eur_rows"""
        if totals.converted
        else ""
    )
    connection.execute(
        f"""CREATE OR REPLACE TEMP TABLE gold_delta AS
            SELECT {keys},
                   coalesce(sum(sign * amount) FILTER (WHERE NOT is_cancellation), 0) AS sales,
                   coalesce(sum(sign * amount) FILTER (WHERE is_cancellation), 0) AS cancelled,
                   coalesce(sum(sign * rows) FILTER (WHERE NOT is_cancellation), 0) AS sale_rows,
                   coalesce(sum(sign * quantity), 0) AS quantity, coalesce(sum(sign * rows), 0) AS rows,
                   count(DISTINCT invoice_no) FILTER (WHERE sign > 0 AND NOT is_cancellation)
                   - count(DISTINCT invoice_no) FILTER (WHERE sign < 0 AND NOT is_cancellation) AS invoices,
                   0 AS customers {converted}
            FROM {BY_INVOICE} GROUP BY ALL
            UNION ALL BY NAME
            SELECT {keys}, count(DISTINCT customer_id) FILTER (WHERE sign > 0)
                           - count(DISTINCT customer_id) FILTER (WHERE sign < 0) AS customers
            FROM {BY_CUSTOMER} GROUP BY ALL"""  # noqa: S608 - constants
    )
    merge_totals(connection, totals.table, totals.key_names, totals.measures)


def merge_totals(
    connection: duckdb.DuckDBPyConnection, table: str, keys: tuple[str, ...], measures: tuple[str, ...]
) -> None:
    """Add `gold_delta`'s measures (NULL counting as nothing) to the rows of `table` with the same keys, dropping
    rows left with no silver rows."""
    key_list = ", ".join(keys)
    matched = " AND ".join(f"t.{key} = d.{key}" for key in keys)
    sums = ", ".join(f"coalesce(sum({measure}), 0) AS {measure}" for measure in measures)
    connection.execute(
        f"""CREATE OR REPLACE TEMP TABLE gold_merged AS
            SELECT {key_list}, {sums}
            FROM (SELECT t.* FROM gold_state.{table} AS t
                  WHERE EXISTS (SELECT 1 FROM gold_delta AS d WHERE {matched})
                  UNION ALL BY NAME SELECT * FROM gold_delta)
            GROUP BY {key_list}"""  # noqa: S608 - constants
    )
    connection.execute(
        f"""DELETE FROM gold_state.{table} AS t USING (SELECT DISTINCT {key_list} FROM gold_delta) AS d
            WHERE {matched}"""  # noqa: S608 - constants
    )
    connection.execute(
        f"INSERT INTO gold_state.{table} BY NAME SELECT * FROM gold_merged WHERE rows > 0"  # noqa: S608 - constants
    )


def move_customer_totals(connection: duckdb.DuckDBPyConnection) -> None:
    """Recompute the totals of every customer `BY_CUSTOMER` touches from their invoices as they are now."""
    connection.execute(
        f"""DELETE FROM gold_state.customer_totals
            WHERE customer_id IN (SELECT customer_id FROM {BY_CUSTOMER})"""  # noqa: S608 - constants
    )
    # The country on most of a customer's rows, the smallest on a tie, so a table built twice reads the same.
    connection.execute(
        f"""INSERT INTO gold_state.customer_totals BY NAME
            WITH current AS (SELECT * FROM {BY_CUSTOMER} WHERE sign > 0),
            countries AS (
                SELECT customer_id, first(country ORDER BY rows DESC, country) AS country
                FROM (SELECT customer_id, country, sum(rows) AS rows FROM current GROUP BY ALL)
                GROUP BY customer_id)
            SELECT * FROM (
                SELECT customer_id, sum(amount) AS amount,
                       count(DISTINCT invoice_no) FILTER (WHERE NOT is_cancellation) AS invoices,
                       sum(quantity) AS quantity, min(first_ts) AS first_purchase, max(last_ts) AS last_purchase
                FROM current GROUP BY customer_id)
            JOIN countries USING (customer_id)"""  # noqa: S608 - constants
    )


def refresh_products(connection: duckdb.DuckDBPyConnection) -> None:
    """Replace the refreshed files' product rows and move each product's totals and description counts."""
    connection.execute(f"CREATE OR REPLACE TEMP TABLE {_NEW} AS {NEW_ROWS['products']}")
    changes = f"""
        SELECT stock_code, description, amount, quantity, rows FROM {_NEW}
        UNION ALL
        SELECT stock_code, description, -amount, -quantity, -rows FROM gold_state.products
        WHERE {_IN_REFRESH}"""  # noqa: S608 - constants
    connection.execute(
        f"""CREATE OR REPLACE TEMP TABLE gold_delta AS
            SELECT stock_code, sum(amount) AS amount, sum(quantity) AS quantity, sum(rows) AS rows
            FROM ({changes}) GROUP BY stock_code"""  # noqa: S608 - constants
    )
    merge_totals(connection, "product_totals", ("stock_code",), ("amount", "quantity", "rows"))
    connection.execute(
        f"""CREATE OR REPLACE TEMP TABLE gold_delta AS
            SELECT stock_code, description, sum(rows) AS rows
            FROM ({changes}) WHERE description IS NOT NULL GROUP BY ALL"""  # noqa: S608 - constants
    )
    merge_totals(connection, "description_totals", ("stock_code", "description"), ("rows",))
    _replace_rows(connection, "products")
