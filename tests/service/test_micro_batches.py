"""Files that arrive while a file-drop run is in flight go into one run that loads them one after another."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from watchfiles import Change

from deployments import watcher
from deployments.routing import Submission, batched, file_submission, retry_submission
from deployments.watcher_status import WatcherStatus
from medallion.settings import Settings

from .conftest import Service, csv_text, uci_rows, wait_until
from .test_service_files import RUN_DEADLINE_S, drop, final_states, ledger, silver_rows_of

SHA_A, SHA_B, SHA_C = "aa" * 32, "bb" * 32, "cc" * 32


def test_files_queued_together_make_one_run_named_by_its_count(settings: Settings) -> None:
    first = file_submission(Path("/data/raw/march.csv"), 100, SHA_A, settings.pipeline)
    second = file_submission(Path("/data/raw/april.csv"), 100, SHA_B, settings.pipeline)
    third = file_submission(Path("/data/raw/may.csv"), 100, SHA_C, settings.pipeline)

    batch = batched([first, second, third])

    assert batch is not None
    assert batch.deployment == "medallion/file-drop"
    assert batch.parameters == {
        "paths": ["/data/raw/march.csv", "/data/raw/april.csv", "/data/raw/may.csv"],
        "mode": "standard",
    }
    assert batch.run_name == "file-drop: 3 files (march.csv, ...)"
    assert batch.files() == (first, second, third)
    # The key comes from the contents, whatever order they were queued in.
    assert batch.key() == batched([third, first, second]).key()  # type: ignore[union-attr]
    assert batch.key() != batched([first, second]).key()  # type: ignore[union-attr]


def test_one_file_stays_a_run_of_its_own_and_a_file_queued_twice_counts_once(settings: Settings) -> None:
    alone = file_submission(Path("/data/raw/march.csv"), 100, SHA_A, settings.pipeline)
    changed = file_submission(Path("/data/raw/march.csv"), 120, SHA_B, settings.pipeline)
    other = file_submission(Path("/data/raw/april.csv"), 100, SHA_C, settings.pipeline)

    assert batched([alone]) == alone
    assert batched([alone, changed]) == changed
    assert batched([]) is None
    # A batch handed back (its run's content was in flight) joins the files queued since, each once.
    again = batched([batched([alone, other]), changed])  # type: ignore[list-item]
    assert again is not None and [member.path.name for member in again.files()] == ["april.csv", "march.csv"]
    assert again.files()[1] == changed


def test_the_status_page_says_each_file_was_submitted_in_a_batch_run(settings: Settings) -> None:
    status = WatcherStatus(Path("/data/raw"))
    files = [
        file_submission(Path(f"/data/raw/{name}.csv"), 100, sha, settings.pipeline)
        for name, sha in (("march", SHA_A), ("april", SHA_B))
    ]
    for submission in files:
        status.queued(submission, "stopped growing at 100 bytes")
    batch = batched(files)
    assert batch is not None

    status.submitted(batch, "0123456789abcdef")

    snapshot = status.snapshot()
    assert snapshot.waiting == []
    seen = {(sighting.file_name, sighting.what, sighting.flow_run_id) for sighting in snapshot.last_seen[:2]}
    what = "submitted in a batch of 2 to `medallion/file-drop`"
    assert seen == {("march.csv", what, "0123456789abcdef"), ("april.csv", what, "0123456789abcdef")}


class Looks:
    """A folder watcher and its submitter (whose thread is not started) under a clock the test moves: the watcher
    considers files, the test lets the stable window pass, and the watcher takes its next look."""

    def __init__(self, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
        self.clock = 1000.0
        monkeypatch.setattr(watcher.time, "monotonic", lambda: self.clock)
        self.stable_s = settings.service.watch_stable_seconds
        self.raw = settings.pipeline.raw_data_path.resolve()
        stop = threading.Event()
        self.status = WatcherStatus(self.raw)
        self.submitter = watcher.Submitter(stop, self.status)
        self.watcher = watcher.FolderWatcher(settings, self.submitter, stop, self.status)

    def drop(self, name: str, first_invoice: int, rows: int) -> Path:
        path = self.raw / name
        path.write_text(csv_text(uci_rows(first_invoice, rows)), encoding="utf-8")
        self.watcher._consider(path)
        return path

    def look_once_settled(self) -> None:
        self.clock += self.stable_s + 0.1
        self.watcher._check_pending()

    def next_item(self) -> tuple[Submission, ...]:
        return self.submitter._queue.get_nowait()


@pytest.fixture
def looks(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Looks:
    return Looks(settings, monkeypatch)


def test_files_found_settled_together_reach_the_submitter_as_one_item(looks: Looks) -> None:
    # The submitter's thread wakes on the first item it is handed: files handed to it one by one could go into a
    # run of one file and a run of the rest.
    names = [f"burst {index}.csv" for index in range(5)]
    for index, name in enumerate(names):
        looks.drop(name, 970000 + index * 10, 3)
    assert looks.submitter._queue.empty(), "nothing is queued before the files have stopped growing"

    looks.look_once_settled()

    item = looks.next_item()
    assert looks.submitter._queue.empty()
    assert sorted(submission.path.name for submission in item) == names
    batch = batched(item)
    assert batch is not None and batch.run_name == f"file-drop: 5 files ({item[0].path.name}, ...)"
    assert {sighting.file_name for sighting in looks.status.snapshot().waiting} == set(names)


def test_a_file_moved_away_and_dropped_again_in_one_look_is_queued_again(looks: Looks) -> None:
    path = looks.drop("again.csv", 975000, 3)
    looks.look_once_settled()
    assert [submission.path for submission in looks.next_item()] == [path]

    # Its run moved it away and the same name was dropped again before the watcher looked: the look's set of
    # changes may give the new file's `added` before the old one's `deleted`.
    path.write_text(csv_text(uci_rows(976000, 4)), encoding="utf-8")
    looks.watcher._changed([(Change.added, str(path)), (Change.deleted, str(path))])
    looks.look_once_settled()

    assert [submission.path for submission in looks.next_item()] == [path]


def test_files_settled_before_one_that_cannot_be_read_are_queued(looks: Looks, monkeypatch: pytest.MonkeyPatch) -> None:
    readable = looks.drop("readable.csv", 977000, 3)
    unreadable = looks.drop("unreadable.csv", 977010, 3)
    hash_of = watcher.lifecycle.content_sha256

    def refusing(path: Path) -> str:
        if path == unreadable:
            raise PermissionError(13, "Permission denied", str(path))
        return hash_of(path)

    monkeypatch.setattr(watcher.lifecycle, "content_sha256", refusing)
    with pytest.raises(PermissionError):
        looks.look_once_settled()

    assert [submission.path for submission in looks.next_item()] == [readable]


def test_an_error_retry_is_never_batched(settings: Settings) -> None:
    retry = retry_submission(Path("/data/raw/errors/march.csv"), SHA_A, 2)
    assert retry.files() == (retry,)
    assert "paths" not in retry.parameters


def test_a_burst_while_a_run_is_in_flight_loads_in_one_batch_and_a_bad_file_fails_alone(service: Service) -> None:
    lead = "batch lead.csv"
    drop(service, lead, csv_text(uci_rows(960000, 10)))
    wait_until(lambda: service.runs_for(lead), RUN_DEADLINE_S, f"the run of {lead}")
    names = [f"batched {index:02d}.csv" for index in range(8)]
    bad = names[3]
    for index, name in enumerate(names):
        text = "a,b,c\n1,2,3\n" if name == bad else csv_text(uci_rows(961000 + index * 100, 10, day=index + 1))
        drop(service, name, text)

    wait_until(
        lambda: set(names) - {bad} <= set(service.processed_files()) and (service.errors / bad).exists(),
        RUN_DEADLINE_S,
        "every file of the burst in processed or errors",
    )
    for name in names:
        final_states(service, name)
    runs = {str(run.id): run for name in names for run in service.runs_for(name)}
    assert len(runs) < len(names)
    for run in runs.values():
        paths = run.parameters.get("paths") or [run.parameters["path"]]
        first = Path(str(paths[0])).name
        assert run.name == (
            f"file-drop: {len(paths)} files ({first}, ...)" if len(paths) > 1 else f"file-drop: {first}"
        )

    for name in set(names) - {bad}:
        (run,) = service.runs_for(name)
        assert ledger(service, name) == [("loaded", 10, 10, str(run.id))]
        assert silver_rows_of(service, name) == 10

    (carrier,) = service.runs_for(bad)
    carried = [Path(str(path)).name for path in carrier.parameters["paths"]]
    assert len(carried) > 1, "the bad file came while the lead's run was in flight, so it is in a batch"
    sidecar = json.loads((service.errors / f"{bad}.error.json").read_text(encoding="utf-8"))
    assert "missing column" in sidecar["reason"]
    assert (sidecar["flow_run_id"], sidecar["retryable"]) == (str(carrier.id), False)
    assert carrier.state.type.value == "FAILED"
    assert carrier.state.message.startswith(f"1 of {len(carried)} files failed: {bad}: missing column")
    summary = _batch_summary(service, carrier.id)
    assert f"## {len(carried)} files: {len(carried) - 1} loaded or found loaded, 1 failed" in summary
    loaded = next(name for name in carried if name != bad)
    assert f"| {bad} | failed: {bad}: missing column" in summary
    assert f"| {loaded} | loaded | 10 | 10 | 0 | 0 | 0 |" in summary


def _batch_summary(service: Service, flow_run_id: Any) -> str:
    """The one summary artifact of a batch run."""
    from prefect.client.schemas.filters import ArtifactFilter

    artifact_filter = ArtifactFilter.parse_obj({"flow_run_id": {"any_": [str(flow_run_id)]}})
    artifacts = service.call(lambda client: client.read_artifacts(artifact_filter=artifact_filter))
    (summary,) = [artifact for artifact in artifacts if artifact.key == "medallion-file-summary"]
    return str(summary.data)
