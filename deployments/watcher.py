"""The folder watcher, the error watcher, and the one queue through which both submit runs."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast
from uuid import UUID

from watchfiles import Change, watch

from deployments import lifecycle
from deployments.names import FILE_DROP
from deployments.routing import Submission, batched, file_submission, retry_submission
from deployments.watcher_status import WatcherStatus
from medallion.file_kinds import is_data_file_name
from medallion.settings import Settings

logger = logging.getLogger(__name__)

_MAX_KEY_CHAIN = 100
_SUBMIT_ATTEMPTS = 5


class Submitter:
    """One thread submits every run, so a burst of drops never floods Prefect's SQLite database.

    File drops are batched: those queued together, and those that come while a file-drop run it submitted is still
    queued or running, go into one run once that run has ended. A drop with nothing in flight is submitted at once.
    """

    def __init__(
        self, stop: threading.Event, status: WatcherStatus, busy_requeue_s: float = 3.0, poll_s: float = 0.5
    ) -> None:
        self._queue: queue.Queue[tuple[Submission, ...]] = queue.Queue()
        self._stop = stop
        self._status = status
        self._busy_requeue_s = busy_requeue_s
        self._poll_s = poll_s
        self._accepted_keys: set[str] = set()
        self._held: list[Submission] = []
        self._in_flight: UUID | None = None
        self._polled_at = 0.0

    def put(self, submission: Submission, why: str | None = None) -> None:
        """Queue a submission; `why` is what the watcher's status page says about it (nothing for a re-check)."""
        self.put_together([(submission, why)])

    def put_together(self, submissions: Sequence[tuple[Submission, str | None]]) -> None:
        """Queue submissions (each with its `why`) as one item, so this thread takes them all at once: drops found
        settled together go into one run, never split by this thread waking up between two of them."""
        for submission, why in submissions:
            if why is not None:
                for member in submission.files():
                    self._status.queued(member, why)
        if submissions:
            self._queue.put(tuple(submission for submission, _ in submissions))

    def run(self) -> None:
        while not self._stop.is_set():
            self._take_queued()
            if self._held and not self._file_drop_in_flight():
                batch = batched(self._held)
                self._held = []
                if batch is not None:
                    self._submit_or_drop(batch)

    def _take_queued(self) -> None:
        """Everything queued: file drops held for the next file-drop run, any other run submitted now."""
        try:
            taken = list(self._queue.get(timeout=0.1 if self._held else 0.2))
        except queue.Empty:
            return
        while True:
            try:
                taken += self._queue.get_nowait()
            except queue.Empty:
                break
        for submission in taken:
            if submission.deployment == FILE_DROP:
                self._held.append(submission)
            else:
                self._submit_or_drop(submission)

    def _file_drop_in_flight(self) -> bool:
        """Whether the last file-drop run submitted is still queued or running, asked at most every `poll_s`."""
        if self._in_flight is None:
            return False
        if time.monotonic() - self._polled_at < self._poll_s:
            return True
        self._polled_at = time.monotonic()
        from prefect import get_client
        from prefect.exceptions import ObjectNotFound

        try:
            with get_client(sync_client=True) as client:
                state = client.read_flow_run(self._in_flight).state
        except ObjectNotFound:
            state = None
        except Exception as error:
            logger.warning("could not read the state of run %s (%s): asking again", self._in_flight, error)
            return True
        if state is not None and not state.is_final():
            return True
        self._in_flight = None
        return False

    def _submit_or_drop(self, submission: Submission) -> None:
        try:
            self._submit_with_retries(submission)
        except Exception as error:
            logger.exception("could not submit %s to %s", submission.label, submission.deployment)
            self._status.dropped(submission, f"could not be submitted: {error}")

    def _submit_with_retries(self, submission: Submission) -> None:
        delay = 1.0
        for attempt in range(1, _SUBMIT_ATTEMPTS + 1):
            try:
                self._submit(submission)
                return
            except Exception as error:
                if attempt == _SUBMIT_ATTEMPTS or self._stop.is_set():
                    raise
                logger.warning("submitting %s failed (%s); trying again in %.0f s", submission.label, error, delay)
                self._stop.wait(delay)
                delay *= 2

    def _still_there(self, submission: Submission) -> bool:
        """Whether the file is where it was queued, with the content it had then; the status page says if not."""
        if not submission.path.exists():
            logger.info("%s is gone before its run was submitted: nothing to do", submission.path.name)
            self._status.dropped(submission, "gone before its run was submitted")
            return False
        if submission.signature is not None and lifecycle.file_signature(submission.path) != submission.signature:
            logger.info("%s changed since it was queued: its new content is queued on its own", submission.path.name)
            self._status.dropped(submission, "changed since it was queued: its new content is queued on its own")
            return False
        return True

    def _submit(self, submission: Submission) -> None:
        from prefect.client.schemas.objects import FlowRun
        from prefect.deployments import run_deployment

        present = [member for member in submission.files() if self._still_there(member)]
        if len(present) < len(submission.files()):
            found = batched(present)
            if found is None:
                return
            submission = found
        key = submission.key()
        for _ in range(_MAX_KEY_CHAIN):
            run = cast(
                FlowRun,
                run_deployment(
                    submission.deployment,
                    parameters=submission.parameters,
                    timeout=0,
                    idempotency_key=key,
                    flow_run_name=submission.run_name,
                    tags=list(submission.tags),
                ),
            )
            state = run.state
            if state is not None and state.is_final():
                key = f"{submission.key()}/after/{run.id}"
                continue
            if _same_files(run.parameters, submission.parameters) and key not in self._accepted_keys:
                self._accepted_keys.add(key)
                logger.info("submitted %s to %s as run %s", submission.label, submission.deployment, run.id)
                self._status.submitted(submission, str(run.id))
                if submission.deployment == FILE_DROP:
                    self._in_flight = run.id
                return
            # The same content is in flight (under this name or another): decide again once that run has ended.
            logger.info(
                "run %s of the same content as %s is in flight: checking again in %.0f s",
                run.id,
                submission.label,
                self._busy_requeue_s,
            )
            timer = threading.Timer(self._busy_requeue_s, self.put, args=(submission,))
            timer.daemon = True
            timer.start()
            return
        logger.error("%s was submitted %d times already: giving up", submission.label, _MAX_KEY_CHAIN)
        self._status.dropped(submission, f"submitted {_MAX_KEY_CHAIN} times already: given up")


def _same_files(found: dict[str, object], wanted: dict[str, object]) -> bool:
    """Whether a run's parameters name the same file, or the same files, as a submission's."""
    return all(found.get(name) == wanted.get(name) for name in ("path", "paths"))


@dataclass
class _Observation:
    size: int
    mtime_ns: int
    since: float


class FolderWatcher:
    """Watches RAW_DATA_PATH (not its sub-folders) and submits each data file once it stops growing."""

    def __init__(self, settings: Settings, submitter: Submitter, stop: threading.Event, status: WatcherStatus) -> None:
        self._pipeline = settings.pipeline
        self._service = settings.service
        self._submitter = submitter
        self._stop = stop
        self._status = status
        self._pending: dict[Path, _Observation] = {}
        self._submitted: dict[Path, tuple[int, int]] = {}

    def run(self) -> None:
        folder = self._pipeline.raw_data_path.resolve()
        folder.mkdir(parents=True, exist_ok=True)
        for entry in sorted(folder.iterdir()):
            self._consider(entry)
        tick_ms = max(50, int(self._service.watch_stable_seconds * 250))
        for changes in watch(
            folder,
            watch_filter=None,
            debounce=400,
            step=50,
            rust_timeout=tick_ms,
            yield_on_timeout=True,
            stop_event=self._stop,
            recursive=False,
        ):
            self._changed(changes)

    def _changed(self, changes: Iterable[tuple[Change, str]]) -> None:
        """Take in one look's changes. They come as a set, so a file moved away and dropped again under its name
        may come as added before deleted: a path deleted but there again is considered anew."""
        for change, raw_path in changes:
            path = Path(raw_path)
            if change == Change.deleted:
                self._pending.pop(path, None)
                self._submitted.pop(path, None)
                if path.exists():
                    self._consider(path)
            else:
                self._consider(path)
        self._check_pending()

    def _consider(self, path: Path) -> None:
        if path.parent != self._pipeline.raw_data_path.resolve() or not is_data_file_name(path.name):
            return
        if path not in self._pending:
            self._pending[path] = _Observation(-1, -1, time.monotonic())
        self._check_pending()

    def _check_pending(self) -> None:
        now = time.monotonic()
        settled: list[tuple[Submission, str | None]] = []
        # Whatever fails further on, the files found settled before it are queued, not forgotten.
        try:
            for path, seen in list(self._pending.items()):
                try:
                    status = path.stat()
                except FileNotFoundError:
                    del self._pending[path]
                    continue
                if path.is_symlink() or not path.is_file():
                    del self._pending[path]
                    continue
                if (status.st_size, status.st_mtime_ns) != (seen.size, seen.mtime_ns):
                    self._pending[path] = _Observation(status.st_size, status.st_mtime_ns, now)
                    continue
                wait = self._service.watch_stable_seconds
                if status.st_size == 0:
                    wait = max(wait, self._service.empty_file_wait_seconds)
                if now - seen.since < wait:
                    continue
                del self._pending[path]
                if self._submitted.get(path) == (status.st_size, status.st_mtime_ns):
                    continue
                self._submitted[path] = (status.st_size, status.st_mtime_ns)
                submission = self._file_submission(path, status.st_size, (status.st_size, status.st_mtime_ns))
                if submission is not None:
                    settled.append((submission, f"stopped growing at {status.st_size:,} bytes"))
        finally:
            self._submitter.put_together(settled)
        self._status.settling(path.name for path in self._pending)

    def _file_submission(self, path: Path, size: int, signature: tuple[int, int]) -> Submission | None:
        try:
            sha256 = lifecycle.content_sha256(path)
        except FileNotFoundError:
            return None
        submission = file_submission(path, size, sha256, self._pipeline, signature)
        logger.info("%r stopped growing at %s bytes: queued for %s", path.name, f"{size:,}", submission.deployment)
        return submission


class ErrorWatcher:
    """Resubmits retryable files in `raw/errors/` once their sidecar's retry time has come."""

    def __init__(self, settings: Settings, submitter: Submitter, stop: threading.Event) -> None:
        self._pipeline = settings.pipeline
        self._service = settings.service
        self._submitter = submitter
        self._stop = stop
        self._queued: set[tuple[Path, int]] = set()

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.scan()
            except Exception:
                logger.exception("scanning %s failed", lifecycle.errors_dir(self._pipeline))
            self._stop.wait(self._service.error_scan_seconds)

    def scan(self) -> None:
        for path, record in lifecycle.due_retries(self._pipeline):
            attempt = record.attempts + 1
            if (path, attempt) in self._queued:
                continue
            self._queued.add((path, attempt))
            sha256 = record.content_sha256 or lifecycle.content_sha256(path)
            logger.info("retrying %r (attempt %d): %s", path.name, attempt, record.reason)
            self._submitter.put(retry_submission(path, sha256, attempt), f"retry due (attempt {attempt})")
