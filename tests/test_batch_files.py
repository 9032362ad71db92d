"""A batch run's files: each staged on its own, enrichment and gold moved once by all of them, each filed away.

The batch's warehouse must equal the warehouse of the same files loaded one run at a time (every gold table, silver
and the ledger), a bad file must go to errors alone, and a failure of the batch's gold step must take every staged
file back out and send it to errors, leaving the warehouse as it was."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import duckdb
import pytest
from conftest import write_csv
from prefect import flow, get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from test_gold_incremental import APRIL, FEBRUARY, JANUARY, MARCH_FIRST, differences

from deployments.reporting import BatchFile
from flows.file_load import medallion_over
from medallion import gold
from medallion.runs import RunMode
from medallion.settings import Settings, load_settings
from medallion.warehouse import Warehouse
from tasks import batch

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _settings(folder: Path) -> Settings:
    return load_settings(
        WAREHOUSE_PATH=folder / "warehouse.duckdb",
        RAW_DATA_PATH=folder / "raw",
        PROCESSED_PATH=folder / "processed",
        STAGING_PATH=folder / "staging",
        GOLD_EXPORT_PATH=folder / "gold",
        ENABLE_EXTERNAL_ENRICHMENT=False,
    )


def _drop_files(raw: Path) -> list[Path]:
    """Months in order (March twice, the second superseding the first), one file of wrong columns, and a file
    repeating the first month's content under another name."""
    files = [
        write_csv(raw / "jan.csv", *JANUARY),
        write_csv(raw / "feb.csv", *FEBRUARY),
        write_csv(raw / "wrong columns.csv", "1,2,3", header="a,b,c"),
        write_csv(raw / "mar.csv", *MARCH_FIRST),
        write_csv(raw / "apr.csv", *APRIL),
        write_csv(raw / "jan again.csv", *JANUARY),
    ]
    return files


def _run_batch(settings: Settings, paths: list[Path]) -> list[BatchFile]:
    @flow
    def batch_run() -> list[BatchFile]:
        with Warehouse(settings.pipeline) as warehouse:
            return batch.batch_files(
                warehouse, [str(path) for path in paths], settings, RunMode.STANDARD, None, None, 1
            )

    return batch_run()


def _query(settings: Settings, sql: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(settings.pipeline.warehouse_path), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def _gold_rows(settings: Settings, name: str) -> list[tuple[object, ...]]:
    return _query(settings, f"SELECT {_columns(name)} FROM gold.{name} ORDER BY ALL")  # noqa: S608


def _columns(name: str) -> str:
    return "* EXCLUDE (refreshed_at)" if name == "kpis" else "*"


def test_a_batch_gives_the_warehouse_of_its_files_loaded_one_run_at_a_time(tmp_path: Path) -> None:
    batched, single = _settings(tmp_path / "batched"), _settings(tmp_path / "single")
    filed = _run_batch(batched, _drop_files(batched.pipeline.raw_data_path))

    one_run = medallion_over(single)
    states = [one_run(str(path), return_state=True) for path in _drop_files(single.pipeline.raw_data_path)]
    assert [state.type.value for state in states] == ["COMPLETED"] * 2 + ["FAILED"] + ["COMPLETED"] * 3

    assert [(item.file_name, item.failure is None) for item in filed] == [
        ("jan.csv", True),
        ("feb.csv", True),
        ("wrong columns.csv", False),
        ("mar.csv", True),
        ("apr.csv", True),
        ("jan again.csv", True),
    ]
    assert "missing column" in str(filed[2].failure)
    assert filed[2].moved_to is not None and Path(filed[2].moved_to).parent.name == "errors"
    assert [Path(item.moved_to or "").parent.parent for item in filed if item.failure is None] == [
        batched.pipeline.processed_path
    ] * 5
    assert filed[-1].summary is not None and filed[-1].summary.status.value == "skipped"
    with Warehouse(batched.pipeline) as warehouse, warehouse.connection() as connection:
        for name in gold.GOLD_TABLES:
            expected = duckdb.connect(str(single.pipeline.warehouse_path), read_only=True)
            try:
                rows = expected.sql(f"SELECT {_columns(name)} FROM gold.{name}").to_arrow_table()  # noqa: S608
            finally:
                expected.close()
            assert differences(connection, name, rows) == (0, 0), name
    ledger = "SELECT file_name, status, bronze_rows, silver_rows FROM ops.files ORDER BY file_name"
    assert _query(batched, ledger) == _query(single, ledger)
    silver = "SELECT count(*), sum(quantity * unit_price) FROM silver.transactions"
    assert _query(batched, silver) == _query(single, silver)
    bronze = "SELECT source_file, count(*) FROM bronze.transactions GROUP BY ALL ORDER BY ALL"
    assert _query(batched, bronze) == _query(single, bronze)
    loaded = "SELECT file_name, bronze_rows FROM ops.files WHERE status = 'loaded' ORDER BY ALL"
    assert _query(batched, bronze) == _query(batched, loaded)


def test_the_files_of_a_round_are_staged_in_one_task(tmp_path: Path) -> None:
    settings = _settings(tmp_path)

    @flow
    def batch_run() -> list[BatchFile]:
        with Warehouse(settings.pipeline) as warehouse:
            paths = [str(path) for path in _drop_files(settings.pipeline.raw_data_path)]
            return batch.batch_files(warehouse, paths, settings, RunMode.STANDARD, None, None, 1)

    state = batch_run(return_state=True)

    with get_client(sync_client=True) as client:
        task_runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
        )
    staging = sorted(run.name for run in task_runs if run.name.startswith("stage-"))
    # Two rounds: the repeat of January's content is staged once January is loaded.
    assert staging == ["stage-files-0", "stage-files-1"]
    assert [item.failure is None for item in state.result()] == [True, True, False, True, True, True]


def _no_space(*args: object, **kwargs: object) -> None:
    raise OSError(28, "No space left on device")


def _assert_feb_and_apr_failed_alone(settings: Settings, filed: list[BatchFile]) -> None:
    """Both files of the failed round went to errors with the disk's error, failed in the ledger; January stays."""
    assert [(item.file_name, Path(item.moved_to or "").parent.name) for item in filed] == [
        ("feb.csv", "errors"),
        ("apr.csv", "errors"),
    ]
    assert all("No space left on device" in str(item.failure) for item in filed)
    assert _query(settings, "SELECT file_name, status FROM ops.files ORDER BY file_name") == [
        ("apr.csv", "failed"),
        ("feb.csv", "failed"),
        ("jan.csv", "loaded"),
    ]


def _january_then_a_round_failing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, attribute: str, failing: object
) -> tuple[Settings, dict[str, list[tuple[object, ...]]], list[BatchFile]]:
    """January loaded in a batch, then February and April in one whose `batch.<attribute>` is `failing`: the
    settings, gold as January left it, and the failed round's files."""
    settings = _settings(tmp_path)
    raw = settings.pipeline.raw_data_path
    _run_batch(settings, [write_csv(raw / "jan.csv", *JANUARY)])
    before = {name: _gold_rows(settings, name) for name in gold.GOLD_TABLES}
    monkeypatch.setattr(batch, attribute, failing)
    filed = _run_batch(settings, [write_csv(raw / "feb.csv", *FEBRUARY), write_csv(raw / "apr.csv", *APRIL)])
    return settings, before, filed


def test_a_failing_gold_step_sends_every_staged_file_to_errors_and_leaves_the_warehouse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing_gold = dataclasses.replace(batch._FINISH_LAYERS, gold=_no_space)
    settings, before, filed = _january_then_a_round_failing(tmp_path, monkeypatch, "_FINISH_LAYERS", failing_gold)

    _assert_feb_and_apr_failed_alone(settings, filed)
    assert _query(settings, "SELECT count(*) FROM silver.transactions") == _query(
        settings, "SELECT silver_rows FROM ops.files WHERE file_name = 'jan.csv'"
    )
    assert {name: _gold_rows(settings, name) for name in gold.GOLD_TABLES} == before
    assert (settings.pipeline.raw_data_path / "errors" / "feb.csv.error.json").exists()


def test_a_failing_bronze_view_sends_the_round_s_staged_files_to_errors_and_leaves_the_warehouse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, before, filed = _january_then_a_round_failing(tmp_path, monkeypatch, "publish_bronze_view", _no_space)

    _assert_feb_and_apr_failed_alone(settings, filed)
    assert _query(settings, "SELECT source_file, count(*) FROM bronze.transactions GROUP BY ALL") == _query(
        settings, "SELECT file_name, bronze_rows FROM ops.files WHERE file_name = 'jan.csv'"
    )
    assert _query(settings, "SELECT count(*) FROM silver.transactions") == _query(
        settings, "SELECT silver_rows FROM ops.files WHERE file_name = 'jan.csv'"
    )
    assert {name: _gold_rows(settings, name) for name in gold.GOLD_TABLES} == before
