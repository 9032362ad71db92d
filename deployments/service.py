"""`medallion up`: a local Prefect server, the served deployments and the watchers, stopped cleanly by Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType

from deployments import lifecycle
from deployments.server import (
    ServerError,
    console_logging,
    is_healthy,
    prefect_environment,
    spawn,
    start_server,
    stop_process,
)
from deployments.settings import ServiceSettings, load_service_settings
from medallion.settings import Settings, SettingsError, load_settings

logger = logging.getLogger("medallion.service")


def seed_sample(settings: Settings, service: ServiceSettings) -> list[Path]:
    """On a first start (no warehouse yet, nothing waiting) copy the shipped sample into the raw folder."""
    source = service.sample_data_path
    if not service.seed_sample or settings.warehouse_path.exists() or not source.is_dir():
        return []
    if any(lifecycle.is_readable_name(entry.name) for entry in settings.raw_data_path.iterdir()):
        return []
    copied = []
    for entry in sorted(source.iterdir()):
        if entry.is_file() and lifecycle.is_readable_name(entry.name):
            target = settings.raw_data_path / entry.name
            shutil.copyfile(entry, target)
            copied.append(target)
    return copied


def _api_url(service: ServiceSettings) -> tuple[str, bool]:
    """The API to use and whether this service must start it."""
    if service.api_url and service.api_url.rstrip("/") != service.own_api_url:
        if not is_healthy(service.api_url):
            raise ServerError(f"PREFECT_API_URL={service.api_url} does not answer; unset it to start a local server")
        return service.api_url, False
    if is_healthy(service.own_api_url):
        return service.own_api_url, False
    return service.own_api_url, True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medallion up", description=__doc__)
    parser.parse_args(argv)
    console_logging()
    try:
        settings = load_settings()
        service = load_service_settings()
    except SettingsError as error:
        print(f"medallion: {error}", file=sys.stderr)
        return 2
    for folder in (settings.raw_data_path, lifecycle.errors_dir(settings), settings.processed_path):
        folder.mkdir(parents=True, exist_ok=True)
    service.prefect_home.mkdir(parents=True, exist_ok=True)

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        logger.info("%s received: stopping", signal.Signals(signum).name)
        stop.set()

    previous = {signum: signal.signal(signum, request_stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    server: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[bytes] | None = None
    try:
        api_url, own_server = _api_url(service)
        environment = prefect_environment(service, api_url)
        if own_server:
            logger.info("starting the Prefect server on %s (data in %s)", service.own_ui_url, service.prefect_home)
            server = start_server(service, environment)
        for path in seed_sample(settings, service):
            logger.info("first start: the shipped sample %s will be loaded", path.name)
        worker = spawn([sys.executable, "-m", "deployments.worker"], environment)
        ui_url = api_url.removesuffix("/api")
        print(
            f"Medallion is up. Prefect UI: {ui_url}  (drop files into {settings.raw_data_path.resolve()})", flush=True
        )
        while not stop.wait(0.5):
            if worker.poll() is not None:
                logger.error("the serving process exited with code %s", worker.returncode)
                return 1
            if server is not None and server.poll() is not None:
                logger.error("the Prefect server exited with code %s", server.returncode)
                return 1
        return 0
    except ServerError as error:
        print(f"medallion: {error}", file=sys.stderr)
        return 1
    finally:
        if worker is not None:
            stop_process(worker, "serving process", grace_s=20)
        if server is not None:
            stop_process(server, "Prefect server", grace_s=15)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


if __name__ == "__main__":
    raise SystemExit(main())
