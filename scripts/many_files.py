"""What a warehouse's number of files costs each load: `bronze.transactions` is one view over a table per file, made
again on every load, and DuckDB binds every part of it each time it is made or read.

For each count of files, a fresh warehouse gets that many bronze tables of ten rows, each with its ledger row, and
the script prints the median seconds of refreshing the view after one more file's table (as its load does), of
counting the view's rows and of counting one file's rows. The rows do not matter here, only how many tables the
view names.

    python scripts/many_files.py [--files 250 1000 2000] [--repeats 3] [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from medallion.warehouse.bronze import BRONZE_COLUMNS, SOURCE_SHEET, bronze_table, refresh_bronze_view  # noqa: E402
from medallion.warehouse.schema import migrate  # noqa: E402


def warehouse_of(path: Path, files: int) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(str(path))
    migrate(connection)
    connection.execute("BEGIN")
    for number in range(files):
        add_file(connection, number)
    connection.execute("COMMIT")
    refresh_bronze_view(connection)
    return connection


def add_file(connection: duckdb.DuckDBPyConnection, number: int) -> str:
    """A bronze table of ten rows and its ledger row, as file `number`; returns its id."""
    file_id = hashlib.sha256(f"file {number}".encode()).hexdigest()
    columns = ", ".join(f"'x' AS {column}" for column in (*BRONZE_COLUMNS, SOURCE_SHEET))
    connection.execute(f"CREATE TABLE {bronze_table(file_id)} AS SELECT {columns} FROM range(10)")  # noqa: S608
    connection.execute(
        "INSERT INTO ops.files (file_id, file_name, status, bronze_at) VALUES (?, ?, 'loaded', now())",
        [file_id, f"file_{number}.csv"],
    )
    return file_id


def median_seconds(action: Callable[[], object], repeats: int) -> float:
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def view_figures(
    connection: duckdb.DuckDBPyConnection, files: int, one: str, repeats: int
) -> tuple[float, float, float]:
    """Seconds of refreshing `bronze.transactions` after one more file, of counting its rows, and of counting file
    `one`'s rows."""
    refreshes = []
    for number in range(files, files + repeats):
        add_file(connection, number)
        started = time.perf_counter()
        refresh_bronze_view(connection)
        refreshes.append(time.perf_counter() - started)

    def count_every_row() -> object:
        return connection.execute("SELECT count(*) FROM bronze.transactions").fetchall()

    def count_one_file() -> object:
        return connection.execute("SELECT count(*) FROM bronze.transactions WHERE file_id = ?", [one]).fetchall()

    return (
        statistics.median(refreshes),
        median_seconds(count_every_row, repeats),
        median_seconds(count_one_file, repeats),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, nargs="+", default=[250, 1000, 2000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work-dir", type=Path, default=None)
    arguments = parser.parse_args()
    work = Path(tempfile.mkdtemp(dir=arguments.work_dir))
    try:
        print("| files | refresh the view after one more file | count every row | count one file's rows |")
        print("| --- | --- | --- | --- |")
        for files in arguments.files:
            connection = warehouse_of(work / f"files_{files}.duckdb", files)
            one = hashlib.sha256(f"file {files // 2}".encode()).hexdigest()
            remake, every, single = view_figures(connection, files, one, arguments.repeats)
            connection.close()
            print(f"| {files:,} | {remake:.2f} s | {every:.2f} s | {single:.2f} s |", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
