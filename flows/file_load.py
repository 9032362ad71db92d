"""The `medallion` flow: one file through bronze, silver, quality, enrichment and gold."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from prefect import Flow, flow
from prefect.client.schemas.objects import State
from prefect.states import Completed, Failed

from enrichment.build import EnrichmentStats
from medallion import steps
from medallion.errors import is_refusal
from medallion.quality import QualityCounts
from medallion.runs import GoldKpis, RunMode, RunSummary
from medallion.settings import EnrichmentSettings, PipelineSettings, Settings, load_settings
from medallion.steps.run_step import ledger_snapshot
from medallion.warehouse import Warehouse
from tasks import layers as layer_steps
from tasks.enrichment import enrichment_layer, enrichment_stats

LOW_QUALITY = "Low quality"


@dataclass(frozen=True)
class Layers:
    """What a file's run calls for each layer: a task per layer (a run of one file, each layer in the UI with its
    retries), or the same logged steps as plain calls (a file of a batch, inside the one task it costs)."""

    bronze: Callable[[Warehouse, str, PipelineSettings], steps.BronzeReport]
    silver: Callable[[Warehouse, str, PipelineSettings], steps.SilverReport]
    quality: Callable[[Warehouse, str, QualityCounts, PipelineSettings], steps.QualityReport]
    enrichment: Callable[[Warehouse, EnrichmentSettings, bool, Sequence[str]], EnrichmentStats]
    gold: Callable[[Warehouse, PipelineSettings, Sequence[str]], GoldKpis]
    withdraw: Callable[[Warehouse, str, BaseException, PipelineSettings, bool], object]


def _withdrawn_by_task(
    warehouse: Warehouse, file_id: str, error: BaseException, pipeline: PipelineSettings, gold_moved: bool
) -> object:
    # Its state, not its error: the run's own error is the one to report, even when taking the file back fails too.
    return layer_steps.failed_file_withdrawn(warehouse, file_id, error, pipeline, gold_moved, return_state=True)


LAYER_TASKS = Layers(
    bronze=layer_steps.bronze_layer,
    silver=layer_steps.silver_layer,
    quality=layer_steps.quality_layer,
    enrichment=enrichment_layer,
    gold=layer_steps.gold_layer,
    withdraw=_withdrawn_by_task,
)
LAYER_STEPS = Layers(
    bronze=layer_steps.bronze_report,
    silver=layer_steps.silver_report,
    quality=layer_steps.quality_report,
    enrichment=enrichment_stats,
    gold=layer_steps.gold_kpis,
    withdraw=layer_steps.failed_file_taken_out,
)


@flow(name="medallion", log_prints=False, validate_parameters=True)
def medallion(
    path: str,
    mode: RunMode = RunMode.STANDARD,
    enable_external_enrichment: bool | None = None,
    batch_rows: int | None = None,
) -> State[RunSummary]:
    """Load one retail file into the warehouse and return a summary of every layer.

    The run ends in a state that tells its outcome at a glance; calling the flow gives the summary (or raises the
    refusal), as Prefect makes the returned state the run's own.
    """
    return file_outcome(
        path, load_settings(), mode=mode, enable_external_enrichment=enable_external_enrichment, batch_rows=batch_rows
    )


def medallion_over(settings: Settings) -> Flow[[str, RunMode], State[RunSummary]]:
    """A `medallion` flow over settings the caller built (the CLI's), rather than building them again."""

    @flow(name="medallion", log_prints=False, validate_parameters=True)
    def medallion(path: str, mode: RunMode = RunMode.STANDARD) -> State[RunSummary]:
        """Load one retail file into the warehouse and return a summary of every layer."""
        return file_outcome(path, settings, mode=mode)

    return medallion


def file_outcome(
    path: str,
    settings: Settings,
    *,
    mode: RunMode = RunMode.STANDARD,
    enable_external_enrichment: bool | None = None,
    batch_rows: int | None = None,
) -> State[RunSummary]:
    """`load_file` as the final state of a flow run: a refused file (bad input, a bad setting) Failed with its one
    reason as the message, and no traceback; a file scoring below QUALITY_ALERT_THRESHOLD Completed but named
    `Low quality`; any other failure raised."""
    try:
        summary = load_file(
            path, settings, mode=mode, enable_external_enrichment=enable_external_enrichment, batch_rows=batch_rows
        )
    except Exception as error:
        if not is_refusal(error):
            raise
        return Failed(message=str(error), data=error)
    return outcome_state(summary)


def outcome_state(summary: RunSummary) -> State[RunSummary]:
    """The Completed state of a file run holding its summary, named `Low quality` when the file scored below the
    threshold (the score and threshold its message)."""
    if summary.below_threshold:
        return Completed(name=LOW_QUALITY, message=summary.quality_in_words(), data=summary)
    return Completed(data=summary)


def load_file(
    path: str,
    settings: Settings,
    *,
    mode: RunMode = RunMode.STANDARD,
    enable_external_enrichment: bool | None = None,
    batch_rows: int | None = None,
) -> RunSummary:
    """Run the layers' tasks on one file inside one open warehouse. A failure after bronze enters the file failed
    and takes it back out of every layer the run reached, then is raised: the warehouse is as it was before."""
    pipeline = mode.pipeline(settings.pipeline, batch_rows)
    live = mode.live_lookups(settings.enrichment, enable_external_enrichment)
    with Warehouse(pipeline) as warehouse:
        try:
            return _layers(warehouse, path, settings, pipeline, live, LAYER_TASKS)
        finally:
            ledger_snapshot(warehouse, pipeline)


@dataclass(frozen=True)
class StagedFile:
    """A file through bronze, silver and quality, for its run (or its batch) to move enrichment and gold by."""

    bronze: steps.BronzeReport
    silver: steps.SilverReport
    quality: steps.QualityReport


def _layers(
    warehouse: Warehouse, path: str, settings: Settings, pipeline: PipelineSettings, live: bool, layers: Layers
) -> RunSummary:
    """The layers in order on one open warehouse."""
    staged = stage_file(warehouse, path, pipeline, layers)
    if isinstance(staged, RunSummary):
        return staged
    (summary,) = finish_files(warehouse, [staged], settings, pipeline, live, layers)
    return summary


def stage_file(warehouse: Warehouse, path: str, pipeline: PipelineSettings, layers: Layers) -> StagedFile | RunSummary:
    """Bronze, silver and quality of one file, each in its own transaction; a file found loaded already is its
    (skipped) summary. A failure after bronze enters the file failed, takes it back out and is raised."""
    bronze = layers.bronze(warehouse, path, pipeline)
    if bronze.skipped:
        return steps.skipped_run(warehouse, bronze)
    try:
        silver = layers.silver(warehouse, bronze.file_id, pipeline)
        quality = layers.quality(warehouse, bronze.file_id, silver.quality_counts, pipeline)
    except Exception as error:
        layers.withdraw(warehouse, bronze.file_id, error, pipeline, False)
        raise
    return StagedFile(bronze, silver, quality)


def finish_files(
    warehouse: Warehouse,
    staged: Sequence[StagedFile],
    settings: Settings,
    pipeline: PipelineSettings,
    live: bool,
    layers: Layers,
) -> list[RunSummary]:
    """Enrichment, then gold moved by every staged file at once and the files marked loaded together. A failure
    takes each file back out of every layer (gold included) and is raised."""
    gold_moved = False
    try:
        file_ids = [file.bronze.file_id for file in staged]
        enrichment = layers.enrichment(warehouse, settings.enrichment, live, file_ids)
        gold_moved = True
        gold = layers.gold(warehouse, pipeline, file_ids)
    except Exception as error:
        for file in staged:
            layers.withdraw(warehouse, file.bronze.file_id, error, pipeline, gold_moved)
        raise
    return [steps.loaded_run(warehouse, file.bronze, file.silver, file.quality, enrichment, gold) for file in staged]
