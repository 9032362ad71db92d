"""A self-contained `medallion up` on a scratch folder, for the service tests and the scripts that measure it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from medallion.settings import load_settings
from medallion.warehouse import Warehouse

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.1) -> Any:
    """The first true value of `condition`, asked every `interval_s`; TimeoutError naming `what` after
    `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval_s)
    raise TimeoutError(f"gave up after {timeout_s:.0f} s waiting for {what}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scratch_environment(root: Path, **overrides: str) -> dict[str, str]:
    """The environment of a service in `root`: its own server port, Prefect home and folders.

    No Prefect setting of the caller leaks in.
    """
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    environment.update(
        {
            "PREFECT_HOME": str(root / "prefect"),
            "PREFECT_SERVER_API_HOST": "127.0.0.1",
            "PREFECT_SERVER_API_PORT": str(free_port()),
            "RAW_DATA_PATH": str(root / "raw"),
            "PROCESSED_PATH": str(root / "processed"),
            "WAREHOUSE_PATH": str(root / "warehouse.duckdb"),
            "GOLD_EXPORT_PATH": str(root / "gold"),
            "STAGING_PATH": str(root / "staging"),
            "SEED_SAMPLE_ON_FIRST_START": "false",
            "ENABLE_EXTERNAL_ENRICHMENT": "false",
            **overrides,
        }
    )
    return environment


def start_scratch_service(environment: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """`python -m deployments.service` from the project folder, its output appended to `log_path`.

    It runs in a session of its own so the whole service can be signalled at once.
    """
    with log_path.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "deployments.service"],
            cwd=PROJECT_ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def descendant_pids(pid: int) -> list[int]:
    """Every process below `pid` in the process tree, children first."""
    table = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True, check=True).stdout
    children: dict[int, list[int]] = {}
    for line in table.splitlines():
        child, parent = (int(part) for part in line.split())
        children.setdefault(parent, []).append(child)
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def query_warehouse(environment: dict[str, str], sql: str, parameters: list[Any] | None = None) -> list[Any]:
    """Rows of `sql` on the service's warehouse, read-only, waiting while a run holds it."""
    settings = load_settings(WAREHOUSE_PATH=environment["WAREHOUSE_PATH"], WAREHOUSE_LOCK_TIMEOUT=60)
    with Warehouse(settings.pipeline, read_only=True) as warehouse, warehouse.connection() as connection:
        return connection.execute(sql, parameters or []).fetchall()
