"""Where files go after a run, with awkward names, and when a failed file is due for a retry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deployments import lifecycle
from deployments.routing import file_submission, retry_submission
from medallion.errors import BadInputError, WarehouseBusyError
from medallion.file_kinds import is_data_file_name
from medallion.settings import PipelineSettings, Settings, load_settings

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
AWKWARD_NAMES = [
    "plain.csv",
    "with spaces in it.csv",
    'quote\'s "double".csv',
    "ünïcödé-日本.csv",
    "..dots..csv",
    "a..b.csv.gz",
    "semi;colon $(echo no).csv",
]


@pytest.fixture
def pipeline(settings: Settings) -> PipelineSettings:
    return settings.pipeline


@pytest.mark.parametrize("name", AWKWARD_NAMES)
def test_a_loaded_file_moves_to_a_dated_processed_folder_whatever_its_name(
    pipeline: PipelineSettings, name: str
) -> None:
    source = pipeline.raw_data_path / name
    source.write_text("x\n", encoding="utf-8")
    destination = lifecycle.move_to_processed(source, pipeline, now=NOW)
    assert destination == pipeline.processed_path / "2026-03-01" / name
    assert destination.read_text(encoding="utf-8") == "x\n"
    assert not source.exists()


def test_a_second_file_of_the_same_name_gets_a_numbered_name(pipeline: PipelineSettings) -> None:
    for _ in range(3):
        (pipeline.raw_data_path / "sales.csv.gz").write_bytes(b"z")
        lifecycle.move_to_processed(pipeline.raw_data_path / "sales.csv.gz", pipeline, now=NOW)
    day = pipeline.processed_path / "2026-03-01"
    assert sorted(path.name for path in day.iterdir()) == ["sales-2.csv.gz", "sales-3.csv.gz", "sales.csv.gz"]


def test_files_outside_the_watched_folder_are_never_moved(pipeline: PipelineSettings, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.csv"
    elsewhere.write_text("x\n", encoding="utf-8")
    sneaky = pipeline.raw_data_path / ".." / "elsewhere.csv"
    link = pipeline.raw_data_path / "link.csv"
    link.symlink_to(elsewhere)
    assert lifecycle.move_to_processed(sneaky, pipeline, now=NOW) is None
    assert lifecycle.move_to_processed(link, pipeline, now=NOW) is None
    assert elsewhere.exists() and link.is_symlink()


def test_a_bad_file_goes_to_errors_with_a_sidecar_and_no_retry(pipeline: PipelineSettings) -> None:
    service = load_settings(ERROR_RETRY_DELAY=300, ERROR_MAX_RETRIES=3).service
    source = pipeline.raw_data_path / "bad name's.csv"
    source.write_text("a,b\n", encoding="utf-8")
    record = lifecycle.error_record(
        source, BadInputError("missing columns"), 1, "run-1", "medallion/file-drop", service, now=NOW
    )
    destination = lifecycle.move_to_errors(source, pipeline, record)
    assert destination == pipeline.raw_data_path / "errors" / "bad name's.csv"
    sidecar = lifecycle.read_sidecar(destination)
    assert sidecar is not None
    assert (sidecar.reason, sidecar.retryable, sidecar.attempts, sidecar.flow_run_id) == (
        "missing columns",
        False,
        1,
        "run-1",
    )
    assert sidecar.next_attempt_at is None
    assert list(lifecycle.due_retries(pipeline, now=NOW + timedelta(days=1))) == []


def test_a_retryable_failure_is_due_after_the_delay_until_retries_run_out(pipeline: PipelineSettings) -> None:
    service = load_settings(ERROR_RETRY_DELAY=300, ERROR_MAX_RETRIES=2).service
    source = pipeline.raw_data_path / "busy.csv"
    source.write_text("x\n", encoding="utf-8")
    error = WarehouseBusyError("locked")
    record = lifecycle.error_record(source, error, 1, "run-1", "medallion/file-drop", service, now=NOW)
    moved = lifecycle.move_to_errors(source, pipeline, record)
    assert moved is not None
    assert list(lifecycle.due_retries(pipeline, now=NOW + timedelta(seconds=299))) == []
    due = list(lifecycle.due_retries(pipeline, now=NOW + timedelta(seconds=300)))
    assert [(path.name, found.attempts) for path, found in due] == [("busy.csv", 1)]

    again = lifecycle.error_record(moved, error, 3, "run-3", "medallion/error-retry", service, now=NOW)
    assert lifecycle.move_to_errors(moved, pipeline, again) == moved
    assert list(lifecycle.due_retries(pipeline, now=NOW + timedelta(days=1))) == []
    assert lifecycle.read_sidecar(moved).attempts == 3  # type: ignore[union-attr]


def test_a_retried_file_that_loads_leaves_no_sidecar_behind(pipeline: PipelineSettings) -> None:
    service = load_settings().service
    source = pipeline.raw_data_path / "x.csv"
    source.write_text("x\n", encoding="utf-8")
    moved = lifecycle.move_to_errors(
        source, pipeline, lifecycle.error_record(source, RuntimeError("boom"), 1, None, None, service, now=NOW)
    )
    assert moved is not None
    lifecycle.move_to_processed(moved, pipeline, now=NOW)
    assert list((pipeline.raw_data_path / "errors").iterdir()) == []


@pytest.mark.parametrize(
    ("name", "readable"),
    [
        ("sales.csv", True),
        ("SALES.CSV.GZ", True),
        ("book.xlsx", True),
        ("export.tsv", True),
        ("export.txt.gz", True),
        (".hidden.csv", False),
        ("~$book.xlsx", False),
        ("sales.csv.part", False),
        ("sales.csv.error.json", False),
        ("notes.md", False),
    ],
)
def test_only_finished_readable_files_are_picked_up(name: str, readable: bool) -> None:
    assert is_data_file_name(name) is readable


def test_a_tsv_and_a_gzipped_txt_are_both_taken_from_the_folder_and_retried(pipeline: PipelineSettings) -> None:
    names = ["export.tsv", "export.txt.gz"]
    for name in names:
        (pipeline.raw_data_path / name).write_bytes(b"x")
    (pipeline.raw_data_path / "notes.md").write_bytes(b"x")
    assert [path.name for path in lifecycle.unattended_files(pipeline, 0)] == names

    service = load_settings(ERROR_RETRY_DELAY=0).service
    for name in names:
        source = pipeline.raw_data_path / name
        record = lifecycle.error_record(source, WarehouseBusyError("locked"), 1, None, None, service, now=NOW)
        lifecycle.move_to_errors(source, pipeline, record)
    assert [path.name for path, _ in lifecycle.due_retries(pipeline, now=NOW)] == names


def test_a_second_gzipped_txt_is_numbered_before_its_whole_suffix(pipeline: PipelineSettings) -> None:
    for _ in range(2):
        (pipeline.raw_data_path / "sales.txt.gz").write_bytes(b"z")
        lifecycle.move_to_processed(pipeline.raw_data_path / "sales.txt.gz", pipeline, now=NOW)
    day = pipeline.processed_path / "2026-03-01"
    assert sorted(path.name for path in day.iterdir()) == ["sales-2.txt.gz", "sales.txt.gz"]


def test_files_are_routed_by_size_with_content_keys(pipeline: PipelineSettings) -> None:
    path = pipeline.raw_data_path / "big.csv"
    small = file_submission(path, pipeline.large_file_bytes, "abc", pipeline)
    large = file_submission(path, pipeline.large_file_bytes + 1, "abc", pipeline)
    assert (small.deployment, small.parameters["mode"], small.key()) == (
        "medallion/file-drop",
        "standard",
        "medallion/file-drop/abc",
    )
    assert (large.deployment, large.parameters["mode"], large.key()) == (
        "medallion/large-file",
        "large",
        "medallion/large-file/abc",
    )
    retry = retry_submission(path, "abc", 2)
    assert (retry.deployment, retry.parameters["attempt"], retry.key()) == (
        "medallion/error-retry",
        2,
        "medallion/error-retry/abc/attempt-2",
    )


def test_a_file_that_changed_while_it_was_loaded_stays_for_the_watcher(pipeline: PipelineSettings) -> None:
    source = pipeline.raw_data_path / "growing.csv"
    source.write_text("header\n", encoding="utf-8")
    loaded = lifecycle.file_signature(source)
    with source.open("a", encoding="utf-8") as handle:
        handle.write("one more row\n")
    service = load_settings().service
    record = lifecycle.error_record(source, RuntimeError("x"), 1, None, None, service, now=NOW)
    assert lifecycle.move_to_processed(source, pipeline, now=NOW, expected=loaded) is None
    assert lifecycle.move_to_errors(source, pipeline, record, expected=loaded) is None
    assert source.read_text(encoding="utf-8") == "header\none more row\n"
    assert lifecycle.move_to_processed(source, pipeline, now=NOW, expected=lifecycle.file_signature(source)) is not None
