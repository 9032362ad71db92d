"""Reading the layouts real files come in, and refusing bad files with an exact error."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import polars as pl
import pytest
from conftest import SAMPLE_CSV, UCI_HEADER, write_csv

from medallion import reader
from medallion.errors import BadInputError
from medallion.reader.content import CHUNK_BYTES

ROW = "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850,United Kingdom"
ROW_2 = "536366,22633,HAND WARMER UNION JACK,6,12/1/2010 8:28,1.85,17850,United Kingdom"


def raw_rows(profile: reader.FileProfile, staging: Path) -> pl.DataFrame:
    """Every data row of a file as the bronze step reads it when DuckDB does not: Polars, else the tolerant reader."""
    with reader.readable_text(profile, staging) as text_path:
        try:
            return pl.concat(list(reader.row_batches(profile, text_path, batch_rows=None)))
        except reader.TolerantParseNeeded:
            return pl.concat(list(reader.row_batches(profile, text_path, batch_rows=None, tolerant=True)))


def canonical_rows(path: Path, tmp_path: Path) -> pl.DataFrame:
    return raw_rows(reader.profile_file(path), tmp_path / "staging")


def test_the_downloaded_layout_maps_its_columns_and_keeps_the_index(tmp_path: Path) -> None:
    profile = reader.profile_file(SAMPLE_CSV)
    rows = raw_rows(profile, tmp_path)
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
    rows = raw_rows(profile, tmp_path)
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
    rows = raw_rows(profile, tmp_path / "staging")
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
    lines = (UCI_HEADER + "\n").encode() + line * (CHUNK_BYTES // len(line))
    lines = lines[: lines.rfind(b"\n", 0, CHUNK_BYTES - 1) + 1]
    padding = b"x" * (CHUNK_BYTES - 1 - len(lines))  # puts the first byte of `tail` last in the first chunk
    path = tmp_path / "long.csv"
    path.write_bytes(lines + padding + tail + b"\n" + line * 3)
    assert reader.profile_file(path).encoding == encoding


def test_gzip_files_are_read_and_identified_by_their_own_bytes(tmp_path: Path) -> None:
    plain = write_csv(tmp_path / "sales.csv", ROW, ROW_2)
    packed = tmp_path / "sales.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    profile = reader.profile_file(packed)
    assert profile.file_id == hashlib.sha256(packed.read_bytes()).hexdigest()
    assert raw_rows(profile, tmp_path / "staging")["invoice_no"].to_list() == ["536365", "536366"]


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
        "picture.csv: binary content, not a text CSV file (a NUL byte on line 3)",
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
        "sales.json: unsupported file type (expected one of .csv, .csv.gz, .tsv, .tsv.gz, .txt, .txt.gz, .xlsx)",
    ),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD_FILES, ids=[case[0] for case in BAD_FILES])
def test_bad_files_are_refused_with_the_exact_error_from_their_head_and_whole(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    for profile in (reader.head_profile, reader.profile_file):
        with pytest.raises(BadInputError) as raised:
            profile(path)
        assert str(raised.value) == message
        assert raised.value.retryable is False


@pytest.mark.parametrize("name", ["sales.tsv", "sales.tsv.gz", "sales.txt.gz"])
def test_every_kind_of_file_kinds_is_read(tmp_path: Path, name: str) -> None:
    content = ("\n".join([UCI_HEADER, ROW, ROW_2]) + "\n").replace(",", "\t").encode()
    path = tmp_path / name
    path.write_bytes(gzip.compress(content) if name.endswith(".gz") else content)
    profile = reader.profile_file(path)
    assert (profile.delimiter, profile.compressed) == ("\t", name.endswith(".gz"))
    assert canonical_rows(path, tmp_path)["invoice_no"].to_list() == ["536365", "536366"]
