"""The watcher's status page: what waits, what it saw, and whether it is alive or stopped cleanly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from deployments import watcher_status
from deployments.routing import file_submission, retry_submission
from deployments.watcher_status import WatcherStatus
from medallion.settings import Settings

START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
SHA = "ab" * 32


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def status_with_clock() -> tuple[WatcherStatus, Clock]:
    clock = Clock()
    return WatcherStatus(Path("/data/raw"), clock=clock), clock


def test_a_file_waits_to_settle_then_for_its_run_and_is_seen_submitted(settings: Settings) -> None:
    status, clock = status_with_clock()
    submission = file_submission(Path("/data/raw/sales | march.csv"), 1234, SHA, settings.pipeline)

    status.settling(["sales | march.csv"])
    assert status.take_change() and not status.take_change()
    status.settling(["sales | march.csv"])
    assert not status.take_change(), "the same files settling again is no change"
    assert [(item.file_name, item.waits_for) for item in status.snapshot().waiting] == [
        ("sales | march.csv", "its size to settle")
    ]

    clock.tick(2)
    status.settling([])
    status.queued(submission, "stopped growing at 1,234 bytes")
    (waiting,) = status.snapshot().waiting
    assert (waiting.waits_for, waiting.since) == ("its run on `medallion/file-drop`", clock.now)

    clock.tick(1)
    status.submitted(submission, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
    snapshot = status.snapshot()
    assert snapshot.waiting == []
    assert [sighting.what for sighting in snapshot.last_seen] == [
        "submitted to `medallion/file-drop`",
        "stopped growing at 1,234 bytes",
    ]

    markdown = watcher_status.alive_markdown(snapshot, clock.now, 15, "http://127.0.0.1:4300")
    assert "**Alive**: last heartbeat 12:00:03 UTC on 2026-03-01" in markdown
    assert "Nothing: every file seen has been submitted." in markdown
    assert "| 12:00:03 UTC | `sales \\| march.csv` | submitted to `medallion/file-drop` as run [0f1e2d3c](" in markdown
    assert "http://127.0.0.1:4300/flow-runs/flow-run/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0)" in markdown


def test_a_dropped_submission_leaves_the_queue_with_its_reason() -> None:
    status, _ = status_with_clock()
    retry = retry_submission(Path("/data/raw/errors/busy.csv"), SHA, 2)
    status.queued(retry, "retry due (attempt 2)")
    assert "| `busy.csv` | its run on `medallion/error-retry` | 12:00:00 UTC |" in watcher_status.alive_markdown(
        status.snapshot(), START, 15
    )
    status.dropped(retry, "gone before its run was submitted")
    snapshot = status.snapshot()
    assert snapshot.waiting == []
    assert snapshot.last_seen[0].what == "gone before its run was submitted"


def test_only_a_stopped_description_counts_as_a_clean_shutdown() -> None:
    assert watcher_status.stopped_cleanly(watcher_status.stopped_description(START))
    assert not watcher_status.stopped_cleanly(watcher_status.alive_description(START))
    assert not watcher_status.stopped_cleanly(None)
    assert watcher_status.alive_description(START) == "alive, last heartbeat 12:00:00 UTC"


def test_the_stopped_page_and_an_unclean_predecessor_are_stated() -> None:
    status, _ = status_with_clock()
    status.previous_unclean = "its last heartbeat was at 11:58:45 UTC on 2026-03-01"
    alive = watcher_status.alive_markdown(status.snapshot(), START, 15)
    assert "> The previous watcher stopped without a clean shutdown: its last heartbeat was at 11:58:45 UTC" in alive
    stopped = watcher_status.stopped_markdown(status.snapshot(), START + timedelta(minutes=5))
    assert "**Stopped** at 12:05:00 UTC on 2026-03-01 (a clean shutdown)" in stopped
    assert "Alive" not in stopped
