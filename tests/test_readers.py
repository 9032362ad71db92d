"""The readers answer while another process holds the warehouse: from it when it opens, else from the exports."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from medallion.errors import ConfigurationError
from medallion.gold_export import export_gold
from medallion.readers import (
    LEDGER_EXPORT,
    LockHolder,
    QueryError,
    ReadSource,
    export_ledger,
    holder_in_message,
    ledger_rows,
    lock_holder,
    query,
)
from medallion.settings import Settings
from medallion.warehouse import Warehouse
from medallion.warehouse.ledger import file_ledger

# Opens the warehouse writable, says so, and keeps it until its stdin closes.
_HOLD = "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('holding', flush=True); sys.stdin.read()"
WAIT_S = 0.2


@contextmanager
def held_warehouse(path: Path) -> Iterator[subprocess.Popen[str]]:
    """A second process holding the DuckDB file at `path` for the block, as a run does."""
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        assert process.stdout.readline().strip() == "holding"
        yield process
    finally:
        process.stdin.close()
        process.wait(timeout=30)


def fill_warehouse(settings: Settings) -> None:
    """Two ledger rows (one loaded, one refused before bronze) and a small gold table."""
    with Warehouse(settings.pipeline) as warehouse, warehouse.connection() as connection:
        connection.execute(
            """INSERT INTO ops.files (file_id, file_name, status, bronze_rows, silver_rows, error, retryable,
                   started_at, finished_at)
               VALUES ('a1', 'good.csv', 'loaded', 3, 3, NULL, NULL, ?, ?),
                      ('b2', 'empty.csv', 'failed', NULL, NULL, 'the file is empty', false, ?, ?)""",
            [datetime(2024, 5, 1, 9), datetime(2024, 5, 1, 9, 1), datetime(2024, 5, 1, 10), datetime(2024, 5, 1, 10)],
        )
        connection.execute(
            "CREATE TABLE gold.sales_by_country AS SELECT * FROM (VALUES ('United Kingdom', 12.5), ('France', 3.0))"
            " AS t(country, net_revenue)"
        )


def export_everything(settings: Settings) -> None:
    """What the lead's run does after it commits: gold's exports and the ledger snapshot."""
    with Warehouse(settings.pipeline) as warehouse, warehouse.connection() as connection:
        export_gold(connection, settings.pipeline.gold_export_path)
        export_ledger(connection, settings.pipeline.gold_export_path)


def warehouse_ledger(settings: Settings) -> pl.DataFrame:
    with Warehouse(settings.pipeline, read_only=True) as warehouse, warehouse.connection() as connection:
        return file_ledger(connection)


def test_export_ledger_writes_ops_files_and_leaves_no_temporary_file(settings: Settings) -> None:
    fill_warehouse(settings)
    export_dir = settings.pipeline.gold_export_path
    export_everything(settings)
    # A second export replaces the first in place.
    export_everything(settings)
    snapshot = pl.read_parquet(export_dir / LEDGER_EXPORT)
    assert sorted(snapshot["file_name"].to_list()) == ["empty.csv", "good.csv"]
    assert "file_key" in snapshot.columns  # the whole table, not the status view of it
    assert sorted(path.name for path in export_dir.iterdir()) == [LEDGER_EXPORT, "sales_by_country.parquet"]


def test_export_ledger_under_a_file_names_the_setting(settings: Settings, tmp_path: Path) -> None:
    fill_warehouse(settings)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with Warehouse(settings.pipeline) as warehouse, warehouse.connection() as connection:
        with pytest.raises(ConfigurationError, match="GOLD_EXPORT_PATH"):
            export_ledger(connection, blocker / "gold")


def test_ledger_rows_come_from_the_warehouse_when_it_is_free(settings: Settings) -> None:
    fill_warehouse(settings)
    heard: list[str] = []
    answer = ledger_rows(settings, wait_s=WAIT_S, on_wait=heard.append)
    assert answer.source is ReadSource.WAREHOUSE
    assert_frame_equal(answer.frame, warehouse_ledger(settings))
    assert heard == []


def test_ledger_rows_while_a_run_holds_the_warehouse_come_from_the_snapshot(settings: Settings) -> None:
    fill_warehouse(settings)
    export_everything(settings)
    expected = warehouse_ledger(settings)
    heard: list[str] = []
    with held_warehouse(settings.pipeline.warehouse_path) as holder:
        answer = ledger_rows(settings, wait_s=WAIT_S, on_wait=heard.append)
    assert answer.source is ReadSource.EXPORTS
    assert_frame_equal(answer.frame, expected)
    # It said whom it waited for before waiting, and says where the answer comes from and how old it is.
    assert len(heard) == 1 and f"held by process {holder.pid} (" in heard[0] and "-c import duckdb" in heard[0]
    assert f"process {holder.pid}" in answer.note and " as of " in answer.note and LEDGER_EXPORT in answer.note


def test_ledger_rows_while_held_without_a_snapshot_say_so(settings: Settings) -> None:
    fill_warehouse(settings)
    with held_warehouse(settings.pipeline.warehouse_path) as holder:
        answer = ledger_rows(settings, wait_s=WAIT_S)
    assert answer.source is ReadSource.NOTHING and answer.frame.height == 0
    assert f"process {holder.pid}" in answer.note and "no ledger snapshot" in answer.note


def test_ledger_rows_without_a_warehouse(settings: Settings) -> None:
    answer = ledger_rows(settings)
    assert answer.source is ReadSource.NOTHING and "no warehouse yet" in answer.note


def test_query_runs_against_the_warehouse_when_it_is_free(settings: Settings) -> None:
    fill_warehouse(settings)
    answer = query(settings, "SELECT country FROM gold.sales_by_country ORDER BY net_revenue DESC")
    assert answer.source is ReadSource.WAREHOUSE and str(settings.pipeline.warehouse_path) in answer.note
    assert answer.frame["country"].to_list() == ["United Kingdom", "France"]
    # So is the ledger.
    statuses = query(settings, "SELECT status FROM ops.files ORDER BY file_name").frame
    assert statuses["status"].to_list() == ["failed", "loaded"]


def test_query_while_a_run_holds_the_warehouse_reads_the_exports(settings: Settings) -> None:
    fill_warehouse(settings)
    export_everything(settings)
    heard: list[str] = []
    with held_warehouse(settings.pipeline.warehouse_path) as holder:
        gold = query(settings, "SELECT sum(net_revenue) AS total FROM gold.sales_by_country", wait_s=WAIT_S)
        ledger = query(settings, "SELECT file_name, error FROM ops.files WHERE status = 'failed'", on_wait=heard.append)
    assert gold.source is ReadSource.EXPORTS and gold.frame["total"].to_list() == [15.5]
    assert f"process {holder.pid}" in gold.note and "Parquet exports" in gold.note and " as of " in gold.note
    assert ledger.frame.rows() == [("empty.csv", "the file is empty")]
    assert len(heard) == 1 and f"process {holder.pid}" in heard[0]


def test_query_on_the_exports_of_a_table_they_lack_says_what_they_hold(settings: Settings) -> None:
    fill_warehouse(settings)
    export_everything(settings)
    with held_warehouse(settings.pipeline.warehouse_path):
        with pytest.raises(QueryError, match="gold.sales_by_country") as refused:
            query(settings, "SELECT count(*) FROM silver.transactions", wait_s=WAIT_S)
    assert "silver and bronze are in the warehouse only" in str(refused.value)


def test_query_held_without_exports_says_so(settings: Settings) -> None:
    fill_warehouse(settings)
    with held_warehouse(settings.pipeline.warehouse_path) as holder:
        with pytest.raises(QueryError, match=f"process {holder.pid}.*no Parquet exports"):
            query(settings, "SELECT 1", wait_s=WAIT_S)


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("INSERT INTO ops.files (file_id, file_name, status) VALUES ('x', 'x', 'loaded')", "INSERT"),
        ("DELETE FROM ops.files", "DELETE"),
        ("UPDATE ops.files SET status = 'loaded'", "UPDATE"),
        ("CREATE TABLE gold.mine AS SELECT 1", "CREATE"),
        ("DROP TABLE gold.sales_by_country", "DROP"),
        # COPY writes a file even from a read-only database.
        ("COPY (SELECT * FROM ops.files) TO '{out}'", "COPY"),
        ("ATTACH 'other.duckdb' AS other", "ATTACH"),
        ("SET threads = 1", "SET"),
        ("SELECT 1; DELETE FROM ops.files", "exactly one"),
        ("", "exactly one"),
        ("SELEKT 1", "not valid SQL"),
    ],
)
def test_query_refuses_what_is_not_one_reading_statement(
    settings: Settings, tmp_path: Path, sql: str, words: str
) -> None:
    fill_warehouse(settings)
    before = warehouse_ledger(settings)
    out = tmp_path / "copied.parquet"
    with pytest.raises(QueryError, match=words):
        query(settings, sql.format(out=out))
    assert_frame_equal(warehouse_ledger(settings), before)
    assert not out.exists()


def test_query_that_fails_in_duckdb_is_a_query_error(settings: Settings) -> None:
    fill_warehouse(settings)
    with pytest.raises(QueryError, match="the query failed: .*no_such_table"):
        query(settings, "SELECT * FROM gold.no_such_table")


def test_lock_holder_names_the_process_and_its_command_line(settings: Settings) -> None:
    fill_warehouse(settings)
    assert lock_holder(settings.pipeline.warehouse_path) is None
    with held_warehouse(settings.pipeline.warehouse_path) as holder:
        found = lock_holder(settings.pipeline.warehouse_path)
    assert found is not None and found.pid == holder.pid
    assert found.command.startswith(sys.executable) and "-c import duckdb" in found.command


def test_lock_holder_raises_for_a_file_that_is_no_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.duckdb"
    path.write_text("not a database")
    with pytest.raises(duckdb.Error):
        lock_holder(path)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        # A process this machine does not show (another container): the program DuckDB names stands in.
        (
            'IO Error: Could not set lock on file "/w.duckdb": Conflicting lock is held in /usr/bin/python3 '
            "(PID 999999999). See also https://duckdb.org/docs/current/connect/concurrency",
            LockHolder(999999999, "/usr/bin/python3"),
        ),
        # A lock error that names no process.
        ("IO Error: database is locked", LockHolder(None, "")),
    ],
)
def test_holder_in_message(message: str, expected: LockHolder) -> None:
    assert holder_in_message(message) == expected


def test_holder_without_a_process_reads_as_another_process() -> None:
    assert str(LockHolder(None, "")) == "another process"
    assert str(LockHolder(42, "python -m flows")) == "process 42 (python -m flows)"
