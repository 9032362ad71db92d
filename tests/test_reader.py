"""Reading the layouts real files come in, and refusing bad files with an exact error while keeping them."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import polars as pl
import pytest
from conftest import SAMPLE_CSV, UCI_HEADER, write_csv

from medallion import reader, steps, warehouse
from medallion.errors import BadInputError
from medallion.settings import Settings

ROW = "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850,United Kingdom"
ROW_2 = "536366,22633,HAND WARMER UNION JACK,6,12/1/2010 8:28,1.85,17850,United Kingdom"


def canonical_rows(path: Path, tmp_path: Path) -> pl.DataFrame:
    return reader.raw_rows(reader.profile_file(path), tmp_path / "staging")


def test_the_downloaded_layout_maps_its_columns_and_keeps_the_index(tmp_path: Path) -> None:
    profile = reader.profile_file(SAMPLE_CSV)
    rows = reader.raw_rows(profile, tmp_path)
    assert profile.layout == "uci_with_index"
    assert profile.index_column == ""
    assert rows.height == 5076
    assert rows.row(0, named=True) == {
        "row_number": 1,
        "source_index": "60",
        "invoice_no": "536373",
        "stock_code": "82482",
        "description": "WOODEN PICTURE FRAME WHITE FINISH",
        "quantity": "6",
        "invoice_date": "12/1/2010 9:02",
        "unit_price": "2.1",
        "customer_id": "17850",
        "country": "United Kingdom",
        "parse_error": None,
    }


def test_online_retail_ii_names_map_to_the_same_columns(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "retail_ii.csv",
        "489434,85048,15CM CHRISTMAS GLASS BALL 20 LIGHTS,12,2009-12-01 07:45:00,6.95,13085.0,United Kingdom",
        header="Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country",
    )
    profile = reader.profile_file(path)
    rows = reader.raw_rows(profile, tmp_path)
    assert profile.layout == "online_retail_ii"
    assert rows.select("invoice_no", "unit_price", "customer_id").row(0) == ("489434", "6.95", "13085.0")


@pytest.mark.parametrize(
    ("name", "content", "encoding"),
    [
        ("bom.csv", ("\ufeff" + UCI_HEADER + "\n" + ROW + "\n").encode("utf-8"), "utf-8-sig"),
        (
            "latin1.csv",
            (UCI_HEADER + "\n" + ROW.replace("WHITE", "CAFÉ") + "\n").encode("latin-1"),
            "latin-1",
        ),
        ("semicolons.csv", (UCI_HEADER + "\n" + ROW + "\n").replace(",", ";").encode(), "utf-8"),
    ],
)
def test_encodings_and_delimiters_are_detected(tmp_path: Path, name: str, content: bytes, encoding: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    profile = reader.profile_file(path)
    rows = reader.raw_rows(profile, tmp_path / "staging")
    assert profile.encoding == encoding
    assert rows["invoice_no"].to_list() == ["536365"]
    assert rows["description"][0].endswith("HANGING HEART T-LIGHT HOLDER")
    assert "CAFÉ" in rows["description"][0] or "WHITE" in rows["description"][0]
    assert list((tmp_path / "staging").glob("*")) == [], "the transcoded copy is removed after reading"


@pytest.mark.parametrize(
    ("tail", "encoding"),
    [
        # a two-byte UTF-8 character cut by the chunk boundary, then a chunk of plain ASCII
        ("É".encode(), "utf-8"),
        # one Latin-1 byte far into a file that is ASCII until then
        ("É".encode("latin-1"), "latin-1"),
    ],
)
def test_the_encoding_is_decided_by_the_whole_file(tmp_path: Path, tail: bytes, encoding: str) -> None:
    line = (ROW + "\n").encode()
    lines = (UCI_HEADER + "\n").encode() + line * (reader.CHUNK_BYTES // len(line))
    lines = lines[: lines.rfind(b"\n", 0, reader.CHUNK_BYTES - 1) + 1]
    padding = b"x" * (reader.CHUNK_BYTES - 1 - len(lines))  # puts the first byte of `tail` last in the first chunk
    path = tmp_path / "long.csv"
    path.write_bytes(lines + padding + tail + b"\n" + line * 3)
    assert reader.profile_file(path).encoding == encoding


def test_gzip_files_are_read_and_identified_by_their_own_bytes(tmp_path: Path) -> None:
    plain = write_csv(tmp_path / "sales.csv", ROW, ROW_2)
    packed = tmp_path / "sales.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    profile = reader.profile_file(packed)
    assert profile.file_id == hashlib.sha256(packed.read_bytes()).hexdigest()
    assert reader.raw_rows(profile, tmp_path / "staging")["invoice_no"].to_list() == ["536365", "536366"]


def test_excel_workbooks_are_read(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "InvoiceNo": ["536365"],
            "StockCode": ["85123A"],
            "Description": ["HEART"],
            "Quantity": [6],
            "InvoiceDate": ["2010-12-01 08:26:00"],
            "UnitPrice": [2.55],
            "CustomerID": [17850],
            "Country": ["France"],
        }
    )
    path = tmp_path / "sales.xlsx"
    frame.write_excel(path)
    rows = canonical_rows(path, tmp_path)
    assert rows.select("invoice_no", "quantity", "unit_price", "country").row(0) == (
        "536365",
        "6",
        "2.55",
        "France",
    )


def test_quoted_newlines_stay_inside_their_field(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "newlines.csv",
        ROW.replace("WHITE HANGING", '"WHITE\nHANGING').replace("HOLDER,", 'HOLDER",'),
        ROW_2,
    )
    rows = canonical_rows(path, tmp_path)
    assert rows["description"].to_list() == ["WHITE\nHANGING HEART T-LIGHT HOLDER", "HAND WARMER UNION JACK"]
    assert rows["parse_error"].to_list() == [None, None]


@pytest.mark.parametrize(
    ("content", "parse_errors"),
    [
        # a copy cut off inside its last line
        (UCI_HEADER + "\n" + ROW + "\n" + ROW_2[:30], [None, "too_few_fields"]),
        # cut off inside a quoted field
        (UCI_HEADER + "\n" + ROW + '\n536367,84879,"ASSORTED COLOUR', [None, "too_few_fields"]),
        # a line with a field too many
        (UCI_HEADER + "\n" + ROW + ",surplus\n" + ROW_2 + "\n", ["too_many_fields", None]),
    ],
)
def test_malformed_lines_are_kept_and_marked(tmp_path: Path, content: str, parse_errors: list[str | None]) -> None:
    path = tmp_path / "malformed.csv"
    path.write_text(content)
    rows = canonical_rows(path, tmp_path)
    assert rows["parse_error"].to_list() == parse_errors
    assert rows["row_number"].to_list() == [1, 2]


BAD_FILES: list[tuple[str, bytes, str]] = [
    ("empty.csv", b"", "empty.csv: file is empty"),
    ("blank.csv", b"\n \n", "blank.csv: file is empty"),
    (
        "header_only.csv",
        (UCI_HEADER + "\n").encode(),
        "header_only.csv: the file has a header but no data rows",
    ),
    (
        "picture.csv",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        "picture.csv: binary content, not a text CSV file",
    ),
    (
        "wrong_columns.csv",
        b"order,item,amount\n1,A,2\n",
        "wrong_columns.csv: missing column(s) InvoiceNo or Invoice, StockCode, Description, Quantity, InvoiceDate, "
        "UnitPrice or Price, CustomerID or Customer ID, Country; the header has 'order', 'item', 'amount'",
    ),
    (
        "no_price.csv",
        UCI_HEADER.replace(",UnitPrice", "").encode() + b"\n",
        "no_price.csv: missing column(s) UnitPrice or Price; the header has 'InvoiceNo', 'StockCode', 'Description', "
        "'Quantity', 'InvoiceDate', 'CustomerID', 'Country'",
    ),
    ("broken.csv.gz", b"\x1f\x8b\x08\x00not really gzip", "broken.csv.gz: not a valid gzip file"),
    (
        "sales.json",
        b'{"rows": []}',
        "sales.json: unsupported file type (expected one of .csv, .csv.gz, .txt, .txt.gz, .xlsx)",
    ),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD_FILES, ids=[case[0] for case in BAD_FILES])
def test_bad_files_fail_with_the_exact_error_and_stay_where_they_were(
    tmp_path: Path, settings: Settings, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / "raw" / name
    path.write_bytes(content)
    with pytest.raises(BadInputError) as raised:
        steps.load_bronze(path, settings)
    assert str(raised.value) == message
    assert raised.value.retryable is False
    assert path.read_bytes() == content


def test_a_missing_path_and_a_folder_are_refused(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(BadInputError, match=r"nowhere\.csv: no such file$"):
        steps.load_bronze(tmp_path / "nowhere.csv", settings)
    with pytest.raises(BadInputError, match="raw: not a regular file$"):
        steps.load_bronze(tmp_path / "raw", settings)


def _load_and_mark_loaded(path: Path, settings: Settings) -> steps.BronzeReport:
    """Load a file's bronze rows and mark it loaded, as a finished run would."""
    report = steps.load_bronze(path, settings)
    with steps.warehouse_connection(settings) as connection:
        warehouse.mark_loaded(connection, report.file_id)
    return report


def _tables(settings: Settings, prefix: str) -> list[str]:
    with steps.warehouse_connection(settings) as connection:
        return [
            row[0]
            for row in connection.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'bronze' AND starts_with(table_name, ?)",
                [prefix],
            ).fetchall()
        ]


def test_a_file_utf8_at_its_head_and_latin1_further_on_loads_as_latin1(tmp_path: Path, settings: Settings) -> None:
    # DuckDB starts reading from the head's encoding while the file is hashed; the whole file decides.
    rows = [ROW] * 1000  # about 90 KB of ASCII, more than the head
    path = tmp_path / "late_latin1.csv"
    path.write_bytes(("\n".join([UCI_HEADER, *rows, ROW.replace("WHITE", "CAFÉ")]) + "\n").encode("latin-1"))
    assert reader.head_profile(path).encoding == "utf-8"
    report = steps.load_bronze(path, settings)
    with steps.warehouse_connection(settings) as connection:
        last = connection.execute("SELECT description FROM bronze.transactions WHERE row_number = 1001").fetchall()
    assert (report.encoding, report.bronze_rows, report.skipped) == ("latin-1", 1001, False)
    assert report.file_id == hashlib.sha256(path.read_bytes()).hexdigest()
    assert last == [("CAFÉ HANGING HEART T-LIGHT HOLDER",)]
    assert _tables(settings, "incoming_") == []


def test_loaded_content_under_another_name_is_skipped_and_nothing_is_written(
    tmp_path: Path, settings: Settings
) -> None:
    first = write_csv(tmp_path / "monday.csv", ROW, ROW_2)
    loaded = _load_and_mark_loaded(first, settings)
    again = tmp_path / "monday_copy.csv"  # another name: read while hashed, then found loaded
    again.write_bytes(first.read_bytes())
    report = steps.load_bronze(again, settings)
    with steps.warehouse_connection(settings) as connection:
        ledger = connection.execute("SELECT file_name, status FROM ops.files").fetchall()
    assert (report.skipped, report.file_id, report.bronze_rows) == (True, loaded.file_id, 2)
    assert ledger == [("monday.csv", "loaded")]
    assert _tables(settings, "") == [f"file_{loaded.file_id}"]


def test_a_file_with_a_loaded_files_name_and_size_is_hashed_first_and_loads_if_its_content_changed(
    tmp_path: Path, settings: Settings
) -> None:
    path = write_csv(tmp_path / "daily.csv", ROW, ROW_2)
    first = _load_and_mark_loaded(path, settings)
    repeat = steps.load_bronze(path, settings)
    write_csv(path, ROW, ROW_2.replace(",6,", ",7,"))  # same name, same size, other content
    changed = steps.load_bronze(path, settings)
    assert (repeat.skipped, repeat.file_id) == (True, first.file_id)
    assert (changed.skipped, changed.bronze_rows) == (False, 2)
    assert changed.file_id == hashlib.sha256(path.read_bytes()).hexdigest() != first.file_id
    assert sorted(_tables(settings, "")) == sorted([f"file_{first.file_id}", f"file_{changed.file_id}"])


def test_content_in_bronze_but_not_loaded_is_read_again_under_its_new_name(tmp_path: Path, settings: Settings) -> None:
    # A run that failed after bronze leaves the file's table; the same content under another name replaces it.
    first = steps.load_bronze(write_csv(tmp_path / "monday.csv", ROW, ROW_2), settings)
    again = tmp_path / "monday_again.csv"
    again.write_bytes((tmp_path / "monday.csv").read_bytes())
    report = steps.load_bronze(again, settings)
    with steps.warehouse_connection(settings) as connection:
        ledger = connection.execute("SELECT file_name, status, bronze_rows FROM ops.files").fetchall()
        rows = connection.execute("SELECT count(*) FROM bronze.transactions").fetchall()
    assert (report.skipped, report.file_id, report.bronze_rows) == (False, first.file_id, 2)
    assert ledger == [("monday_again.csv", "bronze", 2)]
    assert rows == [(2,)]
    assert _tables(settings, "") == [f"file_{first.file_id}"]


def test_a_large_file_with_no_data_rows_fails_in_the_ledger_and_leaves_no_table(
    tmp_path: Path, settings: Settings
) -> None:
    # Longer than the head, so only the read finds that no row holds data.
    path = tmp_path / "blank.csv"
    path.write_text(UCI_HEADER + "\n" * 70_000)
    with pytest.raises(BadInputError, match=r"^blank\.csv: the file has a header but no data rows$"):
        steps.load_bronze(path, settings)
    with steps.warehouse_connection(settings) as connection:
        ledger = connection.execute("SELECT file_id, status, retryable FROM ops.files").fetchall()
    assert ledger == [(hashlib.sha256(path.read_bytes()).hexdigest(), "failed", False)]
    assert _tables(settings, "") == []


def test_a_gzip_file_of_several_members_is_read_through_every_member(tmp_path: Path, settings: Settings) -> None:
    # `cat monday.csv.gz tuesday.csv.gz` is a valid gzip file; here only the second member is Latin-1.
    path = tmp_path / "week.csv.gz"
    first = gzip.compress(f"{UCI_HEADER}\n{ROW}\n".encode())
    second = gzip.compress(f"{ROW_2.replace('HAND', 'MAIN DÉCO')}\n".encode("latin-1"))
    path.write_bytes(first + second)
    report = steps.load_bronze(path, settings)
    with steps.warehouse_connection(settings) as connection:
        descriptions = connection.execute("SELECT description FROM bronze.transactions ORDER BY row_number").fetchall()
    assert (report.encoding, report.bronze_rows) == ("latin-1", 2)
    assert descriptions == [("WHITE HANGING HEART T-LIGHT HOLDER",), ("MAIN DÉCO WARMER UNION JACK",)]
