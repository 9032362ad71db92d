"""A real `medallion up` (Prefect server, served deployments, watchers) on temporary folders, shared by the suite."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest

from .scratch import descendant_pids, query_warehouse, scratch_environment, start_scratch_service, wait_for

T = TypeVar("T")
UCI_HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
START_TIMEOUT_S = 120.0


def uci_rows(invoice_base: int, count: int, *, customer: int = 17850, day: int = 1, price: str = "2.55") -> list[str]:
    """`count` distinct, valid rows in the UCI layout; `invoice_base` keeps files apart."""
    return [
        f"{invoice_base + index},85123A,WHITE HANGING HEART T-LIGHT HOLDER,{index % 5 + 1},"
        f"12/{day}/2010 8:{index % 60:02d},{price},{customer + index % 7},United Kingdom"
        for index in range(count)
    ]


def csv_text(rows: list[str]) -> str:
    return "\n".join([UCI_HEADER, *rows]) + "\n"


@dataclass
class Webhook:
    """A local HTTP receiver standing in for the team's alert channel."""

    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Service:
    root: Path
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def raw(self) -> Path:
        return Path(self.env["RAW_DATA_PATH"])

    @property
    def errors(self) -> Path:
        return self.raw / "errors"

    @property
    def processed(self) -> Path:
        return Path(self.env["PROCESSED_PATH"])

    @property
    def warehouse(self) -> Path:
        return Path(self.env["WAREHOUSE_PATH"])

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.env['PREFECT_SERVER_API_PORT']}/api"

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def start(self) -> None:
        offset = len(self.log()) if self.log_path.exists() else 0
        process = self.process = start_scratch_service(self.env, self.log_path)
        try:
            wait_until(
                lambda: "watching " in self.log()[offset:] or process.poll() is not None,
                START_TIMEOUT_S,
                "the service to start",
            )
        except AssertionError:
            self.kill_everything()
            raise AssertionError("the service did not start:\n" + self.log()[offset:][-3000:]) from None
        if process.poll() is not None:
            raise AssertionError(self.log()[offset:][-3000:])

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)

    def kill_everything(self) -> list[int]:
        """`kill -9` of every process of the service, as a power cut would."""
        assert self.process is not None
        doomed = [self.process.pid, *descendant_pids(self.process.pid)]
        for pid in doomed:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=30)
        return doomed

    def call(self, work: Callable[[Any], Awaitable[T]]) -> T:
        from prefect.client.orchestration import PrefectClient

        async def run() -> T:
            async with PrefectClient(api=self.api_url) as client:
                return await work(client)

        return asyncio.run(run())

    def flow_runs(self) -> list[Any]:
        return self.call(lambda client: client.read_flow_runs(limit=200))

    def runs_for(self, name: str) -> list[Any]:
        """The runs that loaded a file of this name, alone (`path`) or in a batch (`paths`)."""

        def names(run: Any) -> set[str]:
            paths = [run.parameters.get("path", ""), *(run.parameters.get("paths") or [])]
            return {Path(str(path)).name for path in paths}

        return [run for run in self.flow_runs() if name in names(run)]

    def processed_files(self) -> dict[str, Path]:
        return {path.name: path for path in self.processed.glob("*/*") if path.is_file()}

    def query(self, sql: str, parameters: list[Any] | None = None) -> list[tuple[Any, ...]]:
        return query_warehouse(self.env, sql, parameters)


def wait_until(condition: Callable[[], object], timeout_s: float, what: str, interval_s: float = 0.25) -> Any:
    """`wait_for`, failing the test (an AssertionError) when it gives up."""
    try:
        return wait_for(condition, timeout_s, what, interval_s)
    except TimeoutError as error:
        raise AssertionError(str(error)) from None


@pytest.fixture(scope="session")
def webhook() -> Iterator[Webhook]:
    received = Webhook(url="")

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length", "0"))
            payload = self.rfile.read(length)
            received.bodies.append({"path": self.path, **json.loads(payload or b"{}")})
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    received.url = f"http://127.0.0.1:{server.server_port}/hooks/quality-token-123"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield received
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory, webhook: Webhook) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("service")
    environment = scratch_environment(
        root,
        WATCH_STABLE_SECONDS="0.3",
        ERROR_RETRY_DELAY="2",
        ERROR_MAX_RETRIES="2",
        ERROR_SCAN_INTERVAL="0.5",
        WAREHOUSE_LOCK_TIMEOUT="1",
        QUALITY_ALERT_THRESHOLD="85",
        ALERT_WEBHOOK_URL=webhook.url,
    )
    handle = Service(root=root, env=environment, log_path=root / "service.log")
    handle.start()
    try:
        yield handle
    finally:
        if handle.process is not None and handle.process.poll() is None:
            handle.stop()
