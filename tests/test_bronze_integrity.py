"""Bronze keeps every record of a file and nothing else: a file that grows while it is read loads whole or not at
all, one malformed line in a file of many batches is kept and marked, a record cut off at the end is kept and
marked whatever the reader or compression, and every sheet of a workbook loads with its name.

Each loaded file is checked through silver: its bronze rows are its silver rows, rejected rows and repeats.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest
import xlsxwriter
from conftest import UCI_HEADER, write_csv
from test_reader import ROW, ROW_2

from medallion import reader
from medallion.errors import BadInputError, is_retryable
from medallion.reader import content
from medallion.settings import Settings, load_settings
from medallion.steps import BronzeReport, SilverReport, load_bronze, load_silver
from medallion.warehouse import Warehouse, bronze, ledger
from medallion.warehouse.sql import now

SAMPLE_HEADER = '"","InvoiceNo","StockCode","Description","Quantity","InvoiceDate","UnitPrice","CustomerID","Country"'
SAMPLE_ROW = '"60","536373","82482","WOODEN PICTURE FRAME","6","12/1/2010 9:02","2.1","17850","United Kingdom"'


def numbered_rows(count: int, start: int = 0) -> list[str]:
    """Rows with their own invoice numbers, so none repeats another."""
    return [ROW.replace("536365", str(536365 + number)) for number in range(start, start + count)]


def bronze_table_names(warehouse: Warehouse) -> list[str]:
    with warehouse.connection() as connection:
        names = connection.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'bronze'").fetchall()
    return [name for (name,) in names]


def ledger_rows(warehouse: Warehouse) -> list[tuple[Any, ...]]:
    with warehouse.connection() as connection:
        return connection.execute("SELECT file_id, size_bytes, status, bronze_rows FROM ops.files").fetchall()


def last_rows(warehouse: Warehouse, file_id: str, count: int) -> list[tuple[Any, ...]]:
    with warehouse.connection() as connection:
        rows = connection.execute(
            """SELECT row_number, country, parse_error FROM bronze.transactions WHERE file_id = ?
               ORDER BY row_number DESC LIMIT ?""",
            [file_id, count],
        ).fetchall()
    return rows[::-1]


def balanced_silver(warehouse: Warehouse, settings: Settings, report: BronzeReport) -> SilverReport:
    """Load the file's silver rows and check that bronze = silver + rejected + duplicates + overlaps, in the tables
    too."""
    silver = load_silver(warehouse, report.file_id, settings.pipeline)
    with warehouse.connection() as connection:
        counts = connection.execute(
            """SELECT (SELECT count(*) FROM bronze.transactions WHERE file_id = $id),
                      (SELECT count(*) FROM silver.transactions WHERE file_id = $id),
                      (SELECT count(*) FROM silver.rejected WHERE file_id = $id)""",
            {"id": report.file_id},
        ).fetchone()
    assert counts == (report.bronze_rows, silver.silver_rows, silver.rejected_rows)
    assert silver.bronze_rows == (
        silver.silver_rows + silver.rejected_rows + silver.duplicate_rows + silver.overlap_rows
    )
    return silver


# --- A file that grows while it is read ---------------------------------------------------------------------------


def append_once(path: Path, text: str) -> Callable[[], None]:
    """A hook that appends `text` to the file the first time it is called, as a writer still at work would."""
    done: list[bool] = []

    def append() -> None:
        if not done:
            done.append(True)
            with path.open("a") as handle:
                handle.write(text)

    return append


def test_rows_appended_while_the_file_is_hashed_fail_the_run_retryably_and_the_rerun_loads_them(
    tmp_path: Path, settings: Settings, warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Bigger than one read of the hash, so the rows land after the size was taken and before the hash ends.
    path = write_csv(tmp_path / "raw" / "growing.csv", *numbered_rows(20_000))
    assert path.stat().st_size > content.CHUNK_BYTES
    appended = "\n".join(numbered_rows(100, start=20_000)) + "\n"
    append = append_once(path, appended)
    chunks_of = content.content_chunks

    def chunks_then_append(*args: Any, **kwargs: Any) -> Generator[bytes, None, None]:
        hashing = kwargs.get("on_read") is not None
        for number, chunk in enumerate(chunks_of(*args, **kwargs)):
            yield chunk
            if hashing and number == 0:
                append()

    monkeypatch.setattr(content, "content_chunks", chunks_then_append)
    with pytest.raises(reader.FileChangedError) as raised:
        load_bronze(warehouse, path, settings.pipeline)
    assert str(raised.value) == "growing.csv: the file changed while it was read; load it once it is complete"
    assert is_retryable(raised.value)
    assert (bronze_table_names(warehouse), ledger_rows(warehouse)) == ([], [])

    report = load_bronze(warehouse, path, settings.pipeline)
    whole = path.read_bytes()
    assert ledger_rows(warehouse) == [(hashlib.sha256(whole).hexdigest(), len(whole), "bronze", 20_100)]
    assert (report.file_id, report.bronze_rows, report.skipped) == (hashlib.sha256(whole).hexdigest(), 20_100, False)
    assert balanced_silver(warehouse, settings, report).silver_rows == 20_100


@pytest.mark.parametrize("hashed_first", [False, True], ids=["read_while_hashed", "hashed_before_read"])
def test_rows_appended_after_the_hash_and_before_the_commit_write_nothing(
    tmp_path: Path, settings: Settings, warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch, hashed_first: bool
) -> None:
    path = write_csv(tmp_path / "raw" / "daily.csv", *numbered_rows(3000))
    if hashed_first:
        # A loaded file of the same name and size makes the step hash the file before it reads it.
        loaded = load_bronze(warehouse, path, settings.pipeline)
        with warehouse.connection() as connection:
            ledger.mark_loaded(connection, loaded.file_id)
        write_csv(path, *numbered_rows(3000, start=1))
        assert path.stat().st_size == loaded.size_bytes
    profile_file = reader.profile_file
    append = append_once(path, "\n".join(numbered_rows(10, start=9000)) + "\n")

    def profile_then_append(file: Path) -> reader.FileProfile:
        profile = profile_file(file)
        append()
        return profile

    monkeypatch.setattr(reader, "profile_file", profile_then_append)
    before = (bronze_table_names(warehouse), ledger_rows(warehouse))
    with pytest.raises(reader.FileChangedError):
        load_bronze(warehouse, path, settings.pipeline)
    assert (bronze_table_names(warehouse), ledger_rows(warehouse)) == before

    report = load_bronze(warehouse, path, settings.pipeline)
    assert (report.file_id, report.bronze_rows) == (hashlib.sha256(path.read_bytes()).hexdigest(), 3010)


def test_a_file_replaced_after_it_was_profiled_is_not_loaded_under_the_old_id(
    tmp_path: Path, warehouse: Warehouse
) -> None:
    path = write_csv(tmp_path / "raw" / "daily.csv", ROW, ROW_2)
    profile = reader.profile_file(path)
    replacement = write_csv(tmp_path / "raw" / "daily.csv.new", ROW_2, ROW)
    replacement.replace(path)  # same size, same name: only the stamp tells
    with warehouse.connection() as connection, pytest.raises(reader.FileChangedError):
        bronze.publish_bronze(connection, profile, None, flow_run_id=None, started_at=now())
    assert (bronze_table_names(warehouse), ledger_rows(warehouse)) == ([], [])


# --- One malformed line in a file of many batches -----------------------------------------------------------------


@pytest.mark.parametrize("line", [3, 9000], ids=["in_the_first_batch", "many_batches_in"])
def test_a_line_with_a_field_too_many_is_kept_and_marked_in_a_file_of_many_batches(
    tmp_path: Path, warehouse: Warehouse, line: int
) -> None:
    settings = load_settings(BATCH_ROWS=1000)
    rows = numbered_rows(10_000)
    rows[line - 1] += ",surplus"
    path = write_csv(tmp_path / "raw" / "one_bad_line.csv", *rows)
    report = load_bronze(warehouse, path, settings.pipeline)
    with warehouse.connection() as connection:
        marked = connection.execute(
            "SELECT row_number, parse_error FROM bronze.transactions WHERE parse_error IS NOT NULL"
        ).fetchall()
    assert (report.bronze_rows, marked) == (10_000, [(line, "too_many_fields")])
    silver = balanced_silver(warehouse, settings, report)
    assert silver.rejected_by_reason == {"malformed_row": 1}


def test_a_blank_line_is_no_record_whichever_reader_reads_the_file(
    tmp_path: Path, settings: Settings, warehouse: Warehouse
) -> None:
    # DuckDB reads the first file; the line with a field too many hands the second to the tolerant reader.
    for name, surplus in (("strict.csv", ""), ("tolerant.csv", ",surplus")):
        path = write_csv(tmp_path / "raw" / name, ROW + surplus, "", ROW_2, "")
        report = load_bronze(warehouse, path, settings.pipeline)
        with warehouse.connection() as connection:
            rows = connection.execute(
                "SELECT row_number, invoice_no FROM bronze.transactions WHERE file_id = ? ORDER BY row_number",
                [report.file_id],
            ).fetchall()
        assert rows == [(1, "536365"), (2, "536366")]
        assert balanced_silver(warehouse, settings, report).rejected_rows == (1 if surplus else 0)


# --- A record cut off at the end ---------------------------------------------------------------------------------


def cut_file(path: Path, rows: list[str], last: str, *, compressed: bool) -> Path:
    data = ("\n".join(rows) + "\n" + last).encode()
    path.write_bytes(gzip.compress(data, compresslevel=1) if compressed else data)
    return path


CUT_ENDINGS = [
    # cut after the last delimiter: as many fields as the header, the last one empty, which DuckDB reads
    pytest.param(SAMPLE_ROW.rsplit(",", 1)[0] + ",", None, id="after_the_last_comma"),
    # cut just after the last field's opening quote, which DuckDB refuses and the csv module takes as empty
    pytest.param(SAMPLE_ROW.rsplit(",", 1)[0] + ',"', "", id="at_an_opening_quote"),
    # cut inside the quoted last field, which the csv module reads as if the quote were closed
    pytest.param(SAMPLE_ROW[:-7], "United K", id="inside_a_quoted_field"),
]


@pytest.mark.parametrize("rows", [10, 60_000], ids=["small", "several_buffers"])
@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize(("last", "country"), CUT_ENDINGS)
def test_a_record_cut_off_at_the_end_is_kept_and_marked(
    tmp_path: Path,
    settings: Settings,
    warehouse: Warehouse,
    rows: int,
    compressed: bool,
    last: str,
    country: str | None,
) -> None:
    # Past the head, a gzip file's last byte is known only from the pass that hashes it.
    lines = [SAMPLE_HEADER, *(SAMPLE_ROW.replace("536373", str(536373 + number)) for number in range(rows))]
    path = cut_file(tmp_path / "raw" / f"cut.csv{'.gz' if compressed else ''}", lines, last, compressed=compressed)
    report = load_bronze(warehouse, path, settings.pipeline)
    assert report.bronze_rows == rows + 1
    assert last_rows(warehouse, report.file_id, 2) == [
        (rows, "United Kingdom", None),
        (rows + 1, country, "too_few_fields"),
    ]
    assert balanced_silver(warehouse, settings, report).rejected_by_reason == {"malformed_row": 1}


def test_a_last_line_without_a_line_break_is_whole_and_loads_unmarked(
    tmp_path: Path, settings: Settings, warehouse: Warehouse
) -> None:
    path = cut_file(tmp_path / "raw" / "no_final_newline.csv.gz", [UCI_HEADER, ROW], ROW_2, compressed=True)
    report = load_bronze(warehouse, path, settings.pipeline)
    assert last_rows(warehouse, report.file_id, 2) == [(1, "United Kingdom", None), (2, "United Kingdom", None)]
    assert balanced_silver(warehouse, settings, report).rejected_rows == 0


# --- Workbooks of several sheets ---------------------------------------------------------------------------------

WORKBOOK_HEADER = UCI_HEADER.split(",")


def workbook(path: Path, sheets: dict[str, list[list[Any]]]) -> Path:
    """A workbook with a sheet per entry, each a list of rows written from the top left."""
    book = xlsxwriter.Workbook(str(path))
    for name, rows in sheets.items():
        sheet = book.add_worksheet(name)
        for number, row in enumerate(rows):
            sheet.write_row(number, 0, row)
    book.close()
    return path


def sales(first_invoice: int, count: int) -> list[list[Any]]:
    rows: list[list[Any]] = [
        [str(first_invoice + number), "85123A", "HEART", 6, "12/1/2010 8:26", 2.55, 17850, "France"]
        for number in range(count)
    ]
    return [WORKBOOK_HEADER, *rows]


def sheet_rows(warehouse: Warehouse, file_id: str) -> list[tuple[Any, ...]]:
    with warehouse.connection() as connection:
        return connection.execute(
            """SELECT source_sheet, count(*), min(row_number), max(row_number), min(invoice_no), max(invoice_no)
               FROM bronze.transactions WHERE file_id = ? GROUP BY source_sheet ORDER BY min(row_number)""",
            [file_id],
        ).fetchall()


def test_every_month_sheet_of_a_workbook_loads_with_its_sheet_and_rows_numbered_on(
    tmp_path: Path, settings: Settings, warehouse: Warehouse
) -> None:
    path = workbook(
        tmp_path / "raw" / "quarter.xlsx",
        {"January": sales(100000, 3), "Empty": [], "February": sales(200000, 2), "March": [WORKBOOK_HEADER]},
    )
    report = load_bronze(warehouse, path, settings.pipeline)
    assert report.bronze_rows == 5
    assert sheet_rows(warehouse, report.file_id) == [
        ("January", 3, 1, 3, "100000", "100002"),
        ("February", 2, 4, 5, "200000", "200001"),
    ]
    assert balanced_silver(warehouse, settings, report).silver_rows == 5


def test_a_workbook_whose_first_sheet_is_empty_loads_its_second(
    tmp_path: Path, settings: Settings, warehouse: Warehouse
) -> None:
    path = workbook(tmp_path / "raw" / "export.xlsx", {"Sheet1": [], "Data": sales(300000, 2)})
    report = load_bronze(warehouse, path, settings.pipeline)
    assert sheet_rows(warehouse, report.file_id) == [("Data", 2, 1, 2, "300000", "300001")]
    assert balanced_silver(warehouse, settings, report).silver_rows == 2


@pytest.mark.parametrize(
    ("sheets", "message"),
    [
        (
            {"January": sales(1, 1), "Notes": [["checked by", "Ann"]], "Totals": [["month", "sum"], ["Jan", 1]]},
            "book.xlsx: sheet(s) 'Notes', 'Totals' have another header than sheet 'January' ('Notes' has "
            "'checked by', 'Ann'); every sheet with data must have the same columns",
        ),
        (
            {"Notes": [["read me"]], "January": sales(1, 1)},
            "book.xlsx (sheet 'Notes'): missing column(s) InvoiceNo or Invoice, StockCode, Description, Quantity, "
            "InvoiceDate, UnitPrice or Price, CustomerID or Customer ID, Country; the header has 'read me'",
        ),
        ({"Sheet1": [], "Sheet2": []}, "book.xlsx: the workbook has no sheet with data"),
        ({"January": [WORKBOOK_HEADER], "February": [WORKBOOK_HEADER]}, None),
    ],
    ids=["another_header", "first_sheet_not_sales", "all_empty", "headers_only"],
)
def test_a_workbook_is_refused_naming_its_sheets_when_they_do_not_all_hold_sales(
    tmp_path: Path, settings: Settings, warehouse: Warehouse, sheets: dict[str, list[list[Any]]], message: str | None
) -> None:
    path = workbook(tmp_path / "raw" / "book.xlsx", sheets)
    with pytest.raises(BadInputError) as raised:
        load_bronze(warehouse, path, settings.pipeline)
    assert str(raised.value) == (message or "book.xlsx: the workbook has a header but no data rows")
    assert bronze_table_names(warehouse) == []


def test_csv_rows_and_the_tables_of_files_loaded_before_sheets_were_kept_have_no_sheet(
    tmp_path: Path, settings: Settings, warehouse: Warehouse
) -> None:
    older = load_bronze(warehouse, write_csv(tmp_path / "raw" / "older.csv", ROW), settings.pipeline)
    table = bronze.bronze_table(older.file_id)
    with warehouse.connection() as connection:
        # The table as files loaded before had it: no source_sheet column.
        connection.execute(f"ALTER TABLE {table} DROP COLUMN source_sheet")
        bronze.refresh_bronze_view(connection)
    newer = load_bronze(warehouse, write_csv(tmp_path / "raw" / "newer.csv", ROW_2), settings.pipeline)
    book = load_bronze(warehouse, workbook(tmp_path / "raw" / "book.xlsx", {"May": sales(7, 1)}), settings.pipeline)
    with warehouse.connection() as connection:
        sheets = connection.execute(
            "SELECT file_id, invoice_no, source_sheet FROM bronze.transactions ORDER BY invoice_no"
        ).fetchall()
    assert sorted(sheets) == sorted(
        [(older.file_id, "536365", None), (newer.file_id, "536366", None), (book.file_id, "7", "May")]
    )
