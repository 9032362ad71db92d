"""The warehouse's tables and views, and the numbered migrations that bring a warehouse to them.

`migrate` applies, once each and in order, the migrations a warehouse has not recorded in `ops.schema_version`;
a change of schema is a new migration at the end of MIGRATIONS, small enough to delete when no warehouse that
needs it remains.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import duckdb

from medallion import silver
from medallion.warehouse.bronze import BRONZE_COLUMNS, bronze_table, refresh_bronze_view
from medallion.warehouse.sql import column_name, now, scalar, table_name, transaction

# Silver's rows as stored. What is the same for every row of a file (its id, name and currency) is in ops.files,
# reached through a small file key, so the insert does not write it per row; `silver.transactions` has every column.
_LINES_COLUMNS = """
    file_key INTEGER NOT NULL, row_number BIGINT NOT NULL,
    invoice_no VARCHAR NOT NULL, stock_code VARCHAR NOT NULL, description VARCHAR,
    quantity BIGINT NOT NULL, unit_price DOUBLE NOT NULL, line_amount DOUBLE NOT NULL,
    customer_id VARCHAR, country VARCHAR NOT NULL, country_raw VARCHAR,
    invoice_ts TIMESTAMP NOT NULL, is_non_product BOOLEAN NOT NULL"""
_REJECTED_COLUMNS = """
    file_id VARCHAR NOT NULL, row_number BIGINT NOT NULL, source_file VARCHAR NOT NULL, reason VARCHAR NOT NULL,
    invoice_no VARCHAR, stock_code VARCHAR, description VARCHAR, quantity VARCHAR, invoice_date VARCHAR,
    unit_price VARCHAR, customer_id VARCHAR, country VARCHAR"""

# silver.lines with silver.DERIVED_COLUMNS, which gold reads.
LINES_VIEW = "silver.lines_derived"
_LINES_VIEW_SQL = f"CREATE OR REPLACE VIEW {LINES_VIEW} AS {silver.with_derived_columns('silver.lines')}"
_SILVER_VIEW_SQL = f"""CREATE OR REPLACE VIEW silver.transactions AS
    SELECT f.file_id, l.row_number, f.file_name AS source_file, l.invoice_no, l.stock_code, l.description,
           l.quantity, l.unit_price, l.line_amount, f.currency, l.customer_id, l.country, l.country_raw,
           l.invoice_ts, l.invoice_date, l.year, l.month, l.quarter, l.day_of_week, l.is_weekend,
           l.transaction_type, l.is_cancellation, l.is_bad_debt, l.is_non_product, l.is_guest, l.is_zero_price
    FROM {LINES_VIEW} AS l JOIN ops.files AS f USING (file_key)"""  # noqa: S608 - constants only


def lines_table_sql(name: str) -> str:
    """The CREATE TABLE of a table shaped like silver.lines; `name` is the caller's constant."""
    return f"CREATE TABLE {name} ({_LINES_COLUMNS})"


def rejected_table_sql(name: str) -> str:
    """The CREATE TABLE of a table shaped like silver.rejected; `name` is the caller's constant."""
    return f"CREATE TABLE {name} ({_REJECTED_COLUMNS})"


_TABLES_SQL = (
    "CREATE SCHEMA IF NOT EXISTS bronze",
    "CREATE SCHEMA IF NOT EXISTS silver",
    "CREATE SCHEMA IF NOT EXISTS gold",
    "CREATE SCHEMA IF NOT EXISTS ops",
    """CREATE TABLE IF NOT EXISTS ops.schema_version (
        version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)""",
    "CREATE SEQUENCE IF NOT EXISTS ops.file_keys",
    """CREATE TABLE IF NOT EXISTS ops.files (
        file_id VARCHAR PRIMARY KEY, file_name VARCHAR NOT NULL, size_bytes BIGINT, file_format VARCHAR,
        encoding VARCHAR, layout VARCHAR, date_formats VARCHAR, date_order_source VARCHAR, status VARCHAR NOT NULL,
        bronze_rows BIGINT, silver_rows BIGINT, rejected_rows BIGINT, duplicate_rows BIGINT,
        error VARCHAR, retryable BOOLEAN, started_at TIMESTAMP, bronze_at TIMESTAMP, silver_at TIMESTAMP,
        finished_at TIMESTAMP, duration_s DOUBLE, flow_run_id VARCHAR, superseded_by VARCHAR,
        file_key INTEGER, currency VARCHAR)""",
    f"CREATE TABLE IF NOT EXISTS silver.lines ({_LINES_COLUMNS})",
    f"CREATE TABLE IF NOT EXISTS silver.rejected ({_REJECTED_COLUMNS})",
    """CREATE TABLE IF NOT EXISTS ops.quality (
        scope VARCHAR NOT NULL, file_id VARCHAR, measured_at TIMESTAMP NOT NULL,
        rows BIGINT, cells BIGINT, filled_cells BIGINT, valid_rows BIGINT, unique_rows BIGINT,
        checked_rows BIGINT, consistent_rows BIGINT,
        completeness DOUBLE, validity DOUBLE, uniqueness DOUBLE, consistency DOUBLE, score DOUBLE,
        threshold DOUBLE, passed BOOLEAN)""",
)


def stored_lines_columns(connection: duckdb.DuckDBPyConnection) -> list[str]:
    """silver.lines' stored (not generated) columns, in order, each a plain name (they go into SQL text)."""
    return [
        column_name(row[0])
        for row in connection.execute(
            """SELECT column_name FROM information_schema.columns
               WHERE table_schema = 'silver' AND table_name = 'lines' AND is_generated = 'NEVER'
               ORDER BY ordinal_position"""
        ).fetchall()
    ]


class Migration(NamedTuple):
    version: int
    name: str
    apply: Callable[[duckdb.DuckDBPyConnection], None]


def _create_tables(connection: duckdb.DuckDBPyConnection) -> None:
    for statement in _TABLES_SQL:
        connection.execute(statement)


def _upgrade_unversioned_layouts(connection: duckdb.DuckDBPyConnection) -> None:
    """Move what releases without `ops.schema_version` left into this layout, keeping every row: a ledger without
    file keys or currency, one bronze table for every file, a silver table storing every column per row, or a
    silver.lines storing or generating columns its view now derives. A new warehouse has none of them."""
    connection.execute("ALTER TABLE ops.files ADD COLUMN IF NOT EXISTS file_key INTEGER")
    connection.execute("ALTER TABLE ops.files ADD COLUMN IF NOT EXISTS currency VARCHAR")
    if _table_type(connection, "bronze", "transactions") == "BASE TABLE":
        _split_bronze_table(connection)
    if any(column in silver.DERIVED_COLUMNS for column in _lines_columns(connection)):
        _relay_lines(connection)
    if _table_type(connection, "silver", "transactions") == "BASE TABLE":
        _move_silver_table(connection)


def _create_views(connection: duckdb.DuckDBPyConnection) -> None:
    refresh_bronze_view(connection)
    connection.execute(_LINES_VIEW_SQL)
    connection.execute(_SILVER_VIEW_SQL)


def _create_table_changes(connection: duckdb.DuckDBPyConnection) -> None:
    """When each table last changed, its rows then and the flow run that changed it (see warehouse.catalog)."""
    connection.execute(
        """CREATE TABLE IF NOT EXISTS ops.table_changes (
            table_name VARCHAR PRIMARY KEY, changed_at TIMESTAMP NOT NULL, flow_run_id VARCHAR, rows BIGINT)"""
    )


# Gold's aggregate state (medallion/gold): each file's contributions at the grain gold needs, keyed by the file key
# so a file's rows can be taken back out, and the running totals gold's tables are read from. Amounts are exact
# decimals (silver's line amounts are whole cents), so totals added up file by file equal one sum over silver.
_LINE_SUMS = "amount DECIMAL(38, 2) NOT NULL, quantity BIGINT NOT NULL, rows BIGINT NOT NULL"
_CONVERTED = """amount_usd DECIMAL(38, 12) NOT NULL, amount_eur DECIMAL(38, 12) NOT NULL,
    usd_rows BIGINT NOT NULL, eur_rows BIGINT NOT NULL"""
_TOTALS = """sales DECIMAL(38, 2) NOT NULL, cancelled DECIMAL(38, 2) NOT NULL, sale_rows BIGINT NOT NULL,
    quantity HUGEINT NOT NULL, rows BIGINT NOT NULL, invoices BIGINT NOT NULL, customers BIGINT NOT NULL"""
_GOLD_STATE_TABLES = {
    # Whether the enriched state covers every file, and the newest enrichment time of a dimension row it has seen.
    "meta": "enriched BOOLEAN NOT NULL, dimensions_seen_at TIMESTAMP",
    # The ledger's silver_at and silver_rows of the load the state was built from, to find files whose rows changed.
    "files": """file_key INTEGER NOT NULL, silver_at TIMESTAMP, silver_rows BIGINT, sale_rows BIGINT NOT NULL,
        first_ts TIMESTAMP, last_ts TIMESTAMP, last_date DATE""",
    "invoices": f"""file_key INTEGER NOT NULL, invoice_no VARCHAR NOT NULL, customer_id VARCHAR,
        country VARCHAR NOT NULL, invoice_date DATE NOT NULL, year INTEGER NOT NULL, month INTEGER NOT NULL,
        is_cancellation BOOLEAN NOT NULL, {_LINE_SUMS}, first_ts TIMESTAMP NOT NULL, last_ts TIMESTAMP NOT NULL""",
    "products": f"file_key INTEGER NOT NULL, stock_code VARCHAR NOT NULL, description VARCHAR, {_LINE_SUMS}",
    # An invoice's enriched rows; `categories` has bit b set when the invoice has a product line of the category
    # `category_bits` numbers b, which is what counting invoices and customers per category needs.
    "enriched_invoices": f"""file_key INTEGER NOT NULL, invoice_no VARCHAR NOT NULL, customer_id VARCHAR,
        country VARCHAR NOT NULL, invoice_date DATE NOT NULL, continent VARCHAR, region VARCHAR, subregion VARCHAR,
        is_cancellation BOOLEAN NOT NULL, {_LINE_SUMS}, {_CONVERTED}, categories UBIGINT NOT NULL""",
    "category_sums": f"""file_key INTEGER NOT NULL, category VARCHAR NOT NULL, is_cancellation BOOLEAN NOT NULL,
        {_LINE_SUMS}, {_CONVERTED}""",
    "category_bits": "category VARCHAR NOT NULL, bit INTEGER NOT NULL",
    "country_totals": f"country VARCHAR NOT NULL, {_TOTALS}",
    "month_totals": f"year INTEGER NOT NULL, month INTEGER NOT NULL, {_TOTALS}",
    "overall_totals": f"scope VARCHAR NOT NULL, {_TOTALS}",
    "region_totals": f"""continent VARCHAR NOT NULL, region VARCHAR NOT NULL, subregion VARCHAR NOT NULL,
        {_TOTALS}, {_CONVERTED}""",
    "category_totals": f"category VARCHAR NOT NULL, {_TOTALS}, {_CONVERTED}",
    "customer_totals": """customer_id VARCHAR NOT NULL, country VARCHAR, amount DECIMAL(38, 2) NOT NULL,
        invoices BIGINT NOT NULL, quantity HUGEINT NOT NULL, first_purchase TIMESTAMP NOT NULL,
        last_purchase TIMESTAMP NOT NULL""",
    "product_totals": "stock_code VARCHAR NOT NULL, amount DECIMAL(38, 2) NOT NULL, quantity HUGEINT NOT NULL, "
    "rows BIGINT NOT NULL",
    "description_totals": "stock_code VARCHAR NOT NULL, description VARCHAR NOT NULL, rows BIGINT NOT NULL",
    # Every product line's invoice and customer, for the top products only: what moving their distinct counts
    # (`top_product_counts`, migration 8) looks up.
    "top_product_lines": """file_key INTEGER NOT NULL, stock_code VARCHAR NOT NULL, invoice_no VARCHAR NOT NULL,
        customer_id VARCHAR, is_cancellation BOOLEAN NOT NULL""",
    # The enrichment dimensions' values the enriched state was built with, to find the files a change touches.
    "seen_rates": "currency VARCHAR, invoice_date DATE, usd DOUBLE, eur DOUBLE",
    "seen_countries": "country VARCHAR, continent VARCHAR, region VARCHAR, subregion VARCHAR",
    "seen_products": "stock_code VARCHAR, description VARCHAR, category VARCHAR",
}


def _create_gold_state(connection: duckdb.DuckDBPyConnection) -> None:
    """Gold's state starts empty: the next gold run finds every live file missing from it and builds it from
    silver once."""
    connection.execute("CREATE SCHEMA IF NOT EXISTS gold_state")
    for name, columns in _GOLD_STATE_TABLES.items():
        connection.execute(f"CREATE TABLE IF NOT EXISTS {table_name('gold_state.' + name)} ({columns})")
    connection.execute(
        "INSERT INTO gold_state.meta SELECT false, NULL WHERE NOT EXISTS (SELECT 1 FROM gold_state.meta)"
    )


def _show_source_sheets(connection: duckdb.DuckDBPyConnection) -> None:
    """`bronze.transactions` gains source_sheet, the workbook sheet of each row: NULL for a CSV file's rows and in
    the tables of files loaded before sheets were kept."""
    refresh_bronze_view(connection)


def _count_overlaps(connection: duckdb.DuckDBPyConnection) -> None:
    """The ledger counts a file's lines already in silver from another file (`overlap_rows`) and the invoices it
    brought back with lines silver lacks (`changed_invoices`); a file loaded before either was counted had none."""
    for column in ("overlap_rows", "changed_invoices"):
        connection.execute(f"ALTER TABLE ops.files ADD COLUMN IF NOT EXISTS {column_name(column)} BIGINT")
    connection.execute("UPDATE ops.files SET overlap_rows = 0, changed_invoices = 0 WHERE silver_rows IS NOT NULL")


def _count_top_products(connection: duckdb.DuckDBPyConnection) -> None:
    """Gold keeps the top products' distinct invoices and customers as counts, moved by each refresh, instead of
    counting their lines on every run; the products it holds lines of are counted once here."""
    connection.execute(
        """CREATE TABLE IF NOT EXISTS gold_state.top_product_counts (
               stock_code VARCHAR NOT NULL, invoices BIGINT NOT NULL, customers BIGINT NOT NULL)"""
    )
    connection.execute(
        """INSERT INTO gold_state.top_product_counts
           SELECT stock_code, count(DISTINCT invoice_no) FILTER (WHERE NOT is_cancellation),
                  count(DISTINCT customer_id)
           FROM gold_state.top_product_lines GROUP BY stock_code"""
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "tables", _create_tables),
    Migration(2, "layouts of unversioned releases", _upgrade_unversioned_layouts),
    Migration(3, "views", _create_views),
    Migration(4, "table changes", _create_table_changes),
    Migration(5, "gold state", _create_gold_state),
    Migration(6, "bronze source sheets", _show_source_sheets),
    Migration(7, "overlap counts", _count_overlaps),
    Migration(8, "top product counts", _count_top_products),
)


def schema_version(connection: duckdb.DuckDBPyConnection) -> int:
    """The last migration the warehouse has recorded; 0 when it records none."""
    recorded = connection.execute(
        "SELECT 1 FROM duckdb_tables() WHERE schema_name = 'ops' AND table_name = 'schema_version'"
    ).fetchall()
    if not recorded:
        return 0
    return int(scalar(connection, "SELECT coalesce(max(version), 0) FROM ops.schema_version"))


def migrate(connection: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply the migrations the warehouse has not recorded, each in its own transaction with its record; returns
    the versions applied."""
    current = schema_version(connection)
    applied = []
    for migration in MIGRATIONS:
        if migration.version <= current:
            continue
        with transaction(connection):
            migration.apply(connection)
            connection.execute(
                "INSERT INTO ops.schema_version VALUES (?, ?, ?)", [migration.version, migration.name, now()]
            )
        applied.append(migration.version)
    return applied


def _table_type(connection: duckdb.DuckDBPyConnection, schema: str, name: str) -> str | None:
    """'BASE TABLE', 'VIEW', or None when there is no such table."""
    kind = scalar(
        connection,
        "SELECT table_type FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, name],
    )
    return None if kind is None else str(kind)


def _lines_columns(connection: duckdb.DuckDBPyConnection) -> list[str]:
    return [
        row[0]
        for row in connection.execute(
            """SELECT column_name FROM information_schema.columns
               WHERE table_schema = 'silver' AND table_name = 'lines'"""
        ).fetchall()
    ]


def _split_bronze_table(connection: duckdb.DuckDBPyConnection) -> None:
    """Move one bronze table holding every file's rows into a table per file, in each file's row order."""
    file_ids = [row[0] for row in connection.execute("SELECT DISTINCT file_id FROM bronze.transactions").fetchall()]
    for file_id in file_ids:
        connection.execute(
            f"""CREATE TABLE {bronze_table(file_id)} AS SELECT {", ".join(BRONZE_COLUMNS)}
                FROM bronze.transactions WHERE file_id = ? ORDER BY row_number""",  # noqa: S608
            [file_id],
        )
    connection.execute("DROP TABLE bronze.transactions")


def _relay_lines(connection: duckdb.DuckDBPyConnection) -> None:
    """Rewrite silver.lines into this layout's table, without the columns its view derives."""
    kept = ", ".join(column for column in stored_lines_columns(connection) if column not in silver.DERIVED_COLUMNS)
    connection.execute("DROP TABLE IF EXISTS silver.lines_relaid")
    connection.execute(lines_table_sql("silver.lines_relaid"))
    connection.execute(f"INSERT INTO silver.lines_relaid BY NAME SELECT {kept} FROM silver.lines")  # noqa: S608
    connection.execute("DROP TABLE silver.lines")
    connection.execute("ALTER TABLE silver.lines_relaid RENAME TO lines")


def _move_silver_table(connection: duckdb.DuckDBPyConnection) -> None:
    """Move a silver.transactions table into silver.lines and the ledger."""
    # A file silver names and the ledger lacks gets a ledger row, so none of its rows is lost: loaded, its silver
    # rows counted, no bronze (a rebuild carries its rows over).
    connection.execute(
        """INSERT INTO ops.files (file_id, file_name, status, silver_rows, silver_at, finished_at)
           SELECT file_id, any_value(source_file), 'loaded', count(*), now()::TIMESTAMP, now()::TIMESTAMP
           FROM silver.transactions
           WHERE file_id NOT IN (SELECT file_id FROM ops.files) GROUP BY file_id"""
    )
    connection.execute(
        """UPDATE ops.files SET currency = t.currency
           FROM (SELECT file_id, any_value(currency) AS currency FROM silver.transactions GROUP BY file_id) t
           WHERE ops.files.file_id = t.file_id"""
    )
    connection.execute("UPDATE ops.files SET file_key = nextval('ops.file_keys') WHERE file_key IS NULL")
    stored = [column for column in stored_lines_columns(connection) if column != "file_key"]
    connection.execute(
        f"""INSERT INTO silver.lines BY NAME
            SELECT f.file_key, {", ".join("t." + column for column in stored)}
            FROM silver.transactions AS t JOIN ops.files AS f USING (file_id)"""  # noqa: S608
    )
    connection.execute("DROP TABLE silver.transactions")
