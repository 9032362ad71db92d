"""Bronze in a real DuckDB file: DuckDB reading CSV itself, row lineage, exact repeats, inconsistent invoices,
the quality counts the warehouse takes from silver, and the migrations that bring any warehouse to its schema."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest
from test_silver import bronze as bronze_frame

from medallion import quality, reader, silver
from medallion.reader import FileProfile
from medallion.settings import load_settings
from medallion.warehouse import Warehouse, bronze, schema, silver_store, sql


@contextmanager
def warehouse_at(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to a writable warehouse at `path`, lent by a Warehouse as it lends one to a step."""
    with Warehouse(load_settings(WAREHOUSE_PATH=path).pipeline) as warehouse, warehouse.connection() as connection:
        yield connection


def profile(file_id: str = "a" * 64, name: str = "sales.csv") -> FileProfile:
    return FileProfile(
        path=Path(name),
        file_name=name,
        file_id=file_id,
        size_bytes=1,
        file_format="csv",
        compressed=False,
        encoding="utf-8",
        delimiter=",",
        layout="uci",
        source_columns=[],
        column_map={},
        index_column=None,
    )


def rows(*lines: tuple[str | None, ...]) -> pl.DataFrame:
    """Bronze batch rows as the reader yields them: no lineage columns yet."""
    return bronze_frame(*lines).drop("file_id", "source_file")


# silver.lines as this version stores it: nothing silver.DERIVED_COLUMNS derives.
LINES_COLUMNS = [
    "file_key", "row_number", "invoice_no", "stock_code", "description", "quantity", "unit_price", "line_amount",
    "customer_id", "country", "country_raw", "invoice_ts", "is_non_product",
]  # fmt: skip


def query(connection: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[object, ...]]:
    return connection.execute(sql).fetchall()


def test_repeats_are_exact_lines_after_their_first_across_batches(tmp_path: Path) -> None:
    line = ("536365", "85123A", None, "6", "12/1/2010 8:26", "2.55", None, "France")
    near = ("536365", "85123A", None, "6", "12/1/2010 8:26", "2.55", None, "France ")
    other_file_line = rows(line)
    frame = rows(
        line,
        near,
        line,
        ("536366", "22633", "WARMER", "6", "12/1/2010 8:28", "1.85", "17850", "France"),
        line,
    )
    with warehouse_at(tmp_path / "w.duckdb") as connection:
        bronze.publish_bronze(
            connection,
            profile("b" * 64, "other.csv"),
            [other_file_line],
            flow_run_id=None,
            started_at=datetime(2026, 1, 1),
        )
        count = bronze.publish_bronze(
            connection,
            profile(),
            [frame.slice(0, 2), frame.slice(2, 3)],
            flow_run_id=None,
            started_at=datetime(2026, 1, 1),
        )
        repeats = query(connection, silver.duplicates_sql(bronze.bronze_source("a" * 64)) + " ORDER BY 1")
        evidence = silver_store.date_evidence(connection, "a" * 64)
        lineage = query(
            connection,
            """SELECT file_id, source_file, row_number, country FROM bronze.transactions
               WHERE row_number BETWEEN 3 AND 4 ORDER BY file_id, row_number""",
        )
    assert count == 5
    assert repeats == [(3,), (5,)], "NULLs compare equal; a trailing space is a different line"
    assert evidence == [("99/9/9999 9:99", 0, 0, 2)], "two distinct dates of one shape, neither proving an order"
    assert lineage == [("a" * 64, "sales.csv", 3, "France"), ("a" * 64, "sales.csv", 4, "France")]


def test_an_invoice_naming_two_customers_or_countries_is_inconsistent(tmp_path: Path) -> None:
    frame = rows(
        ("536365", "A", "X", "1", "12/1/2010 8:26", "1", "17850", "France"),
        ("536365", "B", "X", "1", "12/1/2010 8:26", "1", "17850.0", "France"),
        ("536366", "A", "X", "1", "12/1/2010 8:26", "1", "17850", "France"),
        ("536366", "B", "X", "1", "12/1/2010 8:26", "1", "12583", "France"),
        ("c536367", "A", "X", "-1", "12/1/2010 8:26", "1", "17850", "France"),
        ("C536367", "B", "X", "-1", "12/1/2010 8:26", "1", "17850", "Germany"),
        # rows without an invoice number are no invoice, whatever their customers
        ("", "A", "X", "1", "12/1/2010 8:26", "1", "17850", "France"),
        ("nan", "B", "X", "1", "12/1/2010 8:26", "1", "12583", "France"),
        # a guest line and a customer's line on one invoice name two customers
        ("536368", "A", "X", "1", "12/1/2010 8:26", "1", "NA", "France"),
        ("536368", "B", "X", "1", "12/1/2010 8:26", "1", "17850", " france "),
    )
    with warehouse_at(tmp_path / "w.duckdb") as connection:
        bronze.publish_bronze(connection, profile(), [frame], flow_run_id=None, started_at=datetime(2026, 1, 1))
        inconsistent = query(connection, silver.inconsistent_invoices_sql(bronze.bronze_source("a" * 64)))
    assert sorted(row[0] for row in inconsistent) == ["536366", "536368", "C536367"]


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


HEADER = b",InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
LINE = b'1,536365,85123A,"HEART, WHITE",6,12/1/2010 8:26,2.55,17850,United Kingdom\n'


@pytest.mark.parametrize(
    ("name", "data", "countries"),
    [
        ("plain.csv", HEADER + LINE + b'2,536366,22633,"TWO\nLINES",6,12/1/2010 8:28,1.85,,France\n', None),
        ("latin.csv", (HEADER + b"1,536365,85123A,CAF\xc9,6,12/1/2010 8:26,2.55,17850,C\xf4te\n"), ["Côte"]),
        ("packed.csv.gz", gzip.compress(HEADER + LINE), ["United Kingdom"]),
        ("bom.csv", b"\xef\xbb\xbf" + HEADER + LINE, ["United Kingdom"]),
    ],
)
def test_duckdb_reads_a_csv_file_itself_with_each_rows_line(
    tmp_path: Path, name: str, data: bytes, countries: list[str] | None
) -> None:
    path = write_bytes(tmp_path / name, data)
    file_profile = reader.profile_file(path)
    with warehouse_at(tmp_path / "w.duckdb") as connection:
        count = bronze.publish_bronze(connection, file_profile, None, flow_run_id=None, started_at=datetime(2026, 1, 1))
        bronze_rows = query(
            connection,
            "SELECT row_number, source_index, description, customer_id, country FROM bronze.transactions "
            "ORDER BY row_number",
        )
        ledger = query(connection, "SELECT status, bronze_rows FROM ops.files")
    assert count == len(bronze_rows) and ledger == [("bronze", count)]
    assert [row[0] for row in bronze_rows] == [int(row[1]) for row in bronze_rows] == list(range(1, count + 1))
    if countries is None:
        assert bronze_rows[0][2:] == ("HEART, WHITE", "17850", "United Kingdom")
        assert bronze_rows[1][2:] == ("TWO\nLINES", None, "France")
    else:
        assert [row[4] for row in bronze_rows] == countries


def test_a_file_of_several_read_buffers_keeps_every_row_in_its_line_order(tmp_path: Path) -> None:
    # DuckDB cuts a plain file into buffers of CSV_BUFFER_BYTES for its threads; quoted commas and line breaks
    # and lines of many lengths put the cuts anywhere in a line.
    descriptions = ['"HEART, WHITE"', "WARMER", '"TWO\nLINES"', "X" * 97, '"SAY ""HI"""']
    lines = [
        f"{n},{n},85123A,{descriptions[n % len(descriptions)]},{n % 7},12/1/2010 8:26,2.55,1{n % 9999},France\n"
        for n in range(1, 950_001)
    ]
    path = write_bytes(tmp_path / "large.csv", HEADER + "".join(lines).encode())
    assert path.stat().st_size > 2 * bronze.CSV_BUFFER_BYTES
    with warehouse_at(tmp_path / "w.duckdb") as connection:
        count = bronze.publish_bronze(
            connection, reader.profile_file(path), None, flow_run_id=None, started_at=datetime(2026, 1, 1)
        )
        misplaced = query(
            connection,
            """SELECT count(*) FILTER (WHERE invoice_no <> row_number::VARCHAR OR source_index <> invoice_no),
                      count(*) FILTER (WHERE description = 'TWO' || chr(10) || 'LINES'),
                      count(*) FILTER (WHERE description = 'SAY "HI"')
               FROM bronze.transactions""",
        )
    assert count == 950_000
    assert misplaced == [(0, 190_000, 190_000)]


def test_a_file_cut_off_inside_its_last_record_marks_that_row(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "cut.csv", HEADER + LINE + b"2,536366,22633,WARMER,6,12/1/2010 8:28,1.85,17850,")
    with warehouse_at(tmp_path / "w.duckdb") as connection:
        bronze.publish_bronze(
            connection, reader.profile_file(path), None, flow_run_id=None, started_at=datetime(2026, 1, 1)
        )
        marks = query(connection, "SELECT row_number, parse_error FROM bronze.transactions ORDER BY row_number")
    assert marks == [(1, None), (2, "too_few_fields")]


def test_a_line_the_strict_reader_refuses_writes_nothing_and_asks_for_the_tolerant_reader(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "long.csv", HEADER + LINE + b"2,536366,22633,WARMER,6,12/1/2010 8:28,1.85,1,X,y\n")
    with warehouse_at(tmp_path / "w.duckdb") as connection:
        with pytest.raises(reader.TolerantParseNeeded):
            bronze.publish_bronze(
                connection, reader.profile_file(path), None, flow_run_id=None, started_at=datetime(2026, 1, 1)
            )
        assert query(connection, "SELECT count(*) FROM bronze.transactions") == [(0,)]
        assert query(connection, "SELECT count(*) FROM ops.files") == [(0,)]


def test_a_warehouse_with_one_bronze_table_moves_to_per_file_tables(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as old:
        old.execute("CREATE SCHEMA bronze")
        old.execute(
            """CREATE TABLE bronze.transactions (
                file_id VARCHAR, source_file VARCHAR, row_number BIGINT, source_index VARCHAR, invoice_no VARCHAR,
                stock_code VARCHAR, description VARCHAR, quantity VARCHAR, invoice_date VARCHAR, unit_price VARCHAR,
                customer_id VARCHAR, country VARCHAR, parse_error VARCHAR, ingested_at TIMESTAMP)"""
        )
        old.execute(
            """INSERT INTO bronze.transactions VALUES
               (?, 'a.csv', 2, NULL, '2', 'S', NULL, '1', 'd', '1', NULL, 'France', NULL, now()),
               (?, 'a.csv', 1, NULL, '1', 'S', NULL, '1', 'd', '1', NULL, 'France', NULL, now())""",
            ["c" * 64, "c" * 64],
        )
    with warehouse_at(path) as connection:
        moved = query(connection, f"SELECT rowid + 1, invoice_no FROM {bronze.bronze_table('c' * 64)}")  # noqa: S608
        kind = query(
            connection,
            "SELECT table_type FROM information_schema.tables WHERE table_name = 'transactions'"
            " AND table_schema = 'bronze'",
        )
    assert moved == [(1, "1"), (2, "2")]
    assert kind == [("VIEW",)]


def add_bronze_table(connection: duckdb.DuckDBPyConnection, file_id: str, rows: int, *, sheet: bool = True) -> None:
    """A file's bronze table of `rows` rows and its ledger row, as a load leaves them before the view is refreshed;
    without `sheet`, as a release before workbook sheets made it."""
    columns = [*bronze.BRONZE_COLUMNS, *([bronze.SOURCE_SHEET] if sheet else [])]
    values = ", ".join(f"'{column} ' || i AS {column}" for column in columns)
    table = bronze.bronze_table(file_id)
    connection.execute(f"CREATE TABLE {table} AS SELECT {values} FROM range({rows}) t(i)")  # noqa: S608
    connection.execute(
        "INSERT INTO ops.files (file_id, file_name, status, bronze_at) VALUES (?, ?, 'bronze', now())",
        [file_id, f"{file_id[:4]}.csv"],
    )


def view_ids(connection: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """The bronze views by name, each with its catalog id, which making it again changes."""
    views = query(
        connection,
        """SELECT schema_name || '.' || view_name, view_oid FROM duckdb_views()
           WHERE schema_name IN ('bronze', 'bronze_groups')""",
    )
    return {str(name): int(str(oid)) for name, oid in views}


def test_bronze_transactions_is_made_again_only_for_the_group_of_a_new_file(tmp_path: Path) -> None:
    with warehouse_at(tmp_path / "w.duckdb") as connection:
        for file_id, rows, sheet in (
            ("ab" + "1" * 62, 3, True),
            ("ab" + "2" * 62, 2, False),
            ("cd" + "3" * 62, 4, True),
        ):
            add_bronze_table(connection, file_id, rows, sheet=sheet)
        bronze.refresh_bronze_view(connection)
        first = view_ids(connection)
        add_bronze_table(connection, "cd" + "4" * 62, 1)
        bronze.refresh_bronze_view(connection)
        second = view_ids(connection)
        bronze.refresh_bronze_view(connection)
        unchanged = view_ids(connection)
        add_bronze_table(connection, "ef" + "5" * 62, 2)
        bronze.refresh_bronze_view(connection)
        third = view_ids(connection)
        per_file = query(
            connection,
            """SELECT file_id[:2], source_file, count(*), min(row_number), max(row_number), count(source_sheet)
               FROM bronze.transactions GROUP BY ALL ORDER BY source_file""",
        )
        one_file = connection.execute(
            "SELECT count(*) FROM bronze.transactions WHERE file_id = ?", ["ab" + "2" * 62]
        ).fetchall()
    groups = ["bronze_groups.files_ab", "bronze_groups.files_cd"]
    assert sorted(first) == ["bronze.transactions", *groups]
    changed = {name for name in second if second[name] != first[name]}
    assert changed == {"bronze_groups.files_cd"}, "a new file of a group that exists makes that group's view alone"
    assert unchanged == second, "nothing new, nothing made again"
    assert sorted(third) == ["bronze.transactions", *groups, "bronze_groups.files_ef"]
    assert {name for name in second if third[name] != second[name]} == {"bronze.transactions"}
    assert per_file == [
        ("ab", "ab11.csv", 3, 1, 3, 3),
        ("ab", "ab22.csv", 2, 1, 2, 0),
        ("cd", "cd33.csv", 4, 1, 4, 4),
        ("cd", "cd44.csv", 1, 1, 1, 1),
        ("ef", "ef55.csv", 2, 1, 2, 2),
    ]
    assert one_file == [(2,)]


def test_a_silver_table_of_an_earlier_version_moves_to_stored_lines_behind_the_same_view(tmp_path: Path) -> None:
    # The oldest silver stored every column, derived ones too; the file it names has no ledger row here.
    path = tmp_path / "w.duckdb"
    stored = (
        "file_id VARCHAR, row_number BIGINT, source_file VARCHAR, invoice_no VARCHAR, stock_code VARCHAR,"
        " description VARCHAR, quantity BIGINT, unit_price DOUBLE, line_amount DOUBLE, currency VARCHAR,"
        " customer_id VARCHAR, country VARCHAR, country_raw VARCHAR, invoice_ts TIMESTAMP, invoice_date DATE,"
        " year INTEGER, month INTEGER, quarter INTEGER, day_of_week INTEGER, is_weekend BOOLEAN,"
        " transaction_type VARCHAR, is_cancellation BOOLEAN, is_bad_debt BOOLEAN, is_non_product BOOLEAN,"
        " is_guest BOOLEAN, is_zero_price BOOLEAN"
    )
    with duckdb.connect(str(path)) as old:
        old.execute("CREATE SCHEMA silver")
        old.execute(f"CREATE TABLE silver.transactions ({stored})")
        old.execute(
            """INSERT INTO silver.transactions VALUES
               (?, 7, 'a.csv', 'C536379', 'D', 'Discount', -1, 27.5, -27.5, 'GBP', NULL, 'Ireland', 'EIRE',
                TIMESTAMP '2010-12-04 09:41', DATE '2010-12-04', 2010, 12, 4, 6, true, 'return', true, false, true,
                true, false)""",
            ["c" * 64],
        )
        before = old.execute("SELECT * FROM silver.transactions").fetchall()

    with warehouse_at(path) as connection:
        after = query(connection, "SELECT * FROM silver.transactions")
        stored = query(
            connection,
            """SELECT column_name FROM information_schema.columns WHERE table_schema = 'silver'
               AND table_name = 'lines' ORDER BY ordinal_position""",
        )
        ledger = query(connection, "SELECT file_name, currency, file_key IS NOT NULL FROM ops.files")
        kind = query(
            connection,
            """SELECT table_type FROM information_schema.tables
               WHERE table_schema = 'silver' AND table_name = 'transactions'""",
        )
    assert after == before
    assert [row[0] for row in stored] == LINES_COLUMNS
    assert ledger == [("a.csv", "GBP", True)]
    assert kind == [("VIEW",)]


# The previous version's silver.lines and its view, as that version created them.
PREVIOUS_LINES_SQL = """CREATE TABLE silver.lines (
    file_key INTEGER NOT NULL, row_number BIGINT NOT NULL,
    invoice_no VARCHAR NOT NULL, stock_code VARCHAR NOT NULL, description VARCHAR,
    quantity BIGINT NOT NULL, unit_price DOUBLE NOT NULL, line_amount DOUBLE NOT NULL,
    customer_id VARCHAR, country VARCHAR NOT NULL, country_raw VARCHAR,
    invoice_ts TIMESTAMP NOT NULL, invoice_date DATE NOT NULL, year INTEGER NOT NULL, month INTEGER NOT NULL,
    quarter INTEGER GENERATED ALWAYS AS (quarter(invoice_ts)::INTEGER) VIRTUAL,
    day_of_week INTEGER GENERATED ALWAYS AS (isodow(invoice_ts)::INTEGER) VIRTUAL,
    is_weekend BOOLEAN GENERATED ALWAYS AS (isodow(invoice_ts) >= 6) VIRTUAL,
    transaction_type VARCHAR GENERATED ALWAYS AS
        (CASE WHEN is_cancellation THEN 'return' WHEN is_bad_debt THEN 'adjustment' ELSE 'sale' END) VIRTUAL,
    is_cancellation BOOLEAN NOT NULL, is_bad_debt BOOLEAN NOT NULL, is_non_product BOOLEAN NOT NULL,
    is_guest BOOLEAN GENERATED ALWAYS AS (customer_id IS NULL) VIRTUAL,
    is_zero_price BOOLEAN GENERATED ALWAYS AS (unit_price = 0) VIRTUAL)"""
PREVIOUS_VIEW_SQL = """CREATE VIEW silver.transactions AS
    SELECT f.file_id, l.row_number, f.file_name AS source_file, l.invoice_no, l.stock_code, l.description,
           l.quantity, l.unit_price, l.line_amount, f.currency, l.customer_id, l.country, l.country_raw,
           l.invoice_ts, l.invoice_date, l.year, l.month, l.quarter, l.day_of_week, l.is_weekend,
           l.transaction_type, l.is_cancellation, l.is_bad_debt, l.is_non_product, l.is_guest, l.is_zero_price
    FROM silver.lines AS l JOIN ops.files AS f USING (file_key)"""
PREVIOUS_STORED = (
    "file_key, row_number, invoice_no, stock_code, description, quantity, unit_price, line_amount, customer_id,"
    " country, country_raw, invoice_ts, invoice_date, year, month, is_cancellation, is_bad_debt, is_non_product"
)


def test_silver_lines_of_the_previous_version_lose_the_columns_silver_now_derives_keeping_every_row(
    tmp_path: Path,
) -> None:
    path = tmp_path / "w.duckdb"
    frame = rows(
        ("536365", "85123A", "HEART", "6", "12/1/2010 8:26", "2.55", "17850", "United Kingdom"),
        ("C536379", "D", "Discount", "-1", "12/9/2010 9:41", "27.50", "14527", "EIRE"),
        ("A563185", "B", "Adjust bad debt", "1", "8/12/2011 14:50", "-11062.06", None, "United Kingdom"),
    )
    with warehouse_at(path) as connection:
        bronze.publish_bronze(connection, profile(), [frame], flow_run_id=None, started_at=datetime(2026, 1, 1))
        silver_store.publish_silver(
            connection, "a" * 64, "sales.csv", "GBP", date_formats=["%m/%d/%Y %H:%M"], date_order_source="test"
        )
        before = query(connection, "SELECT * FROM silver.transactions ORDER BY row_number")
    with duckdb.connect(str(path)) as old:  # back to the previous version's table and view, with the same rows
        old.execute(f"CREATE TABLE silver.previous AS SELECT {PREVIOUS_STORED} FROM silver.lines_derived")  # noqa: S608
        old.execute("DROP VIEW silver.transactions")
        old.execute("DROP VIEW silver.lines_derived")
        old.execute("DROP TABLE silver.lines")
        old.execute(PREVIOUS_LINES_SQL)
        old.execute(f"INSERT INTO silver.lines ({PREVIOUS_STORED}) SELECT * FROM silver.previous")  # noqa: S608
        old.execute("DROP TABLE silver.previous")
        old.execute(PREVIOUS_VIEW_SQL)
        old.execute("DROP TABLE ops.schema_version")  # which releases of that layout did not record
        assert query(old, "SELECT * FROM silver.transactions ORDER BY row_number") == before

    with warehouse_at(path) as connection:
        after = query(connection, "SELECT * FROM silver.transactions ORDER BY row_number")
        stored = query(
            connection,
            """SELECT column_name FROM information_schema.columns WHERE table_schema = 'silver'
               AND table_name = 'lines' ORDER BY ordinal_position""",
        )
    assert len(before) == 3
    assert after == before
    assert [row[0] for row in stored] == LINES_COLUMNS


def test_quality_counts_from_silver_equal_counting_every_row_as_received(tmp_path: Path) -> None:
    good = ("536365", "85123A", "HEART", "6", "12/1/2010 8:26", "2.55", "17850", "United Kingdom")
    frame = rows(
        good,
        good,  # an exact repeat
        ("536365", "22633", "NULL", "2", "12/1/2010 8:26", "1.85", "17850", "United Kingdom"),
        ("536366", "22633", "N/A", "-2", "12/1/2010 8:28", "1.85", None, "France"),  # a sale with a negative quantity
        ("C536367", "22633", "WARMER", "3", "12/1/2010 8:29", "1.85", " 17850.0 ", "uk"),  # a return of +3
        ("536368", "22633", "WARMER", "1", "12/1/2010 8:30", "0", "13047", "France"),
        ("536368", "22634", "WARMER", "1", "12/1/2010 8:30", "1", "13048", "France"),  # invoice naming two customers
        ("A563185", "B", "Adjust bad debt", "1", "8/12/2011 14:50", "-11062.06", "", "United Kingdom"),
        ("536369", None, "nan", "x", "NA", "£", "None", ""),  # rejected: no stock code
        ("536369", None, "nan", "x", "NA", "£", "None", ""),  # a repeat of a rejected row
        ("536370", "22633", "WARMER", "1.5", "12/1/2010 8:31", "1.85", "17850", "France"),  # rejected: quantity
        ("536371", "22633", "WARMER", "1", "31/31/2010 8:31", "1.85", "17850", "France"),  # rejected: date
    )
    with warehouse_at(tmp_path / "w.duckdb") as connection:
        bronze.publish_bronze(connection, profile(), [frame], flow_run_id=None, started_at=datetime(2026, 1, 1))
        totals = silver_store.publish_silver(
            connection, "a" * 64, "sales.csv", "GBP", date_formats=["%m/%d/%Y %H:%M"], date_order_source="test"
        )
        typed = silver.typed_rows_sql(bronze.bronze_source("a" * 64), ["%m/%d/%Y %H:%M"])
        every_row = sql.first_row(connection, quality.quality_sql(typed)) or {}
    assert (totals.silver_rows, totals.rejected_rows, totals.duplicate_rows) == (7, 3, 2)
    assert totals.counts == quality.counts_of([every_row], 2)
    assert totals.counts.filled_cells == 12 * 8 - 2 * 5 - 4, "'NULL', 'N/A', None and '' are not filled"
    assert (totals.counts.checked_rows, totals.counts.valid_rows, totals.counts.consistent_rows) == (8, 7, 4)


def test_publishing_silver_puts_the_optimizer_setting_back_after_success_and_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = rows(("536365", "A", "X", "1", "12/1/2010 8:26", "1", "17850", "France"))
    formats = ["%m/%d/%Y %H:%M"]
    original_rows = silver.silver_rows_sql

    def rows_silver_refuses(source: str, date_formats: list[str]) -> str:
        return f"SELECT * REPLACE (NULL::VARCHAR AS country) FROM ({original_rows(source, date_formats)})"  # noqa: S608

    with warehouse_at(tmp_path / "w.duckdb") as connection:
        bronze.publish_bronze(connection, profile(), [frame], flow_run_id=None, started_at=datetime(2026, 1, 1))
        connection.execute("SET disabled_optimizers = 'join_order'")  # a setting of the caller's own
        totals = silver_store.publish_silver(
            connection, "a" * 64, "sales.csv", "GBP", date_formats=formats, date_order_source="test"
        )
        after_success = query(connection, "SELECT current_setting('disabled_optimizers')")
        monkeypatch.setattr(silver, "silver_rows_sql", rows_silver_refuses)  # fails inside the silver insert
        with pytest.raises(duckdb.ConstraintException):
            silver_store.publish_silver(
                connection, "a" * 64, "sales.csv", "GBP", date_formats=formats, date_order_source="test"
            )
        after_failure = query(connection, "SELECT current_setting('disabled_optimizers')")
        kept = query(connection, "SELECT count(*) FROM silver.transactions")
        connection.execute("RESET disabled_optimizers")
    assert totals.silver_rows == 1
    assert after_success == after_failure == [("join_order",)]
    assert kept == [(1,)]


def versions(connection: duckdb.DuckDBPyConnection) -> list[tuple[object, ...]]:
    return query(connection, "SELECT version, name, applied_at FROM ops.schema_version ORDER BY version")


def test_each_migration_is_applied_once_and_recorded(tmp_path: Path) -> None:
    with warehouse_at(tmp_path / "w.duckdb") as connection:
        first = versions(connection)
    with warehouse_at(tmp_path / "w.duckdb") as connection:
        again = schema.migrate(connection)
        second = versions(connection)
    assert [(version, name) for version, name, _ in first] == [
        (migration.version, migration.name) for migration in schema.MIGRATIONS
    ]
    assert again == []
    assert second == first, "a second open applies and records nothing"


def loaded_file(connection: duckdb.DuckDBPyConnection) -> None:
    """One file's bronze and silver rows, one of them rejected and one a repeat."""
    line = ("536365", "85123A", "HEART", "6", "12/1/2010 8:26", "2.55", "17850", "United Kingdom")
    frame = rows(line, line, ("C536379", "D", "Discount", "-1", "12/9/2010 9:41", "27.50", "14527", "EIRE"))
    frame = pl.concat([frame, rows(("536366", None, "X", "1", "12/1/2010 8:26", "1", None, "France"))])
    bronze.publish_bronze(connection, profile(), [frame], flow_run_id=None, started_at=datetime(2026, 1, 1))
    silver_store.publish_silver(
        connection, "a" * 64, "sales.csv", "GBP", date_formats=["%m/%d/%Y %H:%M"], date_order_source="test"
    )


EVERY_TABLE = (
    "bronze.transactions",
    "silver.transactions",
    "silver.lines_derived",
    "silver.rejected",
    "ops.files",
)


def contents(connection: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[object, ...]]]:
    return {name: sorted(query(connection, f"SELECT * FROM {name}"), key=repr) for name in EVERY_TABLE}  # noqa: S608


def test_a_warehouse_of_the_last_release_without_schema_versions_keeps_every_row(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with warehouse_at(path) as connection:
        loaded_file(connection)
        before = contents(connection)
    with duckdb.connect(str(path)) as old:  # the last release had these tables and views, and no versions
        old.execute("DROP TABLE ops.schema_version")
    with warehouse_at(path) as connection:
        after = contents(connection)
        recorded = [row[0] for row in versions(connection)]
    assert [len(before[name]) for name in EVERY_TABLE] == [4, 2, 2, 1, 1]
    assert after == before
    assert recorded == [migration.version for migration in schema.MIGRATIONS]


def test_a_ledger_without_file_keys_gains_them_when_its_silver_table_moves(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as old:
        old.execute("CREATE SCHEMA ops")
        old.execute("CREATE SCHEMA silver")
        old.execute(
            """CREATE TABLE ops.files (
                file_id VARCHAR PRIMARY KEY, file_name VARCHAR NOT NULL, size_bytes BIGINT, file_format VARCHAR,
                encoding VARCHAR, layout VARCHAR, date_formats VARCHAR, date_order_source VARCHAR,
                status VARCHAR NOT NULL, bronze_rows BIGINT, silver_rows BIGINT, rejected_rows BIGINT,
                duplicate_rows BIGINT, error VARCHAR, retryable BOOLEAN, started_at TIMESTAMP, bronze_at TIMESTAMP,
                silver_at TIMESTAMP, finished_at TIMESTAMP, duration_s DOUBLE, flow_run_id VARCHAR,
                superseded_by VARCHAR)"""
        )
        old.execute(
            "INSERT INTO ops.files (file_id, file_name, status, silver_rows) VALUES (?, 'a.csv', 'loaded', 1)",
            ["c" * 64],
        )
        old.execute(
            """CREATE TABLE silver.transactions AS SELECT ? AS file_id, 7::BIGINT AS row_number,
                   'a.csv' AS source_file, '536365' AS invoice_no, 'D' AS stock_code, NULL::VARCHAR AS description,
                   2::BIGINT AS quantity, 1.5 AS unit_price, 3.0 AS line_amount, 'GBP' AS currency,
                   NULL::VARCHAR AS customer_id, 'Ireland' AS country, 'EIRE' AS country_raw,
                   TIMESTAMP '2010-12-04 09:41' AS invoice_ts, false AS is_non_product""",
            ["c" * 64],
        )
    with warehouse_at(path) as connection:
        ledger = query(connection, "SELECT file_name, currency, file_key IS NOT NULL FROM ops.files")
        moved = query(connection, "SELECT file_id, row_number, source_file, currency FROM silver.transactions")
    assert ledger == [("a.csv", "GBP", True)]
    assert moved == [("c" * 64, 7, "a.csv", "GBP")]


def test_the_silver_views_read_the_rebuilt_tables_once_swapped_in(tmp_path: Path) -> None:
    with warehouse_at(tmp_path / "w.duckdb") as connection:
        loaded_file(connection)
        before = contents(connection)
        silver_store.prepare_silver_rebuild(connection)
        totals = silver_store.publish_silver(
            connection,
            "a" * 64,
            "sales.csv",
            "GBP",
            date_formats=["%m/%d/%Y %H:%M"],
            date_order_source="test",
            rebuild=True,
        )
        scores = quality.quality_scores(totals.counts, {name: 1.0 for name in quality.DIMENSIONS})
        rebuilt = silver_store.RebuiltFile("a" * 64, totals, scores)
        silver_store.swap_in_rebuilt_silver(
            connection, [rebuilt], ledger_order=["a" * 64], currency="GBP", threshold=80.0
        )
        after = contents(connection)
        scored = query(connection, "SELECT scope, rows, score FROM ops.quality")
    assert (totals.silver_rows, totals.rejected_rows, totals.duplicate_rows) == (2, 1, 1)
    assert {name: after[name] for name in EVERY_TABLE if name != "ops.files"} == {
        name: before[name] for name in EVERY_TABLE if name != "ops.files"
    }
    assert scored == [("file", 4, scores.score)]


def test_a_read_only_warehouse_reads_without_migrating(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with warehouse_at(path) as connection:
        loaded_file(connection)
    with duckdb.connect(str(path)) as old:
        old.execute("DROP TABLE ops.schema_version")
    settings = load_settings(WAREHOUSE_PATH=path).pipeline
    with Warehouse(settings, read_only=True) as warehouse, warehouse.connection() as connection:
        read = query(connection, "SELECT count(*) FROM silver.transactions")
        version = schema.schema_version(connection)
        with pytest.raises(duckdb.InvalidInputException):
            connection.execute("CREATE TABLE ops.written (x INTEGER)")
    assert read == [(2,)]
    assert version == 0


def test_a_table_name_put_into_sql_text_is_a_plain_name() -> None:
    assert sql.table_name("gold_state.files") == "gold_state.files"
    assert sql.table_name("silver_duplicates") == "silver_duplicates"
    for hostile in ('x"; DROP TABLE ops.files; --', "a b", "Files", "a.b.c", ""):
        with pytest.raises(ValueError, match="not a plain table name"):
            sql.table_name(hostile)


def test_a_column_name_put_into_sql_text_is_a_plain_name() -> None:
    assert sql.column_name("overlap_rows") == "overlap_rows"
    for hostile in ('x"; DROP TABLE ops.files; --', "a b", "silver.lines", "Rows", ""):
        with pytest.raises(ValueError, match="not a plain column name"):
            sql.column_name(hostile)
