"""What the watcher is doing, as the `medallion-watcher` artifact shows it: alive or stopped, its heartbeat, the files
waiting to settle or to be submitted, and what it saw last (no Prefect here).

The watcher's threads note what happens on a `WatcherStatus`; the heartbeat thread (deployments.heartbeat) publishes
its `snapshot` as Markdown when it changed, and at every heartbeat even when it did not.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from deployments.routing import Submission

LAST_SEEN = 10
_ALIVE = "alive"
_STOPPED = "stopped"


@dataclass(frozen=True)
class Sighting:
    at: datetime
    file_name: str
    what: str
    flow_run_id: str | None = None


@dataclass(frozen=True)
class Waiting:
    file_name: str
    waits_for: str
    since: datetime


@dataclass(frozen=True)
class Snapshot:
    """The watcher at one moment."""

    folder: Path
    started_at: datetime
    waiting: list[Waiting]
    last_seen: list[Sighting]
    # What the previous watcher's last artifact said when it had not stopped cleanly.
    previous_unclean: str | None = None


@dataclass
class WatcherStatus:
    """Shared by the folder watcher, the error watcher and the submitter; every method is safe from any thread."""

    folder: Path
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    started_at: datetime = field(init=False)
    previous_unclean: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _settling: dict[str, datetime] = field(default_factory=dict, init=False, repr=False)
    _queued: dict[str, Waiting] = field(default_factory=dict, init=False, repr=False)
    _seen: deque[Sighting] = field(default_factory=lambda: deque(maxlen=LAST_SEEN), init=False, repr=False)
    _changed: threading.Event = field(default_factory=threading.Event, init=False, repr=False)

    def __post_init__(self) -> None:
        self.started_at = self.clock()

    def settling(self, file_names: Iterable[str]) -> None:
        """The files seen in the folder that are still growing (or waiting out the empty-file delay)."""
        names = set(file_names)
        with self._lock:
            if names == set(self._settling):
                return
            now = self.clock()
            self._settling = {name: self._settling.get(name, now) for name in sorted(names)}
            self._changed.set()

    def queued(self, submission: Submission, what: str) -> None:
        """A submission put on the queue; `what` says why (the file settled, a retry is due)."""
        with self._lock:
            now = self.clock()
            if submission.key() not in self._queued:
                self._queued[submission.key()] = Waiting(
                    submission.path.name, f"its run on `{submission.deployment}`", now
                )
            self._seen.appendleft(Sighting(now, submission.path.name, what))
            self._changed.set()

    def submitted(self, submission: Submission, flow_run_id: str) -> None:
        """A run submitted: of one file, or of a batch, each of whose files is seen submitted in it."""
        files = submission.files()
        what = f"submitted to `{submission.deployment}`"
        if submission.members:
            what = f"submitted in a batch of {len(files)} to `{submission.deployment}`"
        with self._lock:
            now = self.clock()
            for member in files:
                self._queued.pop(member.key(), None)
                self._seen.appendleft(Sighting(now, member.path.name, what, flow_run_id))
            self._changed.set()

    def dropped(self, submission: Submission, why: str) -> None:
        """A queued submission that will not run (the file is gone, changed, or could not be submitted)."""
        with self._lock:
            now = self.clock()
            for member in submission.files():
                self._queued.pop(member.key(), None)
                self._seen.appendleft(Sighting(now, member.path.name, why))
            self._changed.set()

    def take_change(self) -> bool:
        """Whether anything changed since the last call."""
        changed = self._changed.is_set()
        self._changed.clear()
        return changed

    def snapshot(self) -> Snapshot:
        with self._lock:
            settling = [Waiting(name, "its size to settle", since) for name, since in self._settling.items()]
            return Snapshot(
                folder=self.folder,
                started_at=self.started_at,
                waiting=[*settling, *self._queued.values()],
                last_seen=list(self._seen),
                previous_unclean=self.previous_unclean,
            )


def alive_description(heartbeat: datetime) -> str:
    """The artifact's one-line description, which the Artifacts page lists: the state and the heartbeat's time."""
    return f"{_ALIVE}, last heartbeat {_clock(heartbeat)}"


def stopped_description(stopped_at: datetime) -> str:
    return f"{_STOPPED} at {_clock(stopped_at)} (clean shutdown)"


def stopped_cleanly(description: str | None) -> bool:
    """Whether a `medallion-watcher` artifact's description is that of a watcher that stopped cleanly."""
    return (description or "").startswith(_STOPPED)


def alive_markdown(snapshot: Snapshot, heartbeat: datetime, interval_s: float, ui_url: str | None = None) -> str:
    every = f"{interval_s:g} s"
    headline = (
        f"**Alive**: last heartbeat {_clock(heartbeat)} on {heartbeat:%Y-%m-%d}. The watcher beats every {every}; "
        f"a heartbeat older than that means it is no longer running (the service stopped without a clean shutdown)."
    )
    return _markdown(snapshot, headline, ui_url)


def stopped_markdown(snapshot: Snapshot, stopped_at: datetime, ui_url: str | None = None) -> str:
    headline = (
        f"**Stopped** at {_clock(stopped_at)} on {stopped_at:%Y-%m-%d} (a clean shutdown). Files dropped now wait in "
        "the folder and are picked up at the next start."
    )
    return _markdown(snapshot, headline, ui_url)


def _markdown(snapshot: Snapshot, headline: str, ui_url: str | None) -> str:
    sections = ["# File watcher", headline]
    if snapshot.previous_unclean:
        sections.append(f"> The previous watcher stopped without a clean shutdown: {snapshot.previous_unclean}.")
    sections += [
        f"Watching `{_plain(str(snapshot.folder))}` since {_clock(snapshot.started_at)}.",
        "## Waiting",
        _waiting(snapshot.waiting),
        "## Last seen",
        _last_seen(snapshot.last_seen, ui_url),
    ]
    return "\n\n".join(sections) + "\n"


def _waiting(waiting: list[Waiting]) -> str:
    if not waiting:
        return "Nothing: every file seen has been submitted."
    rows = [f"| {_code(item.file_name)} | {item.waits_for} | {_clock(item.since)} |" for item in waiting]
    return "\n".join(["| File | Waits for | Since |", "|---|---|---|", *rows])


def _last_seen(sightings: list[Sighting], ui_url: str | None) -> str:
    if not sightings:
        return "No file yet."
    rows = [
        f"| {_clock(sighting.at)} | {_code(sighting.file_name)} | {_plain(sighting.what)}"
        f"{_run_link(sighting.flow_run_id, ui_url)} |"
        for sighting in sightings
    ]
    return "\n".join(["| Time | File | What |", "|---|---|---|", *rows])


def _run_link(flow_run_id: str | None, ui_url: str | None) -> str:
    if flow_run_id is None:
        return ""
    if ui_url is None:
        return f" as run `{flow_run_id[:8]}`"
    return f" as run [{flow_run_id[:8]}]({ui_url.rstrip('/')}/flow-runs/flow-run/{flow_run_id})"


def _clock(moment: datetime) -> str:
    return f"{moment:%H:%M:%S} UTC"


def _plain(text: str) -> str:
    """Text on one line with its table pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def _code(text: str) -> str:
    """A file name as a code span: a backtick inside would end it, so it becomes a quote."""
    return "`" + _plain(text).replace("`", "'") + "`"
