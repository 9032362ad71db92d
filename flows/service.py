"""The flows the six deployments run: a file run with its lifecycle, and the three scheduled maintenance runs.

Every run that writes ends by refreshing the dashboards (tasks.dashboards) while it still holds the warehouse.
"""

from __future__ import annotations

import time
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import State
from prefect.concurrency.sync import concurrency
from prefect.states import Completed, Failed

from deployments import changes
from deployments.lifecycle import file_signature, unattended_files
from deployments.names import FLOW_NAME
from deployments.reporting import CaughtUpFile, DailyRun, FiledRun, WeeklyRun
from deployments.routing import file_mode
from flows.file_load import LOW_QUALITY, load_file
from medallion.errors import is_refusal
from medallion.quality import QualityScores
from medallion.runs import RunMode
from medallion.settings import load_settings
from medallion.warehouse import Warehouse
from tasks.dashboards import dashboards_refreshed
from tasks.enrichment import enrichment_layer
from tasks.service import (
    dataset_quality,
    errored_file,
    file_artifacts,
    gold_rebuild,
    processed_file,
    quality_alert,
    silver_rebuild,
)


@flow(name=FLOW_NAME, validate_parameters=True)
def medallion_file(
    path: str,
    mode: RunMode = RunMode.STANDARD,
    enable_external_enrichment: bool | None = None,
    batch_rows: int | None = None,
    attempt: int = 1,
) -> State[FiledRun]:
    """Load one file with the warehouse held for this run alone, then move it to processed or errors.

    The run ends `Low quality` (a Completed state) when the file scored below the threshold, and Failed with the
    one reason, without a traceback, when the file was refused; any other failure is raised.
    """
    settings = load_settings()
    logger = get_run_logger()
    pipeline = mode.pipeline(settings.pipeline, batch_rows)
    started = time.monotonic()
    with concurrency(settings.service.warehouse_limit_name, occupy=1):
        acquired = time.monotonic()
        signature = file_signature(Path(path))
        logger.info("holding the warehouse after %.1f s in the queue", acquired - started)
        try:
            summary = load_file(
                path, settings, mode=mode, enable_external_enrichment=enable_external_enrichment, batch_rows=batch_rows
            )
        except Exception as error:
            errored_file(path, error, attempt, settings, signature)
            if changed := changes.failed_run_tables(error):
                with Warehouse(pipeline) as warehouse:
                    dashboards_refreshed(warehouse, changed, settings, return_state=True)
            if is_refusal(error):
                return Failed(message=str(error), data=error)
            raise
        loaded = time.monotonic()
        if changed := changes.file_run_tables(summary):
            with Warehouse(pipeline) as warehouse:
                dashboards_refreshed(warehouse, changed, settings, return_state=True)
    destination = processed_file(path, settings.pipeline, signature)
    file_artifacts(summary, destination, {"waiting for the warehouse": acquired - started, "load": loaded - acquired})
    filed = FiledRun(summary=summary, moved_to=destination, attempt=attempt)
    if summary.below_threshold and summary.quality is not None:
        threshold = pipeline.quality_alert_threshold
        quality_alert("file", summary.quality.score, threshold, summary.file_name, summary.file_id)
        return Completed(name=LOW_QUALITY, message=summary.quality_in_words(), data=filed)
    return Completed(data=filed)


@flow(name="incremental-processing")
def incremental_processing(min_age_seconds: float = 60.0) -> DailyRun:
    """Catch up on files the watcher missed, refresh missing or expired enrichment, then rebuild gold."""
    settings = load_settings()
    pipeline = settings.pipeline
    caught_up = []
    for path in unattended_files(pipeline, min_age_seconds):
        mode = file_mode(path.stat().st_size, pipeline)
        state = medallion_file(path=str(path), mode=mode, return_state=True)
        caught_up.append(CaughtUpFile(file_name=path.name, state=state.name or state.type.value))
    with concurrency(settings.service.warehouse_limit_name, occupy=1), Warehouse(pipeline) as warehouse:
        enrichment = enrichment_layer(warehouse, settings.enrichment, settings.enrichment.enabled)
        kpis = gold_rebuild(warehouse, pipeline)
        dashboards_refreshed(warehouse, changes.DAILY, settings, return_state=True)
    return DailyRun(caught_up=caught_up, enrichment=enrichment, gold=kpis)


@flow(name="data-quality-monitoring")
def data_quality_monitoring() -> QualityScores:
    """Score the whole silver table, record it in the quality history, and alert below the threshold."""
    settings = load_settings()
    pipeline = settings.pipeline
    with concurrency(settings.service.warehouse_limit_name, occupy=1), Warehouse(pipeline) as warehouse:
        scores = dataset_quality(warehouse, pipeline)
        dashboards_refreshed(warehouse, changes.MONITOR, settings, return_state=True)
    if scores.score < pipeline.quality_alert_threshold:
        quality_alert("dataset", scores.score, pipeline.quality_alert_threshold, "silver.transactions", None)
    return scores


@flow(name="historical-reprocessing")
def historical_reprocessing() -> WeeklyRun:
    """Rebuild silver and gold from bronze, each swapped in atomically."""
    settings = load_settings()
    pipeline = settings.pipeline
    with concurrency(settings.service.warehouse_limit_name, occupy=1), Warehouse(pipeline) as warehouse:
        silver = silver_rebuild(warehouse, pipeline)
        kpis = gold_rebuild(warehouse, pipeline)
        dashboards_refreshed(warehouse, changes.WEEKLY, settings, return_state=True)
    return WeeklyRun(silver=silver, gold=kpis)
