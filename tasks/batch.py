"""The files of a batch run: all of a round through bronze, silver and quality in one task (each file in its own
transactions), then enrichment and gold once for all of them, then each moved to processed or errors (with the
sidecar) with its summary artifact.

A task costs Prefect a fixed fraction of a second and moving gold a few more, so a batch pays each once per round
rather than once per layer and file; a file's failure is its own outcome, never the batch's.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path

from prefect import get_run_logger, task

from deployments import changes
from deployments.lifecycle import Signature, content_sha256, file_signature
from deployments.reporting import BatchFile
from flows.file_load import LAYER_STEPS, StagedFile, finish_files, stage_file
from medallion.errors import is_refusal
from medallion.names import printable
from medallion.runs import RunMode, RunSummary
from medallion.settings import PipelineSettings, Settings
from medallion.steps.bronze_step import publish_bronze_view
from medallion.steps.run_step import failure_text, ledger_snapshot
from medallion.warehouse import Warehouse
from tasks import layers as layer_steps
from tasks.enrichment import enrichment_layer
from tasks.service import errored_file, processed_file

# Enrichment and gold as the tasks a single file's run has (cached, retried); the rest as plain logged steps.
_FINISH_LAYERS = replace(LAYER_STEPS, enrichment=enrichment_layer, gold=layer_steps.gold_layer)
# Rebuilding `bronze.transactions` reads every file's table, so a round publishes it once, after all its files.
_STAGE_LAYERS = replace(LAYER_STEPS, bronze=functools.partial(layer_steps.bronze_report, refresh_view=False))


@dataclass
class BatchEntry:
    """A file of the batch on its way: staged (or found loaded already), or failed with its error."""

    path: str
    signature: Signature | None
    staged: StagedFile | None = None
    summary: RunSummary | None = None
    error: BaseException | None = None


@task(name="stage-files")
def staged_files(warehouse: Warehouse, paths: list[str], pipeline: PipelineSettings) -> list[BatchEntry]:
    """The files of a round one after another through bronze, silver and quality in the batch's open warehouse, in
    one task (a task's bookkeeping would cost a tiny file more than its load), then `bronze.transactions` over them.
    Should that view fail, each staged file is taken back out and fails with its error."""
    entries = [staged_entry(warehouse, path, pipeline) for path in paths]
    try:
        publish_bronze_view(warehouse)
    except Exception as error:
        get_run_logger().error("publishing bronze.transactions failed: %s", failure_text(error))
        for entry in entries:
            if entry.staged is not None:
                LAYER_STEPS.withdraw(warehouse, entry.staged.bronze.file_id, error, pipeline, False)
                entry.staged, entry.error = None, error
    return entries


def staged_entry(warehouse: Warehouse, path: str, pipeline: PipelineSettings) -> BatchEntry:
    """One file through bronze, silver and quality; a refusal or any other failure is kept with the entry (the file
    already taken back out), so the batch goes on."""
    entry = BatchEntry(path=path, signature=file_signature(Path(path)))
    try:
        outcome = stage_file(warehouse, path, pipeline, _STAGE_LAYERS)
    except Exception as error:
        if is_refusal(error):
            get_run_logger().info("%s refused: %s", printable(Path(path).name), failure_text(error))
        else:
            get_run_logger().exception("%s failed", printable(Path(path).name))
        entry.error = error
        return entry
    if isinstance(outcome, RunSummary):
        entry.summary = outcome
    else:
        entry.staged = outcome
    return entry


def batch_files(
    warehouse: Warehouse,
    paths: list[str],
    settings: Settings,
    mode: RunMode,
    enable_external_enrichment: bool | None,
    batch_rows: int | None,
    attempt: int,
) -> list[BatchFile]:
    """Stage every file, move enrichment and gold by all the staged ones at once (marking them loaded together),
    then file each away. Should enrichment or gold fail, every staged file is taken back out and goes to errors."""
    pipeline = mode.pipeline(settings.pipeline, batch_rows)
    live = mode.live_lookups(settings.enrichment, enable_external_enrichment)
    entries: list[BatchEntry] = []
    for round_paths in content_rounds(paths):
        staging = staged_files(warehouse, round_paths, pipeline)
        _finish(warehouse, [entry for entry in staging if entry.staged is not None], settings, pipeline, live)
        entries += staging
    ledger_snapshot(warehouse, pipeline)
    return [_filed(entry, settings, attempt) for entry in entries]


def content_rounds(paths: list[str]) -> list[list[str]]:
    """The paths in order, cut before a file whose content an earlier file of the same round has: that file is
    staged once the earlier one is loaded, and found loaded already, as in a run of its own."""
    rounds: list[list[str]] = [[]]
    contents: set[str] = set()
    for path in paths:
        try:
            content = content_sha256(Path(path)) if Path(path).is_file() else None
        except OSError:
            content = None
        if content is not None and content in contents:
            rounds.append([])
            contents = set()
        rounds[-1].append(path)
        if content is not None:
            contents.add(content)
    return [paths_of_round for paths_of_round in rounds if paths_of_round]


def _finish(
    warehouse: Warehouse, staged: list[BatchEntry], settings: Settings, pipeline: PipelineSettings, live: bool
) -> None:
    """Enrichment and gold moved by the staged files of a round; should either fail, each goes back out."""
    if not staged:
        return
    files = [entry.staged for entry in staged if entry.staged is not None]
    try:
        summaries = finish_files(warehouse, files, settings, pipeline, live, _FINISH_LAYERS)
    except Exception as error:
        get_run_logger().error("enrichment or gold failed for the batch: %s", failure_text(error))
        for entry in staged:
            entry.error = error
        return
    for entry, summary in zip(staged, summaries, strict=True):
        entry.summary = summary


def _filed(entry: BatchEntry, settings: Settings, attempt: int) -> BatchFile:
    """The file moved to processed (with its summary artifact) or to errors (with its sidecar)."""
    name = Path(entry.path).name
    if entry.error is not None or entry.summary is None:
        error = entry.error or RuntimeError("the file was neither loaded nor refused")
        moved = errored_file.fn(entry.path, error, attempt, settings, entry.signature, summary_artifact=False)
        return BatchFile(
            file_name=name,
            moved_to=moved,
            failure=failure_text(error),
            changed_tables=list(changes.failed_run_tables(error)),
        )
    destination = processed_file.fn(entry.path, settings.pipeline, entry.signature)
    return BatchFile(
        file_name=name,
        moved_to=destination,
        summary=entry.summary,
        changed_tables=list(changes.file_run_tables(entry.summary)),
    )
