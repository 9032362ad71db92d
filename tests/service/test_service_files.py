"""Files dropped into the watched folder of a running `medallion up` end where they should, with the warehouse right."""

from __future__ import annotations

import gzip
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
from prefect.client.schemas.filters import ArtifactFilter, LogFilter

from deployments.lifecycle import due_retries
from deployments.names import ALL_DEPLOYMENTS
from medallion.settings import load_settings

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


def run_logs(service: Service, flow_run_id: Any) -> str:
    """Every line the run logged, as the UI's Logs tab shows them."""
    log_filter = LogFilter.parse_obj({"flow_run_id": {"any_": [str(flow_run_id)]}})
    logs = service.call(lambda client: client.read_logs(log_filter=log_filter))
    return "\n".join(log.message for log in logs)


def latest_artifacts(service: Service) -> dict[str, Any]:
    """The latest version of each keyed artifact, by key."""
    return {artifact.key: artifact for artifact in service.call(lambda client: client.read_latest_artifacts())}


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
    # The run was forked from the warm process, not started as a new Python importing Prefect again.
    assert "Forking the warm process" in service.log() and "Opening process" not in service.log()
    # Prefect's own warnings about its runner and its deprecated loader are not printed on every run.
    assert "found in sys.modules" not in service.log()
    assert "load_flow_from_flow_run" not in service.log()

    artifacts = service.call(lambda client: client.read_artifacts())
    by_key = {artifact.key: artifact for artifact in artifacts if artifact.flow_run_id == run.id}
    assert {"medallion-file-summary", "medallion-file-quality", "medallion-gold-kpis"} <= set(by_key)
    assert name in str(by_key["medallion-file-summary"].data)
    assert "| bronze | 25 |" in str(by_key["medallion-file-summary"].data)
    assert "completeness" in str(by_key["medallion-file-quality"].data)

    kpis = pl.read_parquet(service.env["GOLD_EXPORT_PATH"] + "/kpis.parquet")
    orders = service.query("SELECT count(DISTINCT invoice_no) FROM silver.transactions")[0][0]
    assert kpis["orders"][0] == orders


def test_a_loaded_file_refreshes_the_warehouse_state_and_the_charts(service: Service) -> None:
    name = "state of the warehouse.csv"
    drop(service, name, csv_text(uci_rows(750000, 12)))
    wait_until(lambda: service.processed_files().get(name), RUN_DEADLINE_S, f"{name} in processed")
    (run,) = service.runs_for(name)

    changes = dict(service.query("SELECT table_name, flow_run_id FROM ops.table_changes"))
    for table in ("bronze.transactions", "ops.files", "silver.lines", "ops.quality", "enrichment.rates", "gold.kpis"):
        assert changes[table] == str(run.id), table
    latest = latest_artifacts(service)
    warehouse = latest["medallion-warehouse"]
    assert warehouse.flow_run_id == run.id
    assert "| `gold.kpis` | table |" in str(warehouse.data)
    assert f"/flow-runs/flow-run/{run.id})" in str(warehouse.data)
    assert "](data:image/svg+xml;base64," in str(warehouse.data)
    for key in ("medallion-quality-chart", "medallion-revenue-chart"):
        assert latest[key].flow_run_id == run.id, key
        assert "](data:image/png;base64," in str(latest[key].data), key


def test_the_watcher_is_alive_in_the_ui_and_shows_what_it_last_submitted(service: Service) -> None:
    name = "seen by the watcher.csv"
    drop(service, name, csv_text(uci_rows(755000, 5)))
    wait_until(lambda: service.runs_for(name), RUN_DEADLINE_S, f"a run of {name}")
    (run,) = service.runs_for(name)

    def watcher_saw_the_run() -> Any:
        watcher = latest_artifacts(service).get("medallion-watcher")
        return watcher if watcher is not None and str(run.id)[:8] in str(watcher.data) else None

    watcher = wait_until(watcher_saw_the_run, 30, "the watcher's page to show the run")
    assert watcher.description.startswith("alive, last heartbeat ")
    assert "**Alive**: last heartbeat " in str(watcher.data)
    assert f"`{name}` | submitted to `medallion/file-drop` as run [{str(run.id)[:8]}]" in str(watcher.data)
    versions_filter = ArtifactFilter.parse_obj({"key": {"any_": ["medallion-watcher"]}})
    versions = service.call(lambda client: client.read_artifacts(artifact_filter=versions_filter))
    assert len(versions) <= 2, "each heartbeat replaces the previous version"


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

    # The error watcher submits what `due_retries` finds: this file is never due, not even a day from now.
    pipeline = load_settings(RAW_DATA_PATH=str(service.raw)).pipeline
    later = datetime.now(UTC) + timedelta(days=1)
    assert name not in [path.name for path, _ in due_retries(pipeline, now=later)]
    assert [run.deployment_id for run in service.runs_for(name)] == [run.deployment_id]
    assert final_states(service, name) == ["FAILED"]
    (failed,) = service.runs_for(name)
    assert failed.state.message == sidecar["reason"]
    logs = run_logs(service, failed.id)
    assert sidecar["reason"] in logs
    assert "Traceback" not in logs


def test_a_retryable_failure_is_retried_with_conservative_settings_and_then_loads(service: Service) -> None:
    name = "while the warehouse was busy.csv"
    # Every earlier file run ended (so none holds the warehouse), then this test holds it as another process would.
    wait_until(
        lambda: all(
            run.state is not None and run.state.is_final()
            for run in service.flow_runs()
            if run.parameters.get("path") or run.parameters.get("paths")
        ),
        RUN_DEADLINE_S,
        "every earlier file run to end",
    )
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
    assert final_states(service, name) == ["COMPLETED"]
    (run,) = service.runs_for(name)
    assert (run.state.type.value, run.state.name) == ("COMPLETED", "Low quality")
    assert run.state.message == f"quality {score:.1f} is below the threshold of 85"


def test_the_six_deployments_are_registered_and_the_scheduled_ones_run_on_demand(service: Service) -> None:
    # A file of its own, so the scheduled runs have silver and gold to work on whatever ran before this test.
    name = "for the scheduled runs.csv"
    drop(service, name, csv_text(uci_rows(760000, 8)))
    wait_until(lambda: service.processed_files().get(name), RUN_DEADLINE_S, f"{name} in processed")

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

    run_ids = [str(monitor.id), str(daily.id), str(weekly.id)]
    refreshed_by = ArtifactFilter.parse_obj({"flow_run_id": {"any_": run_ids}})
    published = service.call(lambda client: client.read_artifacts(artifact_filter=refreshed_by))
    dashboards = {"medallion-warehouse", "medallion-quality-chart", "medallion-revenue-chart"}
    for run_id in run_ids:
        assert dashboards <= {artifact.key for artifact in published if str(artifact.flow_run_id) == run_id}, run_id
    changes = dict(service.query("SELECT table_name, flow_run_id FROM ops.table_changes"))
    assert changes["silver.lines"] == str(weekly.id)
    assert changes["enrichment.rates"] == str(daily.id)
