"""How the bronze step reads a file through the reader: refusals that keep the file and say why, repeats found by
content, and the hostile files that reach DuckDB's own reader (lone CRs, wide headers, mixed encodings, NULs,
truncated gzip)."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import pytest
from conftest import UCI_HEADER, write_csv
from test_reader import BAD_FILES, ROW, ROW_2

from medallion import reader
from medallion.errors import BadInputError
from medallion.settings import Settings
from medallion.steps import BronzeReport, load_bronze
from medallion.warehouse import Warehouse, ledger


def bronze_rows(warehouse: Warehouse, file_id: str) -> list[tuple[object, ...]]:
    with warehouse.connection() as connection:
        return connection.execute(
            """SELECT row_number, invoice_no, description, parse_error FROM bronze.transactions
               WHERE file_id = ? ORDER BY row_number""",
            [file_id],
        ).fetchall()


def ledger_rows(warehouse: Warehouse) -> list[tuple[object, ...]]:
    with warehouse.connection() as connection:
        return connection.execute("SELECT file_name, status, bronze_rows FROM ops.files").fetchall()


def _tables(warehouse: Warehouse, prefix: str) -> list[str]:
    with warehouse.connection() as connection:
        return [
            row[0]
            for row in connection.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'bronze' AND starts_with(table_name, ?)",
                [prefix],
            ).fetchall()
        ]


@pytest.mark.parametrize(("name", "content", "message"), BAD_FILES, ids=[case[0] for case in BAD_FILES])
def test_bad_files_fail_with_the_exact_error_and_stay_where_they_were(
    tmp_path: Path, settings: Settings, warehouse: Warehouse, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / "raw" / name
    path.write_bytes(content)
    with pytest.raises(BadInputError) as raised:
        load_bronze(warehouse, path, settings.pipeline)
    assert str(raised.value) == message
    assert raised.value.retryable is False
    assert path.read_bytes() == content


def test_a_missing_path_and_a_folder_are_refused(tmp_path: Path, settings: Settings, warehouse: Warehouse) -> None:
    with pytest.raises(BadInputError, match=r"nowhere\.csv: no such file$"):
        load_bronze(warehouse, tmp_path / "nowhere.csv", settings.pipeline)
    with pytest.raises(BadInputError, match=r"raw: not a regular file \(a directory\); only regular files are read$"):
        load_bronze(warehouse, tmp_path / "raw", settings.pipeline)


def _load_and_mark_loaded(warehouse: Warehouse, path: Path, settings: Settings) -> BronzeReport:
    """Load a file's bronze rows and mark it loaded, as a finished run would."""
    report = load_bronze(warehouse, path, settings.pipeline)
    with warehouse.connection() as connection:
        ledger.mark_loaded(connection, report.file_id)
    return report


def test_a_file_utf8_at_its_head_and_latin1_further_on_loads_as_latin1(
    tmp_path: Path, settings: Settings, warehouse: Warehouse
) -> None:
    # DuckDB starts reading from the head's encoding while the file is hashed; the whole file decides.
    rows = [ROW] * 1000  # about 90 KB of ASCII, more than the head
    path = tmp_path / "late_latin1.csv"
    path.write_bytes(("\n".join([UCI_HEADER, *rows, ROW.replace("WHITE", "CAFÉ")]) + "\n").encode("latin-1"))
    assert reader.head_profile(path).encoding == "utf-8"
    report = load_bronze(warehouse, path, settings.pipeline)
    assert (report.encoding, report.bronze_rows, report.skipped) == ("latin-1", 1001, False)
    assert report.file_id == hashlib.sha256(path.read_bytes()).hexdigest()
    assert bronze_rows(warehouse, report.file_id)[-1][2] == "CAFÉ HANGING HEART T-LIGHT HOLDER"
    assert _tables(warehouse, "incoming_") == []


def test_loaded_content_under_another_name_is_skipped_and_nothing_is_written(
    tmp_path: Path, settings: Settings, warehouse: Warehouse
) -> None:
    first = write_csv(tmp_path / "monday.csv", ROW, ROW_2)
    loaded = _load_and_mark_loaded(warehouse, first, settings)
    again = tmp_path / "monday_copy.csv"  # another name: read while hashed, then found loaded
    again.write_bytes(first.read_bytes())
    report = load_bronze(warehouse, again, settings.pipeline)
    with warehouse.connection() as connection:
        statuses = connection.execute("SELECT file_name, status FROM ops.files").fetchall()
    assert (report.skipped, report.file_id, report.bronze_rows) == (True, loaded.file_id, 2)
    assert statuses == [("monday.csv", "loaded")]
    assert _tables(warehouse, "") == [f"file_{loaded.file_id}"]


def test_a_file_with_a_loaded_files_name_and_size_is_hashed_first_and_loads_if_its_content_changed(
    tmp_path: Path, settings: Settings, warehouse: Warehouse
) -> None:
    path = write_csv(tmp_path / "daily.csv", ROW, ROW_2)
    first = _load_and_mark_loaded(warehouse, path, settings)
    repeat = load_bronze(warehouse, path, settings.pipeline)
    write_csv(path, ROW, ROW_2.replace(",6,", ",7,"))  # same name, same size, other content
    changed = load_bronze(warehouse, path, settings.pipeline)
    assert (repeat.skipped, repeat.file_id) == (True, first.file_id)
    assert (changed.skipped, changed.bronze_rows) == (False, 2)
    assert changed.file_id == hashlib.sha256(path.read_bytes()).hexdigest() != first.file_id
    assert sorted(_tables(warehouse, "")) == sorted([f"file_{first.file_id}", f"file_{changed.file_id}"])


def test_content_in_bronze_but_not_loaded_is_read_again_under_its_new_name(
    tmp_path: Path, settings: Settings, warehouse: Warehouse
) -> None:
    # A run that failed after bronze leaves the file's table; the same content under another name replaces it.
    first = load_bronze(warehouse, write_csv(tmp_path / "monday.csv", ROW, ROW_2), settings.pipeline)
    again = tmp_path / "monday_again.csv"
    again.write_bytes((tmp_path / "monday.csv").read_bytes())
    report = load_bronze(warehouse, again, settings.pipeline)
    with warehouse.connection() as connection:
        rows = connection.execute("SELECT count(*) FROM bronze.transactions").fetchall()
    assert (report.skipped, report.file_id, report.bronze_rows) == (False, first.file_id, 2)
    assert ledger_rows(warehouse) == [("monday_again.csv", "bronze", 2)]
    assert rows == [(2,)]
    assert _tables(warehouse, "") == [f"file_{first.file_id}"]


def test_a_large_file_with_no_data_rows_fails_in_the_ledger_and_leaves_no_table(
    tmp_path: Path, settings: Settings, warehouse: Warehouse
) -> None:
    # Longer than the head, so only the read finds that no row holds data.
    path = tmp_path / "blank.csv"
    path.write_text(UCI_HEADER + "\n" * 70_000)
    with pytest.raises(BadInputError, match=r"^blank\.csv: the file has a header but no data rows$"):
        load_bronze(warehouse, path, settings.pipeline)
    with warehouse.connection() as connection:
        failures = connection.execute("SELECT file_id, status, retryable FROM ops.files").fetchall()
    assert failures == [(hashlib.sha256(path.read_bytes()).hexdigest(), "failed", False)]
    assert _tables(warehouse, "") == []


def test_a_gzip_file_of_several_members_is_read_through_every_member(
    tmp_path: Path, settings: Settings, warehouse: Warehouse
) -> None:
    # `cat monday.csv.gz tuesday.csv.gz` is a valid gzip file; here only the second member is Latin-1.
    path = tmp_path / "week.csv.gz"
    first = gzip.compress(f"{UCI_HEADER}\n{ROW}\n".encode())
    second = gzip.compress(f"{ROW_2.replace('HAND', 'MAIN DÉCO')}\n".encode("latin-1"))
    path.write_bytes(first + second)
    report = load_bronze(warehouse, path, settings.pipeline)
    descriptions = [row[2] for row in bronze_rows(warehouse, report.file_id)]
    assert (report.encoding, report.bronze_rows) == ("latin-1", 2)
    assert descriptions == ["WHITE HANGING HEART T-LIGHT HOLDER", "MAIN DÉCO WARMER UNION JACK"]


def test_a_file_with_lone_cr_line_endings_loads(tmp_path: Path, settings: Settings, warehouse: Warehouse) -> None:
    path = tmp_path / "raw" / "mac.csv"
    path.write_bytes(("\r".join([UCI_HEADER, ROW, ROW_2]) + "\r").encode())
    report = load_bronze(warehouse, path, settings.pipeline)
    assert [row[1:] for row in bronze_rows(warehouse, report.file_id)] == [
        ("536365", "WHITE HANGING HEART T-LIGHT HOLDER", None),
        ("536366", "HAND WARMER UNION JACK", None),
    ]


def test_a_header_wider_than_the_head_loads_every_column(
    tmp_path: Path, settings: Settings, warehouse: Warehouse
) -> None:
    notes = [f"note_{number:05d}" for number in range(8000)]
    header = ",".join([*notes, UCI_HEADER])
    path = write_csv(tmp_path / "raw" / "wide.csv", "," * len(notes) + ROW, header=header)
    report = load_bronze(warehouse, path, settings.pipeline)
    assert [row[1:3] for row in bronze_rows(warehouse, report.file_id)] == [
        ("536365", "WHITE HANGING HEART T-LIGHT HOLDER")
    ]


def test_a_truncated_gzip_file_past_the_head_is_refused_and_not_retried(
    tmp_path: Path, settings: Settings, warehouse: Warehouse
) -> None:
    # Larger than the head, so DuckDB starts reading it while it is hashed.
    rows = [ROW.replace("536365", str(536365 + number)) for number in range(40_000)]
    whole = gzip.compress(("\n".join([UCI_HEADER, *rows]) + "\n").encode())
    path = tmp_path / "raw" / "cut.csv.gz"
    path.write_bytes(whole[: len(whole) * 2 // 3])
    with pytest.raises(BadInputError) as raised:
        load_bronze(warehouse, path, settings.pipeline)
    assert str(raised.value) == "cut.csv.gz: truncated gzip file (its compressed data stops before the end)"
    assert raised.value.retryable is False
    assert _tables(warehouse, "") == []


def test_a_symlink_is_refused_without_a_word_of_its_target(
    tmp_path: Path, settings: Settings, warehouse: Warehouse
) -> None:
    target = tmp_path / "elsewhere" / "passwd"
    target.parent.mkdir()
    target.write_text("root:x:0:0:root:/root:/bin/bash\n")
    link = tmp_path / "raw" / "passwd.csv"
    link.symlink_to(target)
    with pytest.raises(BadInputError) as raised:
        load_bronze(warehouse, link, settings.pipeline)
    assert str(raised.value) == f"{link}: not a regular file (a symbolic link); only regular files are read"
    # The refusal is in the ledger, with no size and nothing of the target: the link is never followed.
    assert ledger_rows(warehouse) == [("passwd.csv", "failed", None)]
    with warehouse.connection() as connection:
        (error,) = connection.execute("SELECT error FROM ops.files").fetchone() or ("",)
    assert "root:" not in error


def test_a_utf8_file_with_a_latin1_line_past_the_head_keeps_both_spellings(
    tmp_path: Path, settings: Settings, warehouse: Warehouse
) -> None:
    cafe = ROW.replace("WHITE", "CAFÉ")
    path = tmp_path / "raw" / "mixed.csv"
    utf8 = "\n".join([UCI_HEADER, cafe, *[ROW] * 1000, cafe]) + "\n"  # more than the head
    path.write_bytes(utf8.encode() + (ROW_2.replace("HAND", "CAFÉ") + "\n").encode("latin-1"))
    report = load_bronze(warehouse, path, settings.pipeline)
    rows = bronze_rows(warehouse, report.file_id)
    assert (report.encoding, report.bronze_rows) == ("utf-8+latin-1", 1003)
    assert [rows[0][2], rows[-2][2], rows[-1][2]] == [
        "CAFÉ HANGING HEART T-LIGHT HOLDER",
        "CAFÉ HANGING HEART T-LIGHT HOLDER",
        "CAFÉ WARMER UNION JACK",
    ]


def test_a_nul_byte_past_the_head_refuses_the_file_as_one_near_the_top_does(
    tmp_path: Path, settings: Settings, warehouse: Warehouse
) -> None:
    for line in (3, 1502):
        rows = [ROW] * 2000
        rows[line - 2] = ROW.replace("536365", "5\x00")
        path = write_csv(tmp_path / "raw" / f"nul_{line}.csv", *rows)
        with pytest.raises(BadInputError) as raised:
            load_bronze(warehouse, path, settings.pipeline)
        assert str(raised.value) == f"nul_{line}.csv: binary content, not a text CSV file (a NUL byte on line {line})"
    assert _tables(warehouse, "") == []
    with warehouse.connection() as connection:
        assert connection.execute("SELECT count(*) FROM bronze.transactions").fetchall() == [(0,)]


def test_a_latin1_file_with_a_utf8_line_past_the_head_keeps_both_spellings(
    tmp_path: Path, settings: Settings, warehouse: Warehouse
) -> None:
    # DuckDB reads the Latin-1 head's way first; the whole file, mixed, is read again line by line.
    cafe = ROW.replace("WHITE", "CAFÉ")
    path = tmp_path / "raw" / "mixed.csv"
    latin1 = "\n".join([UCI_HEADER, cafe, *[ROW] * 1000]) + "\n"
    path.write_bytes(latin1.encode("latin-1") + (cafe + "\n").encode())
    assert reader.head_profile(path).encoding == "latin-1"
    report = load_bronze(warehouse, path, settings.pipeline)
    descriptions = [row[2] for row in bronze_rows(warehouse, report.file_id)]
    assert (report.encoding, report.bronze_rows) == ("utf-8+latin-1", 1002)
    assert descriptions[0] == descriptions[-1] == "CAFÉ HANGING HEART T-LIGHT HOLDER"
