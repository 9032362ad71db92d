"""`medallion up`: a local Prefect server, the served deployments and the watchers, stopped cleanly by Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
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
from medallion.file_kinds import is_data_file_name
from medallion.settings import ServiceSettings, Settings, SettingsError, load_settings

logger = logging.getLogger("medallion.service")


def seed_sample(settings: Settings) -> list[Path]:
    """On a first start (no warehouse yet, nothing waiting) copy the shipped sample into the raw folder."""
    pipeline, service = settings.pipeline, settings.service
    source = service.sample_data_path
    if not service.seed_sample or pipeline.warehouse_path.exists() or not source.is_dir():
        return []
    if any(is_data_file_name(entry.name) for entry in pipeline.raw_data_path.iterdir()):
        return []
    copied = []
    for entry in sorted(source.iterdir()):
        if entry.is_file() and is_data_file_name(entry.name):
            target = pipeline.raw_data_path / entry.name
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


@dataclass(frozen=True)
class Child:
    """A child process of the service and how long it may take to stop."""

    process: subprocess.Popen[bytes]
    label: str
    grace_s: float


def run_service(settings: Settings, stop: threading.Event, children: list[Child]) -> int:
    """Start the server (unless one answers already) and the serving process, then watch them until `stop`."""
    service = settings.service
    api_url, own_server = _api_url(service)
    environment = prefect_environment(service, api_url)
    if own_server:
        logger.info("starting the Prefect server on %s (data in %s)", service.own_ui_url, service.prefect_home)
        children.append(Child(start_server(service, environment), "Prefect server", 15))
    for path in seed_sample(settings):
        logger.info("first start: the shipped sample %s will be loaded", path.name)
    worker = spawn([sys.executable, "-m", "deployments.worker"], environment)
    children.append(Child(worker, "serving process", 20))
    raw = settings.pipeline.raw_data_path.resolve()
    print(f"Medallion is up. Prefect UI: {api_url.removesuffix('/api')}  (drop files into {raw})", flush=True)
    while not stop.wait(0.5):
        for child in children:
            if child.process.poll() is not None:
                logger.error("the %s exited with code %s", child.label, child.process.returncode)
                return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medallion up", description=__doc__)
    parser.parse_args(argv)
    console_logging()
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"medallion: {error}", file=sys.stderr)
        return 2
    pipeline = settings.pipeline
    for folder in (pipeline.raw_data_path, lifecycle.errors_dir(pipeline), pipeline.processed_path):
        folder.mkdir(parents=True, exist_ok=True)
    settings.service.prefect_home.mkdir(parents=True, exist_ok=True)

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        logger.info("%s received: stopping", signal.Signals(signum).name)
        stop.set()

    previous = {signum: signal.signal(signum, request_stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    children: list[Child] = []
    try:
        return run_service(settings, stop, children)
    except ServerError as error:
        print(f"medallion: {error}", file=sys.stderr)
        return 1
    finally:
        # The serving process stops before the server it reports to.
        for child in reversed(children):
            stop_process(child.process, child.label, grace_s=child.grace_s)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


if __name__ == "__main__":
    raise SystemExit(main())
