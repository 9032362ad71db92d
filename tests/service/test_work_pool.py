"""The prefect.yaml route: `prefect deploy --all` to a process work pool, two workers, a burst with no lock error."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deployments.names import ALL_DEPLOYMENTS, FILE_DROP

from .conftest import Service, csv_text, uci_rows, wait_until
from .scratch import PROJECT_ROOT, descendant_pids, free_port, scratch_environment

PREFECT = str(Path(sys.executable).with_name("prefect"))


def _prefect(env: dict[str, str], *arguments: str, timeout_s: float = 120) -> str:
    finished = subprocess.run(
        [PREFECT, "--no-prompt", *arguments],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    assert finished.returncode == 0, finished.stdout[-2000:] + finished.stderr[-2000:]
    return finished.stdout


@pytest.fixture(scope="module")
def work_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("work-pool")
    port = free_port()
    env = scratch_environment(
        root,
        PREFECT_SERVER_API_PORT=str(port),
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_WORKER_QUERY_SECONDS="1",
        PWD=str(PROJECT_ROOT),
        PYTHONPATH=str(PROJECT_ROOT),
        WAREHOUSE_LOCK_TIMEOUT="1",
    )
    (root / "raw" / "errors").mkdir(parents=True)
    handle = Service(root=root, env={**env, "PREFECT_SERVER_API_PORT": str(port)}, log_path=root / "workers.log")
    processes: list[subprocess.Popen[bytes]] = []
    with handle.log_path.open("ab") as output:
        processes.append(
            subprocess.Popen(
                [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        try:
            wait_until(lambda: _healthy(handle), 120, "the Prefect server", interval_s=0.5)
            _prefect(env, "work-pool", "create", "medallion", "--type", "process")
            _prefect(env, "deploy", "--all", timeout_s=300)
            _prefect(env, "gcl", "create", "medallion-warehouse", "--limit", "1")
            processes += [_worker(env, root / f"worker-{index}.log", f"worker-{index}") for index in range(2)]
            yield handle
        finally:
            for process in reversed(processes):
                for pid in [process.pid, *descendant_pids(process.pid)]:
                    try:
                        os.kill(pid, 15)
                    except ProcessLookupError:
                        pass
            for process in processes:
                process.wait(timeout=60)


def _worker(env: dict[str, str], log_path: Path, name: str) -> subprocess.Popen[bytes]:
    """`prefect worker start` on the pool, taking up to three runs at a time."""
    command = [PREFECT, "worker", "start", "--pool", "medallion", "--name", name, "--limit", "3"]
    with log_path.open("ab") as output:
        return subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env={**env, "PREFECT_WORKER_PREFETCH_SECONDS": "1"},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _healthy(handle: Service) -> bool:
    import httpx

    try:
        return httpx.get(handle.api_url + "/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_two_workers_load_a_burst_from_the_prefect_yaml_deployments(work_pool: Service) -> None:
    async def registered(client: Any) -> dict[str, str | None]:
        return {name: (await client.read_deployment_by_name(name)).work_pool_name for name in ALL_DEPLOYMENTS}

    assert work_pool.call(registered) == dict.fromkeys(ALL_DEPLOYMENTS, "medallion")

    names = [f"pool burst {index}.csv" for index in range(6)]
    for index, name in enumerate(names):
        (work_pool.raw / name).write_text(csv_text(uci_rows(950000 + index * 100, 10)), encoding="utf-8")

    async def submit(client: Any) -> list[Any]:
        deployment = await client.read_deployment_by_name(FILE_DROP)
        return [
            await client.create_flow_run_from_deployment(deployment.id, parameters={"path": str(work_pool.raw / name)})
            for name in names
        ]

    submitted = work_pool.call(submit)
    wait_until(lambda: set(names) <= set(work_pool.processed_files()), 240, "the burst through two workers")

    async def read(client: Any) -> list[Any]:
        return [await client.read_flow_run(run.id) for run in submitted]

    def ended() -> list[Any] | None:
        runs = work_pool.call(read)
        return runs if all(run.state.is_final() for run in runs) else None

    runs = wait_until(ended, 60, "every run to end", interval_s=1)
    assert [run.state.type.value for run in runs] == ["COMPLETED"] * len(names)
    logs = [(work_pool.root / f"worker-{index}.log").read_text(encoding="utf-8") for index in range(2)]
    # A worker may also log a run it tried to take and lost to the other one: count completed submissions only.
    ran_by = [sum(f"Completed submission of flow run '{run.id}'" in log for run in runs) for log in logs]
    assert sum(ran_by) == len(names) and min(ran_by) >= 1, ran_by
    loaded = work_pool.query(
        "SELECT count(*), sum(silver_rows) FROM ops.files WHERE status = 'loaded' AND file_name LIKE 'pool burst %'"
    )
    assert loaded == [(6, 60)]
    for log in logs:
        assert "Could not set lock" not in log and "database is locked" not in log
