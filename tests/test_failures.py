"""How runs fail: a failed run leaves every table as it was, a full disk never leaves a file loaded that is not,
a bad setting or a bad file is one clear reason tried once, a low score shows in the run's state, and a file's
name cannot forge a log line. Real DuckDB files, real mounts (tmpfs, read-only) and Prefect's test harness."""

from __future__ import annotations

import asyncio
import csv
import logging
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from conftest import SAMPLE_CSV, write_csv
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId
from prefect.client.schemas.objects import State
from prefect.logging.handlers import APILogHandler, PrefectConsoleHandler

from flows.file_load import LOW_QUALITY, medallion
from medallion import gold, steps
from medallion.cli import main
from medallion.errors import ConfigurationError
from medallion.names import printable
from medallion.runs import RunSummary
from medallion.settings import Settings
from medallion.warehouse import ledger, sql

pytestmark = pytest.mark.usefixtures("prefect_harness")

FRANCE = "536365,85123A,HEART,6,12/1/2010 8:26,2.55,17850,France"
WARMER = "536366,22633,WARMER,6,12/1/2010 8:28,1.85,17850,France"


# Real file systems


def mount(target: Path, options: str) -> None:
    """Mount a tmpfs with `options` (or remount it); the failure tests need real file systems, so no skipping."""
    target.mkdir(parents=True, exist_ok=True)
    command = ["mount", "-o", options, str(target)] if "remount" in options else None
    command = command or ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail(f"cannot `{' '.join(command)}` (these tests run as root): {result.stderr.strip()}")


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str, str], Path]]:
    """Mounts tmpfs file systems under tmp_path by name and options; each is unmounted after the test."""
    mounted: list[Path] = []

    def mount_tmpfs(name: str, options: str) -> Path:
        target = tmp_path / name
        mount(target, options)
        mounted.append(target)
        return target

    yield mount_tmpfs
    for target in reversed(mounted):
        subprocess.run(["umount", "--lazy", str(target)], check=True)


def fill(disk: Path) -> None:
    """Fill the file system of `disk` to the last page with a ballast file."""
    with (disk / "ballast").open("ab", buffering=0) as ballast:
        for chunk in (1 << 20, 1 << 16, 1 << 12):
            with suppress(OSError):
                while True:
                    ballast.write(bytes(chunk))


# Reading the warehouse and the run


def rows(database: Path, query: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.execute(query).fetchall()


def frame(database: Path, query: str) -> pl.DataFrame:
    with duckdb.connect(str(database), read_only=True) as connection:
        return sql.query_frame(connection, query)


def layers(database: Path) -> dict[str, pl.DataFrame]:
    """Every table a run writes, as a frame in a fixed order; gold's refresh time and silver's stamp left out."""
    tables = {
        "bronze": "SELECT * FROM bronze.transactions ORDER BY file_id, row_number",
        "silver": "SELECT * FROM silver.transactions ORDER BY file_id, row_number",
        "rejected": "SELECT * FROM silver.rejected ORDER BY file_id, row_number",
        "quality": "SELECT * FROM ops.quality ORDER BY ALL",
        "ledger": "SELECT * EXCLUDE (silver_at) FROM ops.files ORDER BY file_id",
    }
    for (name,) in rows(database, "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'gold'"):
        assert name in gold.GOLD_TABLES
        tables[f"gold.{name}"] = (
            f"SELECT * {'EXCLUDE (refreshed_at)' if name == 'kpis' else ''} FROM gold.{name} ORDER BY ALL"  # noqa: S608
        )
    return {name: frame(database, query) for name, query in tables.items()}


def assert_same_layers(before: dict[str, pl.DataFrame], after: dict[str, pl.DataFrame], *, ledger_too: bool) -> None:
    for name in before:
        if name != "ledger" or ledger_too:
            assert after[name].equals(before[name]), name
    assert set(after) == set(before)


def run_record(state: State[Any]) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """The run's log lines as (level, message), and how many times each of its tasks ran."""
    APILogHandler.flush()
    flow_run_id = state.state_details.flow_run_id

    async def read() -> tuple[list[tuple[str, str]], dict[str, int]]:
        async with get_client() as client:
            logs = await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
            tasks = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        levels = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}
        return [(levels[log.level], log.message) for log in logs], {task.name: task.run_count for task in tasks}

    return asyncio.run(read())


def assert_one_quiet_reason(state: State[Any], reason: str) -> dict[str, int]:
    """The run Failed with `reason` as its message, logged no traceback, and every error line it logged is that
    reason (the final state of the task that refused and of the flow); returns each task's tries."""
    assert state.is_failed() and state.message == reason
    logs, tries = run_record(state)
    assert not [message for _, message in logs if "Traceback" in message]
    errors = [message for level, message in logs if level == "ERROR"]
    assert errors and all(message == f"Finished in state Failed({reason!r})" for message in errors), errors
    return tries


def sample_copies(path: Path, copies: int) -> int:
    """A UCI-layout file of `copies` copies of the sample, each with its own invoice numbers; returns its records
    as Python's csv module counts them."""
    sample = pl.read_csv(SAMPLE_CSV, infer_schema=False).drop("")
    number = pl.col("InvoiceNo").str.extract(r"(\d+)$").cast(pl.Int64)
    prefix = pl.col("InvoiceNo").str.extract(r"^(\D*)").fill_null("")
    pl.concat(
        sample.with_columns((prefix + (number + copy * 1_000_000).cast(pl.Utf8)).alias("InvoiceNo"))
        for copy in range(copies)
    ).write_csv(path)
    with path.open(newline="") as text:
        return sum(1 for _ in csv.reader(text)) - 1


# A failed run leaves every table as it was


def test_unwritable_gold_exports_fail_the_run_once_and_leave_every_table_as_it_was(
    settings: Settings, tmp_path: Path, tmpfs: Callable[[str, str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    exports = tmpfs("exports", "size=16m")
    monkeypatch.setenv("GOLD_EXPORT_PATH", str(exports))
    database = settings.pipeline.warehouse_path
    medallion(str(write_csv(tmp_path / "raw" / "monday.csv", FRANCE)))
    before = layers(database)
    exported = {path.name: path.read_bytes() for path in exports.iterdir()}
    ledger_before = frame(database, "SELECT * FROM ops.files")

    mount(exports, "remount,ro")
    tuesday = write_csv(tmp_path / "raw" / "tuesday.csv", WARMER, "536367,84879,BIRD,8,12/2/2010 9:00,1.69,,France")
    state = medallion(str(tuesday), return_state=True)

    reason = (
        f"GOLD_EXPORT_PATH={exports} cannot be used (read-only file system): set GOLD_EXPORT_PATH to a writable path"
    )
    tries = assert_one_quiet_reason(state, reason)
    assert tries["gold-0"] == 1, "a bad setting is not retried"
    after = layers(database)
    assert_same_layers(before, after, ledger_too=False)
    assert {path.name: path.read_bytes() for path in exports.iterdir()} == exported
    failed = frame(database, "SELECT * FROM ops.files WHERE file_name = 'tuesday.csv'").row(0, named=True)
    assert (failed["status"], failed["retryable"], failed["error"]) == ("failed", False, reason)
    counts = ("bronze_rows", "silver_rows", "rejected_rows", "duplicate_rows")
    assert [failed[name] for name in counts] == [None] * 4, "a failed file keeps no totals of its attempt"
    assert frame(database, "SELECT * FROM ops.files WHERE file_name = 'monday.csv'").equals(ledger_before)


def test_a_new_version_that_fails_gives_the_old_version_back_in_silver_and_gold(
    settings: Settings, tmp_path: Path, tmpfs: Callable[[str, str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    exports = tmpfs("exports", "size=16m")
    monkeypatch.setenv("GOLD_EXPORT_PATH", str(exports))
    database = settings.pipeline.warehouse_path
    daily = write_csv(tmp_path / "raw" / "daily.csv", FRANCE, WARMER)
    first = medallion(str(daily))
    before = layers(database)

    mount(exports, "remount,ro")
    write_csv(daily, "536370,22728,ALARM CLOCK,4,12/3/2010 10:00,3.75,12583,France")
    state = medallion(str(daily), return_state=True)

    assert state.is_failed()
    assert_same_layers(before, layers(database), ledger_too=False)
    statuses = rows(database, "SELECT file_id, status, superseded_by FROM ops.files ORDER BY file_key")
    assert statuses[0] == (first.file_id, "loaded", None)
    assert statuses[1][1:] == ("failed", None)


def test_a_file_refused_in_silver_leaves_nothing_behind_and_is_tried_once(settings: Settings, tmp_path: Path) -> None:
    database = settings.pipeline.warehouse_path
    medallion(str(write_csv(tmp_path / "raw" / "good.csv", FRANCE)))
    before = layers(database)
    path = write_csv(
        tmp_path / "raw" / "mixed dates.csv",
        "536365,85123A,HEART,6,13/01/2011 8:26,2.55,17850,France",
        "536366,22633,WARMER,6,01/13/2011 8:28,1.85,17850,France",
    )

    state = medallion(str(path), return_state=True)

    reason = (
        "mixed dates.csv: invoice dates mix day-first and month-first orders (1 distinct dates read only "
        "day-first, 1 only month-first)"
    )
    tries = assert_one_quiet_reason(state, reason)
    assert tries == {"bronze-0": 1, "silver-0": 1, "withdraw-failed-file-0": 1}
    assert_same_layers(before, layers(database), ledger_too=False)


# A full disk


def assert_nothing_loaded_without_its_rows(database: Path) -> None:
    """Every file the ledger says loaded has all its rows in silver, and gold counts exactly silver's rows."""
    for file_id, bronze_rows, silver_rows, rejected, duplicates in rows(
        database,
        """SELECT file_id, bronze_rows, silver_rows, rejected_rows, duplicate_rows FROM ops.files
           WHERE status = 'loaded'""",
    ):
        held = rows(database, f"SELECT count(*) FROM silver.transactions WHERE file_id = '{file_id}'")[0][0]  # noqa: S608
        assert held == silver_rows and bronze_rows == silver_rows + rejected + duplicates
    if rows(database, "SELECT 1 FROM duckdb_tables() WHERE schema_name = 'gold' AND table_name = 'kpis'"):
        sales = rows(database, "SELECT count(*) FROM silver.transactions WHERE NOT is_bad_debt")[0][0]
        assert rows(database, "SELECT rows FROM gold.kpis")[0][0] == sales


def fill_around(disk: Path, step: Callable[..., Any], *, after: bool) -> Callable[..., Any]:
    """`step`, run once the disk is full, or filling the disk as soon as it returns (`after`)."""

    def on_a_full_disk(*arguments: Any, **options: Any) -> Any:
        if not after:
            fill(disk)
        result = step(*arguments, **options)
        if after:
            fill(disk)
        return result

    return on_a_full_disk


# A 6 MiB disk is filled by the file's own rows (14 copies of the sample); a larger one by a ballast file just
# before the gold step, just before the commit that marks the file loaded, or just after it. Whether that commit
# still fits in the last page of the write-ahead log depends on where the log ends, so either outcome may follow
# a disk full just before it: what must hold is that the run's outcome and the ledger agree.
FULL_DISK_OUTCOMES = {"bronze": False, "gold": False, "marking loaded": None, "after marking loaded": True}


@pytest.mark.parametrize("full_at", FULL_DISK_OUTCOMES)
def test_a_full_disk_never_leaves_a_file_loaded_without_its_rows_and_the_rerun_loads_it(
    settings: Settings,
    tmp_path: Path,
    tmpfs: Callable[[str, str], Path],
    monkeypatch: pytest.MonkeyPatch,
    full_at: str,
) -> None:
    disk = tmpfs("disk", "size=6m" if full_at == "bronze" else "size=32m")
    database = disk / "warehouse.duckdb"
    monkeypatch.setenv("WAREHOUSE_PATH", str(database))
    source = tmp_path / "raw" / "big.csv"
    records = sample_copies(source, 14 if full_at == "bronze" else 2)
    load_gold, mark_loaded = steps.load_gold_of_files, ledger.mark_loaded
    if full_at == "gold":
        monkeypatch.setattr(steps, "load_gold_of_files", fill_around(disk, load_gold, after=False))
    if full_at.endswith("marking loaded"):
        monkeypatch.setattr(ledger, "mark_loaded", fill_around(disk, mark_loaded, after=full_at.startswith("after")))

    state = medallion(str(source), return_state=True)

    loaded = bool(rows(database, "SELECT 1 FROM ops.files WHERE status = 'loaded'"))
    assert state.is_completed() == loaded, "the run's outcome and the ledger agree"
    assert FULL_DISK_OUTCOMES[full_at] in (None, loaded)
    if not loaded:
        assert "No space left on device" in str(state.message)
    assert_nothing_loaded_without_its_rows(database)

    (disk / "ballast").unlink(missing_ok=True)
    mount(disk, "remount,size=256m")
    monkeypatch.setattr(steps, "load_gold_of_files", load_gold)
    monkeypatch.setattr(ledger, "mark_loaded", mark_loaded)
    assert_nothing_loaded_without_its_rows(database)
    summary = medallion(str(source))

    assert summary.status == ("skipped" if loaded else "loaded") and summary.bronze_rows == records
    assert_nothing_loaded_without_its_rows(database)
    totals = "bronze_rows, silver_rows + rejected_rows + duplicate_rows"
    assert rows(database, f"SELECT status, {totals} FROM ops.files") == [("loaded", records, records)]  # noqa: S608


# A warehouse path that cannot be used


def test_a_read_only_warehouse_path_is_one_configuration_error_tried_once(
    settings: Settings, tmp_path: Path, tmpfs: Callable[[str, str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    read_only = tmpfs("read-only", "ro,size=1m")
    monkeypatch.setenv("WAREHOUSE_PATH", str(read_only / "warehouse.duckdb"))
    path = write_csv(tmp_path / "raw" / "good.csv", FRANCE)

    state = medallion(str(path), return_state=True)

    reason = (
        f"WAREHOUSE_PATH={read_only / 'warehouse.duckdb'} cannot be used (read-only file system): "
        "set WAREHOUSE_PATH to a writable path"
    )
    assert assert_one_quiet_reason(state, reason) == {"bronze-0": 1}
    with pytest.raises(ConfigurationError, match="WAREHOUSE_PATH="):
        state.result()


def test_an_empty_warehouse_path_is_one_line_naming_the_setting(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WAREHOUSE_PATH", "")
    path = write_csv(tmp_path / "raw" / "good.csv", FRANCE)

    # Refused as an invalid setting when the settings are built, before anything runs.
    message = "medallion: invalid setting WAREHOUSE_PATH: must name a file, not be empty\n"
    assert main(["run", str(path)]) == 2
    assert capsys.readouterr().err == message
    assert main(["status"]) == 2
    assert capsys.readouterr().err == message


# Outcomes at a glance and quiet output


def test_a_file_below_the_quality_threshold_completes_as_low_quality_with_its_summary(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUALITY_ALERT_THRESHOLD", "99.5")
    source = shutil.copy(SAMPLE_CSV, tmp_path / "raw" / "sample.csv")

    state = medallion(str(source), return_state=True)

    summary = state.result()
    assert isinstance(summary, RunSummary) and summary.status == "loaded" and summary.quality is not None
    assert state.is_completed() and state.name == LOW_QUALITY
    assert state.message == f"quality {summary.quality.score:.1f} is below the threshold of 99.5"
    monkeypatch.setenv("QUALITY_ALERT_THRESHOLD", "0")
    write_csv(tmp_path / "raw" / "good.csv", FRANCE)
    passing = medallion(str(tmp_path / "raw" / "good.csv"), return_state=True)
    assert passing.is_completed() and passing.name == "Completed"


@pytest.fixture
def console(capfd: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    """What the process prints, Prefect's console lines included: its console handler's terminal took the stream
    pytest had when Prefect was imported, so it writes to this test's stderr for the test."""
    handlers = [handler for handler in logging.getLogger().handlers if isinstance(handler, PrefectConsoleHandler)]
    assert handlers, "Prefect logs to the console through its own handler"
    # No stream of its own: the console writes to whatever sys.stderr is at each line, this test's while it runs.
    streams = [(handler.console._file, handler.console.stderr) for handler in handlers]
    for handler in handlers:
        handler.console.file, handler.console.stderr = None, True  # type: ignore[assignment]
    yield capfd
    for handler, (stream, to_stderr) in zip(handlers, streams, strict=True):
        handler.console.file, handler.console.stderr = stream, to_stderr


def test_run_prints_its_summary_only_and_prefects_lines_when_asked(
    warehouse_env: dict[str, str], tmp_path: Path, console: pytest.CaptureFixture[str]
) -> None:
    first = write_csv(tmp_path / "raw" / "first.csv", FRANCE)
    assert main(["run", str(first)]) == 0
    out, err = console.readouterr()
    assert out.startswith("first.csv: loaded (content ") and out.endswith(
        f"warehouse: {warehouse_env['WAREHOUSE_PATH']}\n"
    )
    assert "  enrichment rates " in out
    assert err == ""

    second = write_csv(tmp_path / "raw" / "second.csv", WARMER)
    assert main(["run", "--verbose", str(second)]) == 0
    out, err = console.readouterr()
    assert "Finished in state Completed()" in out + err
    assert "second.csv: loaded" in out


def test_a_bad_file_is_one_line_from_the_command(
    warehouse_env: dict[str, str], tmp_path: Path, console: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(
        tmp_path / "raw" / "mixed.csv",
        "536365,85123A,HEART,6,13/01/2011 8:26,2.55,17850,France",
        "536366,22633,WARMER,6,01/13/2011 8:28,1.85,17850,France",
    )
    assert main(["run", str(path)]) == 1
    out, err = console.readouterr()
    assert out == ""
    assert err == (
        "medallion: mixed.csv: invoice dates mix day-first and month-first orders (1 distinct dates read only "
        "day-first, 1 only month-first)\n"
    )


# A file's name cannot forge a log line


FORGED = "evil\n12:00:00.000 | ERROR   | Flow run 'x' - forged line\r\x1b[2K.csv"


def test_a_file_name_with_a_newline_is_printed_escaped_in_every_line(
    warehouse_env: dict[str, str], tmp_path: Path, console: pytest.CaptureFixture[str]
) -> None:
    good = write_csv(tmp_path / "raw" / FORGED, FRANCE)
    state = medallion(str(good), return_state=True)
    logs, _ = run_record(state)
    assert any(printable(FORGED) in message for _, message in logs), "the bronze line names the file, escaped"
    assert not [message for _, message in logs if "forged line" in message and "\n" in message]

    empty = tmp_path / "raw" / ("empty\n" + FORGED)
    empty.write_bytes(b"")
    refused = medallion(str(empty), return_state=True)
    assert refused.message == f"{printable(empty.name)}: file is empty"

    console.readouterr()  # the flow calls' own lines above; what follows is the command's
    assert main(["run", str(empty)]) == 1
    assert main(["status"]) == 0
    out, err = console.readouterr()
    assert err == f"medallion: {printable(empty.name)}: file is empty\n"
    assert "\n12:00" not in out and "\r" not in out and "\x1b" not in out
    assert printable(FORGED)[:37] in out


def test_printable_escapes_control_characters_only_and_is_idempotent() -> None:
    assert printable("Café 2011.csv") == "Café 2011.csv"
    assert printable("a\nb\rc\td\x1be\u2028f.csv") == "a\\nb\\rc\\td\\x1be\\u2028f.csv"
    assert printable(printable(FORGED)) == printable(FORGED)
    assert "\n" not in printable(FORGED)
