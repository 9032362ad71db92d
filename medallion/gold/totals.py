"""Gold's running totals, moved by the change a refresh of some files' state makes.

Sums move by the refreshed files' new rows less their old ones. A distinct count cannot be subtracted that way, so
each count is taken over the rows of the invoices (or customers) a refresh touches, once as they were and once as
they are, and moves by the difference: the other invoices count the same before and after.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from medallion.gold.state import IN_REFRESH, Selection, new_rows

_NEW = "gold_new"
_NEW_SUMS = "gold_new_sums"
# A sliced state table's rows that a refresh touches, signed: -1 as they were, +1 as they are.
BY_INVOICE = "gold_by_invoice"
BY_CUSTOMER = "gold_by_customer"
TEMPORARY_VIEWS = (BY_INVOICE, BY_CUSTOMER)
TEMPORARY_TABLES = (_NEW, _NEW_SUMS, f"{BY_INVOICE}_before", f"{BY_CUSTOMER}_before")

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
REGION_TOTALS = Totals(
    "region_totals",
    "enriched_invoices",
    (
        "coalesce(continent, 'Unmapped') AS continent",
        "coalesce(region, 'Unmapped') AS region",
        "coalesce(subregion, 'Unmapped') AS subregion",
    ),
    ("continent", "region", "subregion"),
    converted=True,
)


def refresh_sliced_state(connection: duckdb.DuckDBPyConnection, state: str, lines: Selection) -> None:
    """Replace the refreshed files' rows of a state table by rows of `lines`; `BY_INVOICE` and `BY_CUSTOMER` then
    show every row of the invoices and customers that changes, signed."""
    _new_rows(connection, state, lines)
    for signed, item, present in (
        (BY_INVOICE, "invoice_no", "true"),
        (BY_CUSTOMER, "customer_id", "customer_id IS NOT NULL"),
    ):
        # The rows as they were are kept before the state changes; the rows as they are come from them and the
        # new rows, so neither the state nor the new rows are copied again. The rows are found by their ids in a
        # scan of one column, and only they are read whole: the state holds every invoice of the warehouse.
        connection.execute(
            f"""CREATE OR REPLACE TEMP TABLE {signed}_before AS
                SELECT * FROM gold_state.{state} WHERE rowid IN (
                    SELECT rowid FROM gold_state.{state} WHERE {item} IN (
                        SELECT {item} FROM gold_state.{state} WHERE {IN_REFRESH} AND {present}
                        UNION SELECT {item} FROM {_NEW} WHERE {present}))"""  # noqa: S608 - constants
        )
        connection.execute(
            f"""CREATE OR REPLACE TEMP VIEW {signed} AS
                SELECT -1 AS sign, * FROM {signed}_before
                UNION ALL BY NAME SELECT 1 AS sign, * FROM {signed}_before WHERE NOT {IN_REFRESH}
                UNION ALL BY NAME SELECT 1 AS sign, * FROM {_NEW} WHERE {present}"""  # noqa: S608 - constants
        )
    _replace_rows(connection, state)


def refresh_state(connection: duckdb.DuckDBPyConnection, state: str, lines: Selection) -> None:
    """Replace the refreshed files' rows of a state table that no distinct count reads by rows of `lines`."""
    _new_rows(connection, state, lines)
    _replace_rows(connection, state)


def _new_rows(connection: duckdb.DuckDBPyConnection, state: str, lines: Selection, into: str = _NEW) -> None:
    sql, parameters = new_rows(state, lines)
    connection.execute(f"CREATE OR REPLACE TEMP TABLE {into} AS {sql}", parameters)


def _replace_rows(connection: duckdb.DuckDBPyConnection, state: str, new: str = _NEW) -> None:
    connection.execute(f"DELETE FROM gold_state.{state} WHERE {IN_REFRESH}")  # noqa: S608 - constants
    connection.execute(f"INSERT INTO gold_state.{state} BY NAME SELECT * FROM {new}")  # noqa: S608 - constants


def move_totals(connection: duckdb.DuckDBPyConnection, totals: Totals) -> None:
    """Move a totals table by the change in `BY_INVOICE` (sums and invoices) and `BY_CUSTOMER` (customers)."""
    keys = ", ".join(totals.keys)
    converted = (
        """, sum(sign * amount_usd) AS amount_usd, sum(sign * amount_eur) AS amount_eur,
           sum(sign * usd_rows) AS usd_rows, sum(sign * eur_rows) AS eur_rows"""
        if totals.converted
        else ""
    )
    names = ", ".join(totals.key_names)
    # Each distinct count over the distinct pairs of group and item, signed: faster than DuckDB's per-group
    # count(DISTINCT ...) and the same figure.
    changes = f"""
        SELECT {keys},
               sum(sign * amount) FILTER (WHERE NOT is_cancellation) AS sales,
               sum(sign * amount) FILTER (WHERE is_cancellation) AS cancelled,
               sum(sign * rows) FILTER (WHERE NOT is_cancellation) AS sale_rows,
               sum(sign * quantity) AS quantity, sum(sign * rows) AS rows {converted}
        FROM {BY_INVOICE} GROUP BY ALL
        UNION ALL BY NAME
        SELECT {names}, sum(sign) AS invoices
        FROM (SELECT DISTINCT {keys}, sign, invoice_no FROM {BY_INVOICE} WHERE NOT is_cancellation) GROUP BY ALL
        UNION ALL BY NAME
        SELECT {names}, sum(sign) AS customers
        FROM (SELECT DISTINCT {keys}, sign, customer_id FROM {BY_CUSTOMER}) GROUP BY ALL"""  # noqa: S608 - constants
    merge_totals(connection, totals.table, totals.key_names, totals.measures, changes)


def merge_totals(
    connection: duckdb.DuckDBPyConnection,
    table: str,
    keys: tuple[str, ...],
    measures: tuple[str, ...],
    changes: str,
) -> None:
    """Add the `measures` of the rows of the query `changes` (NULL counting as nothing) to the rows of `table`
    with the same `keys`, dropping rows left with no silver rows."""
    key_list = ", ".join(keys)
    sums = ", ".join(f"coalesce(sum({measure}), 0) AS {measure}" for measure in measures)
    added = ", ".join(f"{measure} = t.{measure} + d.{measure}" for measure in measures)
    matched = " AND ".join(f"t.{key} = d.{key}" for key in keys)
    connection.execute(
        f"""MERGE INTO gold_state.{table} AS t
            USING (SELECT {key_list}, {sums} FROM ({changes}) GROUP BY {key_list}) AS d ON {matched}
            WHEN MATCHED AND t.rows + d.rows <= 0 THEN DELETE
            WHEN MATCHED THEN UPDATE SET {added}
            WHEN NOT MATCHED AND d.rows > 0 THEN INSERT BY NAME"""  # noqa: S608 - constants
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


def refresh_products(connection: duckdb.DuckDBPyConnection, lines: Selection) -> None:
    """Replace the refreshed files' product rows by rows of `lines` and move each product's totals and description
    counts."""
    _new_rows(connection, "products", lines)
    changes = f"""
        SELECT stock_code, description, amount, quantity, rows FROM {_NEW}
        UNION ALL
        SELECT stock_code, description, -amount, -quantity, -rows FROM gold_state.products
        WHERE {IN_REFRESH}"""  # noqa: S608 - constants
    merge_totals(connection, "product_totals", ("stock_code",), ("amount", "quantity", "rows"), changes)
    merge_totals(
        connection,
        "description_totals",
        ("stock_code", "description"),
        ("rows",),
        f"SELECT * FROM ({changes}) WHERE description IS NOT NULL",  # noqa: S608 - constants
    )
    _replace_rows(connection, "products")


def move_category_totals(connection: duckdb.DuckDBPyConnection, lines: Selection) -> None:
    """Replace the refreshed files' category sums by those of `lines` and move the category totals: sums by the
    change in the sums, invoices and customers by the change in `BY_INVOICE` and `BY_CUSTOMER` of the enriched
    invoices, whose bits name the categories of each invoice's product lines."""
    _new_rows(connection, "category_sums", lines, into=_NEW_SUMS)
    signed = f"""
        SELECT 1 AS sign, * FROM {_NEW_SUMS}
        UNION ALL BY NAME
        SELECT -1 AS sign, * FROM gold_state.category_sums WHERE {IN_REFRESH}"""  # noqa: S608 - constants
    of_invoices = "JOIN gold_state.category_bits AS b ON (i.categories >> b.bit) & 1 = 1"
    changes = f"""
        SELECT category,
               sum(sign * amount) FILTER (WHERE NOT is_cancellation) AS sales,
               sum(sign * amount) FILTER (WHERE is_cancellation) AS cancelled,
               sum(sign * rows) FILTER (WHERE NOT is_cancellation) AS sale_rows,
               sum(sign * quantity) AS quantity, sum(sign * rows) AS rows,
               sum(sign * amount_usd) AS amount_usd, sum(sign * amount_eur) AS amount_eur,
               sum(sign * usd_rows) AS usd_rows, sum(sign * eur_rows) AS eur_rows
        FROM ({signed}) GROUP BY category
        UNION ALL BY NAME
        SELECT category, sum(sign) AS invoices
        FROM (SELECT DISTINCT b.category, i.sign, i.invoice_no FROM {BY_INVOICE} AS i {of_invoices}
              WHERE NOT i.is_cancellation)
        GROUP BY category
        UNION ALL BY NAME
        SELECT category, sum(sign) AS customers
        FROM (SELECT DISTINCT b.category, i.sign, i.customer_id FROM {BY_CUSTOMER} AS i {of_invoices})
        GROUP BY category"""  # noqa: S608 - constants
    merge_totals(connection, "category_totals", ("category",), (*_MEASURES, *_CONVERTED), changes)
    _replace_rows(connection, "category_sums", _NEW_SUMS)
