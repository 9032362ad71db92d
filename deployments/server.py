"""Starting and stopping the child processes: a local `prefect server start` and the serving worker."""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from medallion.settings import ServiceSettings

logger = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


class ServerError(RuntimeError):
    """The Prefect server could not be reached or started."""


def prefect_environment(service: ServiceSettings, api_url: str) -> dict[str, str]:
    """The Prefect settings every child process runs with."""
    return {
        "PREFECT_HOME": str(service.prefect_home.resolve()),
        "PREFECT_API_URL": api_url,
        "PREFECT_UI_URL": api_url.removesuffix("/api"),
        "PREFECT_SERVER_API_HOST": service.server_host,
        "PREFECT_SERVER_API_PORT": str(service.server_port),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_EXPERIMENTAL_EVENTS": "true",
        "PREFECT_RUNNER_POLL_FREQUENCY": str(service.runner_poll_seconds),
        "PREFECT_RUNNER_PROCESS_LIMIT": str(service.runner_process_limit),
        "PREFECT_LOGGING_EXTRA_LOGGERS": "deployments,medallion,enrichment",
        "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
        # Prefect 2.20's runner starts each flow run as `python -m prefect.engine` after importing it, and the engine
        # calls its own deprecated loader: two warnings per run that a user can do nothing about.
        "PYTHONWARNINGS": ",".join(
            (
                "ignore:'prefect.engine' found in sys.modules:RuntimeWarning",
                "ignore:prefect.deployments.deployments.load_flow_from_flow_run has been deprecated",
            )
        ),
    }


def ui_url(service: ServiceSettings) -> str:
    """The UI of the API the service reports to: PREFECT_API_URL's when set, else the local server's."""
    if service.api_url:
        return service.api_url.rstrip("/").removesuffix("/api")
    return service.own_ui_url


def console_logging() -> None:
    """INFO logs of the service's own modules on stderr; Prefect keeps its own handlers for the rest."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s.%(msecs)03d | %(levelname)-7s | %(name)s - %(message)s", "%H:%M:%S")
    )
    for name in ("deployments", "medallion"):
        service_logger = logging.getLogger(name)
        service_logger.setLevel(logging.INFO)
        service_logger.addHandler(handler)
        service_logger.propagate = False


def is_healthy(api_url: str, timeout_s: float = 2.0) -> bool:
    try:
        response = httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout_s)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def port_is_free(host: str, port: int) -> bool:
    """The same check `prefect server start` makes before it starts (a plain bind, no SO_REUSEADDR)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((host, port))
    except OSError:
        return False
    return True


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM if the supervisor is killed, so no server outlives it."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(command: list[str], environment: dict[str, str], log_path: Path | None = None) -> subprocess.Popen[bytes]:
    """A child in its own process group (Ctrl-C reaches only the supervisor, which stops children in order)."""
    output = log_path.open("wb") if log_path is not None else None
    try:
        return subprocess.Popen(
            command,
            env={**os.environ, **environment},
            stdout=output,
            stderr=subprocess.STDOUT if output is not None else None,
            process_group=0,
            preexec_fn=_die_with_parent,  # noqa: PLW1509
        )
    finally:
        if output is not None:
            output.close()


def prefect_command() -> list[str]:
    beside = Path(sys.executable).with_name("prefect")
    found = str(beside) if beside.exists() else shutil.which("prefect")
    if found is None:
        raise ServerError("the `prefect` command is not installed beside this Python")
    return [found]


def start_server(service: ServiceSettings, environment: dict[str, str]) -> subprocess.Popen[bytes]:
    """`prefect server start` on the configured host and port, logging to PREFECT_HOME/server.log (a clean log)."""
    log_path = service.prefect_home.resolve() / "server.log"
    command = [
        *prefect_command(),
        "server",
        "start",
        "--host",
        service.server_host,
        "--port",
        str(service.server_port),
    ]
    deadline = time.monotonic() + service.server_start_timeout_s
    if not port_is_free(service.server_host, service.server_port):
        logger.info(
            "port %d is still held (a server that just stopped leaves closing connections behind): waiting",
            service.server_port,
        )
        if not wait_for(
            lambda: port_is_free(service.server_host, service.server_port), service.server_start_timeout_s, 1.0
        ):
            raise ServerError(
                f"port {service.server_port} on {service.server_host} stayed in use; set PREFECT_SERVER_API_PORT"
            )
    process = spawn(command, environment, log_path)
    api_url = service.own_api_url
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerError(f"the Prefect server exited with code {process.returncode}: {_tail(log_path)}")
        if is_healthy(api_url, timeout_s=1.0):
            logger.info("Prefect server is up at %s (log: %s)", service.own_ui_url, log_path)
            return process
        time.sleep(0.25)
    stop_process(process, "Prefect server", grace_s=5)
    waited = f"{service.server_start_timeout_s:.0f} s"
    raise ServerError(f"the Prefect server did not answer on {api_url} within {waited}: {_tail(log_path)}")


def _tail(log_path: Path, lines: int = 5) -> str:
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return "no server log"
    return " | ".join(text[-lines:]) or "empty server log"


def stop_process(process: subprocess.Popen[bytes], label: str, grace_s: float) -> None:
    """SIGTERM, wait up to `grace_s`, then SIGKILL the process group."""
    if process.poll() is not None:
        return
    _signal_group(process, signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        logger.warning("%s did not stop within %.0f s: killing it", label, grace_s)
        _signal_group(process, signal.SIGKILL)
        process.wait(timeout=10)
    if process.poll() is not None:
        _signal_group(process, signal.SIGKILL)
    logger.info("%s stopped", label)


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        return
    except PermissionError:
        process.send_signal(signum)


def wait_for(condition: Callable[[], bool], timeout_s: float, interval_s: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval_s)
    return condition()
