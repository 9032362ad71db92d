"""Files dropped into the watched folder of a running `medallion up` end where they should, with the warehouse right."""

from __future__ import annotations

import gzip
import os
import time
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from deployments.names import ALL_DEPLOYMENTS

from .conftest import Service, Webhook, csv_text, uci_rows, wait_until

RUN_DEADLINE_S = 120.0


def drop(service: Service, name: str, text: str) -> Path:
    """Copy a file in the way most tools finish one: written aside, then renamed into the folder."""
    aside = service.root / "outbox" / name
    aside.parent.mkdir(exist_ok=True)
    aside.write_text(text, encoding="utf-8")
    target = service.raw / name
    os.replace(aside, target)
    return target


def ledger(service: Service, name: str) -> list[tuple[object, ...]]:
    return service.query(
        "SELECT status, bronze_rows, silver_rows, flow_run_id FROM ops.files WHERE file_name = ? ORDER BY started_at",
        [name],
    )


def silver_rows_of(service: Service, name: str) -> int:
    return int(service.query("SELECT count(*) FROM silver.transactions WHERE source_file = ?", [name])[0][0])


def final_states(service: Service, name: str) -> list[str]:
    """The sorted end states of every run of `name`, once none is still scheduled or running."""

    def ended() -> list[str] | None:
        runs = service.runs_for(name)
        if runs and all(run.state is not None and run.state.is_final() for run in runs):
            return sorted(run.state.type.value for run in runs)
        return None

    return wait_until(ended, 60, f"every run of {name} to end")


def test_a_small_file_loads_moves_to_processed_and_publishes_artifacts(service: Service) -> None:
    name = "Sales 'Dec' 2010 ünï.csv"
    drop(service, name, csv_text(uci_rows(700000, 25)))

    moved = wait_until(lambda: service.processed_files().get(name), RUN_DEADLINE_S, f"{name} in processed")
    assert moved.parent.parent == service.processed
    assert not (service.raw / name).exists()
    assert final_states(service, name) == ["COMPLETED"]
    (run,) = service.runs_for(name)
    assert run.name == f"file-drop: {name}"
    assert {"medallion", "file-drop", "small"} <= set(run.tags)
    assert ledger(service, name) == [("loaded", 25, 25, str(run.id))]
    assert silver_rows_of(service, name) == 25

    artifacts = service.call(lambda client: client.read_artifacts())
    by_key = {artifact.key: artifact for artifact in artifacts if artifact.flow_run_id == run.id}
    assert {"medallion-file-summary", "medallion-file-quality", "medallion-gold-kpis"} <= set(by_key)
    assert name in str(by_key["medallion-file-summary"].data)
    assert "| bronze | 25 |" in str(by_key["medallion-file-summary"].data)
    assert "completeness" in str(by_key["medallion-file-quality"].data)

    kpis = pl.read_parquet(service.env["GOLD_EXPORT_PATH"] + "/kpis.parquet")
    orders = service.query("SELECT count(DISTINCT invoice_no) FROM silver.transactions")[0][0]
    assert kpis["orders"][0] == orders


def test_a_tsv_and_a_gzipped_txt_are_both_picked_up_and_loaded(service: Service) -> None:
    tabbed = csv_text(uci_rows(760000, 8)).replace(",", "\t")
    drop(service, "till export.tsv", tabbed)
    gzipped = service.root / "outbox" / "till export.txt.gz"
    gzipped.write_bytes(gzip.compress(csv_text(uci_rows(761000, 9)).encode("utf-8")))
    os.replace(gzipped, service.raw / gzipped.name)

    loaded = {"till export.tsv": 8, "till export.txt.gz": 9}
    wait_until(lambda: set(loaded) <= set(service.processed_files()), RUN_DEADLINE_S, "both files in processed")
    for name, rows in loaded.items():
        assert final_states(service, name) == ["COMPLETED"]
        assert ledger(service, name)[0][:3] == ("loaded", rows, rows)
        assert silver_rows_of(service, name) == rows


def test_a_bad_file_goes_to_errors_with_its_reason_and_is_not_retried(service: Service) -> None:
    name = "wrong columns.csv"
    drop(service, name, "a,b,c\n1,2,3\n")

    sidecar_path = service.errors / f"{name}.error.json"
    wait_until(sidecar_path.exists, RUN_DEADLINE_S, "the error sidecar")
    assert (service.errors / name).read_text(encoding="utf-8") == "a,b,c\n1,2,3\n"
    sidecar = __import__("json").loads(sidecar_path.read_text(encoding="utf-8"))
    (run,) = service.runs_for(name)
    assert sidecar["retryable"] is False
    assert sidecar["attempts"] == 1
    assert sidecar["flow_run_id"] == str(run.id)
    assert sidecar["deployment"] == "medallion/file-drop"
    assert "missing column" in sidecar["reason"]
    assert sidecar["next_attempt_at"] is None

    time.sleep(4)  # longer than ERROR_RETRY_DELAY plus a scan: a retry would have been submitted by now
    assert [run.deployment_id for run in service.runs_for(name)] == [run.deployment_id]
    assert final_states(service, name) == ["FAILED"]


def test_a_retryable_failure_is_retried_with_conservative_settings_and_then_loads(service: Service) -> None:
    name = "while the warehouse was busy.csv"
    reader = duckdb.connect(service.env["WAREHOUSE_PATH"])
    try:
        drop(service, name, csv_text(uci_rows(710000, 12)))
        sidecar_path = service.errors / f"{name}.error.json"
        wait_until(sidecar_path.exists, RUN_DEADLINE_S, "the first attempt to fail on the held warehouse")
        sidecar = __import__("json").loads(sidecar_path.read_text(encoding="utf-8"))
        assert (sidecar["retryable"], sidecar["attempts"], sidecar["error_type"]) == (True, 1, "WarehouseBusyError")
        assert sidecar["next_attempt_at"] is not None
    finally:
        reader.close()

    wait_until(lambda: service.processed_files().get(name), RUN_DEADLINE_S, "the retry to load the file")
    assert not sidecar_path.exists()
    assert not (service.errors / name).exists()
    runs = sorted(service.runs_for(name), key=lambda run: run.created)
    assert [run.parameters.get("mode") for run in runs] == ["standard", "conservative"]
    assert runs[1].parameters["attempt"] == 2
    assert runs[1].name == f"error-retry #2: {name}"
    assert ledger(service, name)[-1][:3] == ("loaded", 12, 12)


def test_a_half_written_file_is_loaded_once_when_complete(service: Service) -> None:
    name = "slow copy.csv"
    text = csv_text(uci_rows(720000, 40))
    target = service.raw / name
    with target.open("w", encoding="utf-8") as handle:
        for start in range(0, len(text), 200):
            handle.write(text[start : start + 200])
            handle.flush()
            time.sleep(0.1)

    wait_until(lambda: service.processed_files().get(name), RUN_DEADLINE_S, f"{name} in processed")
    assert final_states(service, name) == ["COMPLETED"]
    assert ledger(service, name)[0][:3] == ("loaded", 40, 40)
    assert silver_rows_of(service, name) == 40


def test_the_same_content_twice_loads_once_and_both_files_are_filed(service: Service) -> None:
    text = csv_text(uci_rows(730000, 15))
    drop(service, "first copy.csv", text)
    wait_until(lambda: service.processed_files().get("first copy.csv"), RUN_DEADLINE_S, "the first copy")
    drop(service, "second copy.csv", text)
    drop(service, "first copy.csv", text)
    wait_until(
        lambda: {"second copy.csv", "first copy-2.csv"} <= set(service.processed_files()),
        RUN_DEADLINE_S,
        "both later copies in processed",
    )
    assert silver_rows_of(service, "first copy.csv") == 15
    assert silver_rows_of(service, "second copy.csv") == 0
    file_ids = service.query("SELECT count(*) FROM ops.files WHERE file_name IN ('first copy.csv', 'second copy.csv')")
    assert file_ids == [(1,)]
    assert final_states(service, "first copy.csv") == ["COMPLETED", "COMPLETED"]
    assert final_states(service, "second copy.csv") == ["COMPLETED"]


def test_a_burst_of_twenty_files_all_load_without_a_lock_error(service: Service) -> None:
    names = [f"burst {index:02d}.csv" for index in range(20)]
    for index, name in enumerate(names):
        (service.raw / name).write_text(
            csv_text(uci_rows(800000 + index * 100, 10, day=index % 28 + 1)), encoding="utf-8"
        )

    wait_until(lambda: set(names) <= set(service.processed_files()), 240, "all 20 files in processed")
    wait_until(
        lambda: all(run.state.is_final() for run in service.flow_runs() if "burst" in run.name),
        60,
        "the last burst runs to end",
    )
    for name in names:
        assert final_states(service, name) == ["COMPLETED"], name
    loaded = service.query(
        "SELECT count(*), sum(silver_rows) FROM ops.files WHERE status = 'loaded' AND file_name LIKE 'burst %'"
    )
    assert loaded == [(20, 200)]
    assert list(service.errors.glob("burst*")) == []
    assert "Could not set lock" not in service.log() and "database is locked" not in service.log()


def test_quality_below_the_threshold_reaches_the_webhook(service: Service, webhook: Webhook) -> None:
    name = "dirty export.csv"
    clean = uci_rows(740000, 10)
    dirty = [f"{740100 + index},,,0,12/2/2010 9:{index:02d},0,,United Kingdom" for index in range(20)]
    drop(service, name, csv_text(clean + dirty))

    wait_until(lambda: service.processed_files().get(name), RUN_DEADLINE_S, f"{name} in processed")
    body = wait_until(
        lambda: next((b for b in webhook.bodies if name in str(b.get("body"))), None),
        90,
        "the quality alert at the webhook",
    )
    assert body["path"] == "/hooks/quality-token-123"
    assert "below the threshold 85" in body["body"]
    score = service.query(
        "SELECT q.score FROM ops.quality q JOIN ops.files f USING (file_id) WHERE f.file_name = ? AND q.scope = 'file'",
        [name],
    )[0][0]
    assert score < 85
    assert "quality-token-123" not in service.log()


def test_the_six_deployments_are_registered_and_the_scheduled_ones_run_on_demand(service: Service) -> None:
    async def deployments(client: Any) -> dict[str, list[str]]:
        found = {}
        for name in ALL_DEPLOYMENTS:
            deployment = await client.read_deployment_by_name(name)
            found[name] = [schedule.schedule.cron for schedule in deployment.schedules]
        return found

    assert service.call(deployments) == {
        "medallion/file-drop": [],
        "medallion/large-file": [],
        "medallion/error-retry": [],
        "incremental-processing/daily": ["0 2 * * *"],
        "data-quality-monitoring/every-6h": ["0 */6 * * *"],
        "historical-reprocessing/weekly": ["0 3 * * 0"],
    }
    dataset_rows = service.query("SELECT count(*) FROM ops.quality WHERE scope = 'dataset'")[0][0]

    async def run(client: Any, name: str, parameters: dict[str, Any]) -> Any:
        deployment = await client.read_deployment_by_name(name)
        return await client.create_flow_run_from_deployment(deployment.id, parameters=parameters)

    silver_rows = service.query("SELECT count(*) FROM silver.transactions")[0][0]
    monitor = service.call(lambda client: run(client, "data-quality-monitoring/every-6h", {}))
    daily = service.call(lambda client: run(client, "incremental-processing/daily", {"min_age_seconds": 0}))
    weekly = service.call(lambda client: run(client, "historical-reprocessing/weekly", {}))

    def state_of(run_id: Any) -> str:
        found = service.call(lambda client: client.read_flow_run(run_id))
        return found.state.type.value if found.state and found.state.is_final() else ""

    assert wait_until(lambda: state_of(monitor.id), 120, "the quality monitor to end") == "COMPLETED"
    assert wait_until(lambda: state_of(daily.id), 120, "the daily run to end") == "COMPLETED"
    assert wait_until(lambda: state_of(weekly.id), 120, "the weekly reprocessing to end") == "COMPLETED"
    assert service.query("SELECT count(*) FROM silver.transactions")[0][0] == silver_rows
    assert service.query("SELECT count(*) FROM ops.quality WHERE scope = 'dataset'")[0][0] == dataset_rows + 1
    kpis = pl.read_parquet(service.env["GOLD_EXPORT_PATH"] + "/kpis.parquet")
    assert kpis["orders"][0] == service.query("SELECT count(DISTINCT invoice_no) FROM silver.transactions")[0][0]
