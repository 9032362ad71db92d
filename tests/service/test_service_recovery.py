"""After `kill -9` of the whole service mid-run, a restart marks the orphaned run Crashed and loads its file."""

from __future__ import annotations

import os
from typing import Any

import duckdb

from .conftest import Service, csv_text, uci_rows, wait_until
from .scratch import descendant_pids, free_port
from .test_service_files import drop, final_states, latest_artifacts, ledger, silver_rows_of


def test_a_restart_after_kill_9_crashes_the_orphaned_run_and_loads_its_file(service: Service) -> None:
    name = "interrupted by a power cut.csv"
    service.flow_runs()  # the client is imported and connected before the run starts, so the kill comes in time
    offset = len(service.log())
    reader = duckdb.connect(service.env["WAREHOUSE_PATH"])
    try:
        drop(service, name, csv_text(uci_rows(900000, 30)))
        wait_until(
            lambda: f"'file-drop: {name}' - holding the warehouse" in service.log()[offset:],
            120,
            "the run to hold the warehouse slot",
            interval_s=0.1,
        )
        (interrupted,) = service.runs_for(name)
        killed = service.kill_everything()
    finally:
        reader.close()

    wait_until(lambda: not any(_alive(pid) for pid in killed), 10, f"processes {killed} to die of kill -9")
    assert (service.raw / name).exists()

    service.env["PREFECT_SERVER_API_PORT"] = str(free_port())
    restarted = len(service.log())
    service.start()
    assert "the previous watcher stopped without a clean shutdown" in service.log()[restarted:]
    watcher = wait_until(lambda: watcher_page(service, "> The previous watcher"), 30, "the restarted watcher's page")
    assert "> The previous watcher stopped without a clean shutdown: its last heartbeat was at " in str(watcher.data)

    moved = wait_until(lambda: service.processed_files().get(name), 120, f"{name} loaded after the restart")
    assert moved.read_text(encoding="utf-8") == csv_text(uci_rows(900000, 30))
    assert final_states(service, name) == ["COMPLETED", "CRASHED"]
    runs = {str(run.id): run for run in service.runs_for(name)}
    assert runs[str(interrupted.id)].state.type.value == "CRASHED"
    assert "service stopped" in runs[str(interrupted.id)].state.message
    (completed,) = [run for run in runs.values() if run.state.type.value == "COMPLETED"]
    assert ledger(service, name) == [("loaded", 30, 30, str(completed.id))]
    assert silver_rows_of(service, name) == 30

    limit = service.call(lambda client: client.read_global_concurrency_limit_by_name("medallion-warehouse"))
    assert (limit.limit, limit.active_slots) == (1, 0)


def test_sigterm_stops_every_process_of_the_service(service: Service) -> None:
    assert service.process is not None
    family = [service.process.pid, *descendant_pids(service.process.pid)]
    assert len(family) >= 3
    assert service.stop() == 0
    wait_until(lambda: not any(_alive(pid) for pid in family), 30, f"processes {family} to exit")
    service.env["PREFECT_SERVER_API_PORT"] = str(free_port())
    restarted = len(service.log())
    service.start()
    assert "without a clean shutdown" not in service.log()[restarted:]
    watcher = wait_until(lambda: watcher_page(service, "**Alive**"), 30, "the restarted watcher's page")
    assert "> The previous watcher" not in str(watcher.data)


def watcher_page(service: Service, showing: str) -> Any:
    """The latest version of the watcher's artifact once it shows `showing`."""
    watcher = latest_artifacts(service).get("medallion-watcher")
    return watcher if watcher is not None and showing in str(watcher.data) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as status:
            return status.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False
