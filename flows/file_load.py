"""The `medallion` flow: one file through bronze, silver, quality, enrichment and gold."""

from __future__ import annotations

from prefect import Flow, flow
from prefect.client.schemas.objects import State
from prefect.states import Completed, Failed

from medallion import steps
from medallion.errors import is_refusal
from medallion.runs import RunMode, RunSummary
from medallion.settings import PipelineSettings, Settings, load_settings
from medallion.steps.run_step import ledger_snapshot
from medallion.warehouse import Warehouse
from tasks.enrichment import enrichment_layer
from tasks.layers import bronze_layer, failed_file_withdrawn, gold_layer, quality_layer, silver_layer

LOW_QUALITY = "Low quality"


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
            return _layers(warehouse, path, settings, pipeline, live)
        finally:
            ledger_snapshot(warehouse, pipeline)


def _layers(warehouse: Warehouse, path: str, settings: Settings, pipeline: PipelineSettings, live: bool) -> RunSummary:
    """The layers' tasks in order on one open warehouse."""
    bronze = bronze_layer(warehouse, path, pipeline)
    if bronze.skipped:
        return steps.skipped_run(warehouse, bronze)
    gold_moved = False
    try:
        silver = silver_layer(warehouse, bronze.file_id, pipeline)
        quality = quality_layer(warehouse, bronze.file_id, silver.quality_counts, pipeline)
        enrichment = enrichment_layer(warehouse, settings.enrichment, live)
        gold_moved = True
        gold = gold_layer(warehouse, pipeline, bronze.file_id)
    except Exception as error:
        # The run's own error is the one to report, even when taking the file back fails too (a full disk).
        failed_file_withdrawn(warehouse, bronze.file_id, error, pipeline, gold_moved, return_state=True)
        raise
    return steps.loaded_run(warehouse, bronze, silver, quality, enrichment, gold)
