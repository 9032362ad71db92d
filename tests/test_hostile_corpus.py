"""A corpus of hostile input files, each run through the real `medallion run` in-process.

Every file either loads with bronze holding every record (counted here with Python's csv module, or fastexcel for
workbooks) and each ledger row adding up, or is refused with one line naming the file and what is wrong. Either
way the input is left as it was, gold stays finite and nothing prints a traceback. The files are written by the
test, so no binary fixture is committed.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import os
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Literal

import duckdb
import fastexcel
import pytest
import xlsxwriter
from conftest import UCI_HEADER

from medallion.cli import main
from medallion.names import printable

pytestmark = pytest.mark.usefixtures("prefect_harness")

Outcome = Literal["load", "refuse", "either", "settings"]
HEADER = UCI_HEADER.split(",")


def retail_row(number: int, *, quantity: str = "6", date: str = "12/1/2010 8:26", price: str = "2.55") -> list[str]:
    """One UCI row; rows with different numbers are different invoices, so none is a duplicate of another."""
    return [str(536365 + number), "85123A", f"WHITE HEART {number}", quantity, date, price, "17850", "United Kingdom"]


def csv_text(rows: list[list[str]], *, delimiter: str = ",", newline: str = "\n", header: list[str] = HEADER) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator=newline).writerows([header, *rows])
    return buffer.getvalue()


def csv_records(text: str, delimiter: str = ",") -> list[list[str]]:
    """Data records of decoded CSV text by Python's csv module; a cut-off or malformed line is a record too."""
    limit = csv.field_size_limit(sys.maxsize)
    try:
        header, *records = (
            record for record in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) if record
        )
    finally:
        csv.field_size_limit(limit)
    return [record[-len(HEADER) :] if len(record) == len(header) else record for record in records]


def workbook_records(path: Path) -> list[list[str]]:
    """Data rows of every sheet whose first row is the UCI header, read by fastexcel."""
    workbook = fastexcel.read_excel(path)
    records: list[list[str]] = []
    for name in workbook.sheet_names:
        try:
            sheet = workbook.load_sheet(name, header_row=None).to_polars()
        except Exception:  # fastexcel refuses a sheet without cells: it holds no records
            continue
        if sheet.height and [str(value) for value in sheet.row(0)] == HEADER:
            records += [[str(value) for value in row] for row in sheet.rows()[1:]]
    return records


@dataclass(frozen=True)
class Built:
    path: Path  # what the CLI is given
    records: list[list[str]] | None  # the records an independent reader finds; None for a file that must be refused
    watched: tuple[Path, ...] = ()  # further paths that must not change (a link's target)


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[Path], Built]
    outcome: Outcome
    env: dict[str, str] = field(default_factory=dict)


def text_file(
    name: str, text: str, *, encoding: str = "utf-8", delimiter: str = ",", compress: bool = False
) -> Callable[[Path], Built]:
    """A builder of a file holding `text` in `encoding`, counted from the bytes written, decoded again."""

    def build(folder: Path) -> Built:
        data = text.encode(encoding)
        path = folder / name
        path.write_bytes(gzip.compress(data) if compress else data)
        decoded = (gzip.decompress(path.read_bytes()) if compress else path.read_bytes()).decode(encoding)
        return Built(path, csv_records(decoded.removeprefix("\ufeff"), delimiter))

    return build


def raw_file(name: str, data: bytes) -> Callable[[Path], Built]:
    def build(folder: Path) -> Built:
        (folder / name).write_bytes(data)
        return Built(folder / name, None)

    return build


ROWS = [retail_row(number) for number in range(3)]
CAFE_ROWS = [[*row[:2], f"CAFÉ {row[2]}", *row[3:]] for row in ROWS]


def mixed_encoding(folder: Path) -> Built:
    """UTF-8 throughout but for one line written in Latin-1."""
    lines = csv_text(CAFE_ROWS).splitlines(keepends=True)
    data = b"".join(line.encode("latin-1" if number == 2 else "utf-8") for number, line in enumerate(lines))
    path = folder / "mixed.csv"
    path.write_bytes(data)
    return Built(path, csv_records("".join(utf8_else_latin1(line) for line in data.splitlines(keepends=True))))


def utf8_else_latin1(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line.decode("latin-1")


def many_rows(kilobytes: int) -> list[list[str]]:
    return [retail_row(number) for number in range(kilobytes * 1024 // 70)]


def nul_at(line_number: int | None, kilobytes: int, name: str) -> Callable[[Path], Built]:
    """A file of about `kilobytes` with one NUL byte in a field of data row `line_number` (None: the last row)."""
    rows = many_rows(kilobytes)
    at = len(rows) - 1 if line_number is None else line_number
    rows[at] = [rows[at][0] + "\x00", *rows[at][1:]]
    return raw_file(name, csv_text(rows).encode())


def nul_gzip(folder: Path) -> Built:
    rows = many_rows(70)
    rows[-1] = [rows[-1][0] + "\x00", *rows[-1][1:]]
    return raw_file("nul_late.csv.gz", gzip.compress(csv_text(rows).encode()))(folder)


def wide_header(folder: Path) -> Built:
    notes = [f"note_{number:05d}" for number in range(6500)]  # about 70 KB of header before the retail columns
    text = csv_text([[""] * len(notes) + row for row in ROWS], header=[*notes, *HEADER])
    return text_file("wide_header.csv", text)(folder)


def cut_off_last_line() -> str:
    text = csv_text(ROWS)
    return text[: text.rindex(",2.55,")]


def workbook(name: str, sheets: list[tuple[str, list[list[str]]]]) -> Callable[[Path], Built]:
    def build(folder: Path) -> Built:
        path = folder / name
        with xlsxwriter.Workbook(str(path)) as book:
            for sheet_name, rows in sheets:
                sheet = book.add_worksheet(sheet_name)
                for row_number, row in enumerate(rows):
                    sheet.write_row(row_number, 0, row)
        return Built(path, workbook_records(path))

    return build


def multi_member_gzip(folder: Path) -> Built:
    first, second = csv_text(ROWS), csv_text([retail_row(9)]).split("\n", 1)[1]
    path = folder / "members.csv.gz"
    path.write_bytes(gzip.compress(first.encode()) + gzip.compress(second.encode()))
    return Built(path, csv_records(gzip.decompress(path.read_bytes()).decode()))


def truncated_gzip(folder: Path) -> Built:
    whole = gzip.compress(csv_text(many_rows(20)).encode())
    return raw_file("cut.csv.gz", whole[: len(whole) * 2 // 3])(folder)


def link_to_passwd(folder: Path) -> Built:
    path = folder / "passwd.csv"
    path.symlink_to("/etc/passwd")
    return Built(path, None, (Path("/etc/passwd"),))


def fifo(folder: Path) -> Built:
    path = folder / "pipe.csv"
    os.mkfifo(path)
    return Built(path, None)


def directory(folder: Path) -> Built:
    path = folder / "x.csv"
    path.mkdir()
    (path / "inside.csv").write_text(csv_text(ROWS))
    return Built(path, None, (path / "inside.csv",))


def rows_with(**fields: str) -> list[list[str]]:
    return [retail_row(0), retail_row(1, **fields), retail_row(2)]


CASES = [
    # encodings
    Case("utf8", text_file("utf8.csv", csv_text(CAFE_ROWS)), "load"),
    Case("utf8_bom", text_file("bom.csv", "\ufeff" + csv_text(CAFE_ROWS)), "load"),
    Case("latin1", text_file("latin1.csv", csv_text(CAFE_ROWS), encoding="latin-1"), "load"),
    Case("utf8_with_one_latin1_line", mixed_encoding, "load"),
    Case("utf16", text_file("utf16.csv", csv_text(CAFE_ROWS), encoding="utf-16"), "either"),
    # line endings
    Case("lf", text_file("lf.csv", csv_text(ROWS)), "load"),
    Case("crlf", text_file("crlf.csv", csv_text(ROWS, newline="\r\n")), "load"),
    Case("lone_cr", text_file("cr.csv", csv_text(ROWS, newline="\r")), "load"),
    Case("mixed_line_endings", text_file("mixed_ends.csv", "\r\n".join(csv_text(ROWS).split("\n", 2))), "load"),
    Case("quoted_newline", text_file("quoted.csv", csv_text([[*ROWS[0][:2], "TWO\nLINES", *ROWS[0][3:]]])), "load"),
    # NUL bytes
    Case("nul_near_the_top", nul_at(1, 1, "nul_top.csv"), "refuse"),
    Case("nul_past_64_kib", nul_at(None, 70, "nul_late.csv"), "refuse"),
    # widths
    Case("header_wider_than_64_kib", wide_header, "load"),
    Case("field_of_1_mb", text_file("wide_field.csv", csv_text([[*ROWS[0][:2], "X" * 2**20, *ROWS[0][3:]]])), "load"),
    Case("a_field_too_many", text_file("extra.csv", csv_text([ROWS[0], [*ROWS[1], "extra"], ROWS[2]])), "load"),
    Case("a_field_too_few", text_file("short.csv", csv_text([ROWS[0], ROWS[1][:6], ROWS[2]])), "load"),
    Case("cut_off_last_line", text_file("cut.csv", cut_off_last_line()), "load"),
    # numbers
    Case(
        "decimal_comma",
        text_file("comma.csv", csv_text(rows_with(price="1.234,50"), delimiter=";"), delimiter=";"),
        "load",
    ),
    Case("quoted_decimal_comma", text_file("quoted_comma.csv", csv_text(rows_with(price="1.234,50"))), "load"),
    Case("price_1e308", text_file("huge_price.csv", csv_text(rows_with(price="1e308", quantity="10"))), "load"),
    Case(
        "inf_and_nan",
        text_file(
            "inf.csv",
            csv_text([retail_row(0, price="inf"), retail_row(1, quantity="nan"), retail_row(2, price="-inf")]),
        ),
        "load",
    ),
    Case("negative", text_file("negative.csv", csv_text(rows_with(quantity="-12", price="-3.5"))), "load"),
    Case("huge_quantity", text_file("many.csv", csv_text(rows_with(quantity="99999999999999999999"))), "load"),
    # dates
    Case("iso_dates", text_file("iso.csv", csv_text(rows_with(date="2010-12-01T08:26:00.000"))), "load"),
    Case("us_dates", text_file("us.csv", csv_text(rows_with(date="12/13/2010 8:26"))), "load"),
    Case("european_dates", text_file("eu.csv", csv_text(rows_with(date="13.01.11"))), "load"),
    Case("two_digit_years", text_file("yy.csv", csv_text(rows_with(date="1/13/11 8:26"))), "load"),
    Case(
        "impossible_dates",
        text_file(
            "impossible.csv",
            csv_text(
                [
                    retail_row(0, date="2010-02-30 10:00:00"),
                    retail_row(1, date="2010-13-45 10:00:00"),
                    retail_row(2, date="2010-12-01 10:00:00"),
                ]
            ),
        ),
        "either",
    ),
    # workbooks
    Case(
        "workbook_two_sheets",
        workbook("two.xlsx", [("Dec", [HEADER, *ROWS]), ("Jan", [HEADER, retail_row(7)])]),
        "load",
    ),
    Case("workbook_empty_first_sheet", workbook("empty_first.xlsx", [("Notes", []), ("Dec", [HEADER, *ROWS])]), "load"),
    Case(
        "workbook_sheet_with_another_header",
        workbook("other.xlsx", [("Dec", [HEADER, *ROWS]), ("Notes", [["note", "by"], ["checked", "me"]])]),
        "refuse",
    ),
    # compression
    Case("gzip", text_file("plain.csv.gz", csv_text(ROWS), compress=True), "load"),
    Case("truncated_gzip", truncated_gzip, "refuse"),
    Case("gzip_of_several_members", multi_member_gzip, "load"),
    # names
    Case("name_with_spaces", text_file("my sales file.csv", csv_text(ROWS)), "load"),
    Case("unicode_name", text_file("ventes_été_☕.csv", csv_text(ROWS)), "load"),
    Case("newline_in_name", text_file("forged\nmedallion: ok.csv", csv_text(ROWS)), "load"),
    Case("leading_dash", text_file("-rf.csv", csv_text(ROWS)), "load"),
    # links and special files
    Case("symlink_to_etc_passwd", link_to_passwd, "refuse"),
    Case("fifo", fifo, "refuse"),
    Case("directory_named_x_csv", directory, "refuse"),
    # empty and wrong
    Case("empty", raw_file("empty.csv", b""), "refuse"),
    Case("header_only", raw_file("header.csv", (UCI_HEADER + "\n").encode()), "refuse"),
    Case("wrong_columns", raw_file("columns.csv", b"a,b,c\n1,2,3\n"), "refuse"),
    # more of the same families
    Case("unknown_country", text_file("atlantis.csv", csv_text([*ROWS[:2], [*ROWS[2][:7], "Atlantis"]])), "load"),
    Case("ambiguous_number_alone", text_file("ambiguous.csv", csv_text(rows_with(price="1,234"))), "load"),
    Case("cut_off_inside_quotes", text_file("cut_quoted.csv", csv_text(ROWS) + '536399,85123A,"WHITE HEA'), "load"),
    Case("gzip_cut_off_last_line", text_file("cut.csv.gz", cut_off_last_line(), compress=True), "load"),
    Case("gzip_lone_cr", text_file("cr.csv.gz", csv_text(ROWS, newline="\r"), compress=True), "load"),
    Case("gzip_nul_past_64_kib", nul_gzip, "refuse"),
    Case("tab_separated", text_file("tabs.tsv", csv_text(ROWS, delimiter="\t"), delimiter="\t"), "load"),
    Case("pipe_separated_txt", text_file("pipes.txt", csv_text(ROWS, delimiter="|"), delimiter="|"), "load"),
    Case("exact_duplicates", text_file("twice.csv", csv_text([ROWS[0], ROWS[0], ROWS[1]])), "load"),
    Case("whitespace_only", raw_file("blank.csv", b"   \n\n"), "refuse"),
    Case("bom_only", raw_file("bom_only.csv", "\ufeff".encode()), "refuse"),
    Case("csv_named_xlsx", raw_file("fake.xlsx", csv_text(ROWS).encode()), "refuse"),
    Case(
        "invalid_utf8_without_nul",
        text_file("noise.csv", csv_text([*ROWS, [*ROWS[0][:2], "\xff\xfe\x80\x81", *ROWS[0][3:]]]), encoding="latin-1"),
        "either",
    ),
    # settings
    Case("weight_inf", text_file("weights.csv", csv_text(ROWS)), "settings", {"QUALITY_WEIGHT_VALIDITY": "inf"}),
]


def snapshot(path: Path) -> tuple[object, ...]:
    """What must not change: a link itself, a special file's kind and time, a regular file's bytes and time."""
    status = os.lstat(path)
    if path.is_symlink():
        return ("link", os.readlink(path), status.st_mtime_ns)
    if path.is_dir():
        return ("directory", sorted(os.listdir(path)), status.st_mtime_ns)
    if not path.is_file():
        return ("special", status.st_mode, status.st_mtime_ns)
    return ("file", path.read_bytes(), status.st_mtime_ns)


class FifoWatch:
    """Notices (and ends by opening the other side) any read of a named pipe, so a reader never hangs the suite."""

    def __init__(self, path: Path) -> None:
        self.path, self.opened, self._stop = path, False, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            try:
                descriptor = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # no reader: the usual case
                continue
            self.opened = True
            os.close(descriptor)

    def __enter__(self) -> FifoWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def warehouse_rows(database: Path, query: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.execute(query).fetchall()


def assert_gold_finite(database: Path) -> None:
    if not database.exists():
        return
    tables = warehouse_rows(
        database, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'gold' AND table_name = 'kpis'"
    )
    if tables[0][0] == 0:
        return
    for row in warehouse_rows(database, "SELECT * FROM gold.kpis"):
        for value in row:
            if isinstance(value, float | Decimal) and not isinstance(value, bool):
                assert math.isfinite(value), f"gold.kpis holds {row}"


def assert_loaded(database: Path, records: list[list[str]]) -> None:
    """Bronze holds every record, each whole record with the same text, and every ledger row adds up."""
    assert warehouse_rows(database, "SELECT count(*) FROM bronze.transactions") == [(len(records),)]
    whole = sorted(tuple(record) for record in records if len(record) == len(HEADER))
    assert sorted(warehouse_rows(database, BRONZE_FIELDS)) == whole
    ledger = warehouse_rows(
        database,
        "SELECT file_name, bronze_rows, silver_rows, rejected_rows, duplicate_rows, overlap_rows FROM ops.files",
    )
    assert ledger, "a loaded file has a ledger row"
    for name, *counts in ledger:
        assert all(isinstance(count, int) for count in counts), f"{name!r} lacks a count: {ledger}"
        bronze, silver, rejected, duplicates, overlaps = (int(str(count)) for count in counts)
        assert bronze == silver + rejected + duplicates + overlaps, f"{name!r} does not add up: {ledger}"
    assert sum(int(str(row[1])) for row in ledger) == len(records)


BRONZE_FIELDS = """SELECT invoice_no, stock_code, description, quantity, invoice_date, unit_price, customer_id, country
                   FROM bronze.transactions WHERE parse_error IS NULL"""


@pytest.fixture
def corpus_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh warehouse, gold export and staging folder under tmp_path; the input folder is returned."""
    for name, value in {
        "WAREHOUSE_PATH": tmp_path / "warehouse.duckdb",
        "GOLD_EXPORT_PATH": tmp_path / "gold",
        "STAGING_PATH": tmp_path / "staging",
        "RAW_DATA_PATH": tmp_path / "raw",
        "PROCESSED_PATH": tmp_path / "processed",
    }.items():
        monkeypatch.setenv(name, str(value))
    monkeypatch.setenv("ENABLE_EXTERNAL_ENRICHMENT", "false")
    (tmp_path / "input").mkdir()
    yield tmp_path / "input"


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_hostile_file_loads_whole_or_is_refused_in_one_line(
    case: Case, corpus_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    built = case.build(corpus_env)
    watched = (built.path, *built.watched)
    before = [snapshot(path) for path in watched]
    if built.path.is_fifo():
        with FifoWatch(built.path) as watch:
            code = main(["run", str(built.path)])
        assert not watch.opened, "the named pipe was opened for reading"
    else:
        code = main(["run", str(built.path)])
    out, err = capsys.readouterr()

    assert "Traceback" not in out + err
    assert [snapshot(path) for path in watched] == before, "the input changed"
    database = tmp_path / "warehouse.duckdb"
    assert_gold_finite(database)
    if case.outcome == "settings":
        assert (code, err.count("\n"), out) == (2, 1, "")
        assert err.startswith("medallion: invalid setting " + next(iter(case.env)))
        return
    allowed = {"load": (0,), "refuse": (1,), "either": (0, 1)}[case.outcome]
    assert code in allowed, f"exit {code}\nstdout: {out}\nstderr: {err}"
    if code == 0:
        assert built.records is not None, "a file that must be refused was loaded"
        assert err == ""
        assert_loaded(database, built.records)
    else:
        assert err.count("\n") == 1 and err.endswith("\n"), f"not one line: {err!r}"
        assert err.startswith("medallion: ") and printable(built.path.name) in err, err
        if built.watched == (Path("/etc/passwd"),):
            first_line = Path("/etc/passwd").read_text().splitlines()[0]
            assert first_line not in out + err, "the link's target was shown"
