"""The serving process: set-up and crash recovery, then the watchers beside `serve` of the six deployments.

Started by `deployments.service` with the Prefect environment already set (`python -m deployments.worker`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

from prefect.deployments.runner import RunnerDeployment

from deployments import control, lifecycle, names
from deployments.control import OrphanedRun
from deployments.definitions import runner_deployments
from deployments.heartbeat import Heartbeat
from deployments.routing import Submission, file_submission, retry_submission
from deployments.server import console_logging, ui_url
from deployments.warm_runs import WarmRunner
from deployments.watcher import ErrorWatcher, FolderWatcher, Submitter
from deployments.watcher_status import WatcherStatus
from medallion.settings import PipelineSettings, ServiceSettings, load_settings

logger = logging.getLogger("medallion.service")


def resubmissions(orphans: list[OrphanedRun], pipeline: PipelineSettings) -> list[Submission]:
    """The files of crashed file runs (each file of a crashed batch) that are still where their run left them."""
    found = []
    for orphan in orphans:
        if orphan.deployment not in names.FILE_DEPLOYMENTS:
            continue
        for path in orphan.paths:
            if lifecycle.location_of(path, pipeline) is None:
                continue
            sha256 = lifecycle.content_sha256(path)
            if orphan.deployment == names.ERROR_RETRY:
                found.append(retry_submission(path, sha256, int(orphan.parameters.get("attempt", 2))))
            else:
                found.append(file_submission(path, path.stat().st_size, sha256, pipeline))
    return found


async def prepare(service: ServiceSettings, deployments: list[RunnerDeployment]) -> list[OrphanedRun]:
    """Register the deployments (so drops can be submitted before serving starts), then the server-side set-up."""
    for deployment in deployments:
        await deployment.apply()
    await control.ensure_warehouse_limit(service)
    orphans = await control.crash_orphaned_runs()
    await control.release_leaked_slots(service)
    await control.configure_quality_alert(service)
    return orphans


async def serve(deployments: list[RunnerDeployment], service: ServiceSettings) -> None:
    """`prefect.serve` of the deployments, each flow run forked from the warm process (`deployments.warm_runs`)."""
    runner = WarmRunner(limit=service.runner_process_limit)
    for deployment in deployments:
        await runner.add_deployment(deployment)
    await runner.start()


def _thread(name: str, target: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


def main() -> int:
    console_logging()
    settings = load_settings()
    pipeline = settings.pipeline
    for folder in (pipeline.raw_data_path, lifecycle.errors_dir(pipeline), pipeline.processed_path):
        folder.mkdir(parents=True, exist_ok=True)

    deployments = runner_deployments()
    orphans = asyncio.run(prepare(settings.service, deployments))

    stop = threading.Event()
    status = WatcherStatus(pipeline.raw_data_path.resolve())
    heartbeat = Heartbeat(status, stop, ui_url=ui_url(settings.service))
    heartbeat.previous_watcher()
    submitter = Submitter(stop, status)
    folder_watcher = FolderWatcher(settings, submitter, stop, status)
    error_watcher = ErrorWatcher(settings, submitter, stop)
    for submission in resubmissions(orphans, pipeline):
        logger.info("resubmitting %r after a crash", submission.path.name)
        submitter.put(submission, "resubmitted after a crash")
    threads = [
        _thread("submitter", submitter.run),
        _thread("folder-watcher", folder_watcher.run),
        _thread("error-watcher", error_watcher.run),
        _thread("heartbeat", heartbeat.run),
    ]
    raw = pipeline.raw_data_path.resolve()
    logger.info("watching %s for files (errors in %s)", raw, lifecycle.errors_dir(pipeline))
    try:
        asyncio.run(serve(deployments, settings.service))
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)
        heartbeat.stopped()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
