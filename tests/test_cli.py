"""The `medallion` command: a summary on success, one clear line and a non-zero exit on bad input."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SAMPLE_CSV, UCI_HEADER

from medallion.cli import main

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_run_prints_a_summary_and_status_shows_the_ledger(
    warehouse_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = Path(shutil.copy(SAMPLE_CSV, tmp_path / "raw" / "sample.csv"))
    assert main(["run", str(source)]) == 0
    out = capsys.readouterr().out
    assert "sample.csv: loaded" in out
    assert "bronze            5,076 rows" in out
    assert "duplicates          117 rows removed" in out
    assert f"warehouse: {warehouse_env['WAREHOUSE_PATH']}" in out
    assert main(["run", str(source)]) == 0
    assert "already loaded" in capsys.readouterr().out
    assert main(["status"]) == 0
    status = capsys.readouterr().out
    assert "sample.csv" in status and "loaded" in status
    assert source.exists(), "the CLI leaves the file where it was"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "medallion: empty.csv: file is empty\n"),
        ("binary.csv", b"\x00\x01\x02PK", "medallion: binary.csv: binary content, not a text CSV file\n"),
        (
            "header.csv",
            (UCI_HEADER + "\n").encode(),
            "medallion: header.csv: the file has a header but no data rows\n",
        ),
        (
            "columns.csv",
            b"a,b\n1,2\n",
            "medallion: columns.csv: missing column(s) InvoiceNo or Invoice, StockCode, "
            "Description, Quantity, InvoiceDate, UnitPrice or Price, CustomerID or "
            "Customer ID, Country; the header has 'a', 'b'\n",
        ),
    ],
)
def test_bad_input_gives_one_line_and_a_non_zero_exit(
    warehouse_env: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: bytes,
    message: str,
) -> None:
    path = tmp_path / "raw" / name
    path.write_bytes(content)
    assert main(["run", str(path)]) == 1
    assert capsys.readouterr().err.endswith(message)
    assert path.read_bytes() == content


def test_a_missing_path_and_a_bad_setting_are_one_line_errors(
    warehouse_env: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert main(["run", str(tmp_path / "nope.csv")]) == 1
    assert capsys.readouterr().err == f"medallion: {tmp_path / 'nope.csv'}: no such file\n"
    monkeypatch.setenv("QUALITY_ALERT_THRESHOLD", "lots")
    assert main(["status"]) == 2
    assert capsys.readouterr().err.startswith("medallion: invalid setting QUALITY_ALERT_THRESHOLD:")


def test_status_reads_the_warehouse_while_another_process_reads_it(
    warehouse_env: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = Path(shutil.copy(SAMPLE_CSV, tmp_path / "raw" / "sample.csv"))
    assert main(["run", str(source)]) == 0
    capsys.readouterr()
    # A reader in another process locks out writers, not other readers: a status that opened the warehouse
    # writable would find it busy at once.
    monkeypatch.setenv("WAREHOUSE_LOCK_TIMEOUT", "0")
    reader = subprocess.Popen(
        [sys.executable, "-c", HOLD_READ_ONLY, warehouse_env["WAREHOUSE_PATH"]],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline() == "holding\n"
        assert main(["status"]) == 0
    finally:
        reader.communicate("")
    assert "sample.csv" in capsys.readouterr().out


HOLD_READ_ONLY = """
import sys, duckdb
connection = duckdb.connect(sys.argv[1], read_only=True)
print("holding", flush=True)
sys.stdin.read()
"""
