"""The flows the six deployments run: a file run with its lifecycle, and the three scheduled maintenance runs.

Every run that writes ends by refreshing the dashboards (tasks.dashboards) while it still holds the warehouse.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import State
from prefect.concurrency.sync import concurrency
from prefect.states import Completed, Failed

from deployments import changes
from deployments.lifecycle import file_signature, unattended_files
from deployments.names import FLOW_NAME
from deployments.reporting import BatchRun, CaughtUpFile, DailyRun, FiledRun, WeeklyRun
from deployments.routing import file_mode
from flows.file_load import LOW_QUALITY, load_file
from medallion.errors import is_refusal
from medallion.quality import QualityScores
from medallion.runs import RunMode
from medallion.settings import PipelineSettings, Settings, load_settings
from medallion.warehouse import Warehouse
from tasks.batch import batch_files
from tasks.dashboards import dashboards_refreshed
from tasks.enrichment import enrichment_layer
from tasks.service import (
    batch_summary_artifact,
    dataset_quality,
    errored_file,
    file_artifacts,
    gold_kpis_artifact,
    gold_rebuild,
    processed_file,
    quality_alert,
    silver_rebuild,
)


@dataclass(frozen=True)
class FileOptions:
    """How a file run loads its files, as its parameters say."""

    mode: RunMode
    enable_external_enrichment: bool | None
    batch_rows: int | None
    attempt: int


@flow(name=FLOW_NAME, validate_parameters=True)
def medallion_file(
    path: str | None = None,
    paths: list[str] | None = None,
    mode: RunMode = RunMode.STANDARD,
    enable_external_enrichment: bool | None = None,
    batch_rows: int | None = None,
    attempt: int = 1,
) -> State[FiledRun] | State[BatchRun]:
    """Load one file (`path`) or a batch of files one after another (`paths`) with the warehouse held for this run
    alone, moving each to processed or errors.

    The run ends `Low quality` (a Completed state) when a file scored below the threshold, and Failed with the
    reason, without a traceback, when a file was refused (a batch only once every file is handled); any other
    failure of a single file is raised.
    """
    options = FileOptions(mode, enable_external_enrichment, batch_rows, attempt)
    if path is not None and paths is None:
        return _file_run(path, options)
    if paths and path is None:
        return _batch_run(paths, options)
    return Failed(message="a file run takes exactly one of `path` (one file) and `paths` (a list of files)")


def _file_run(path: str, options: FileOptions) -> State[FiledRun]:
    """One file, each layer a task of its own."""
    settings = load_settings()
    pipeline = options.mode.pipeline(settings.pipeline, options.batch_rows)
    started = time.monotonic()
    with concurrency(settings.service.warehouse_limit_name, occupy=1):
        acquired = _holding(started)
        signature = file_signature(Path(path))
        try:
            summary = load_file(
                path,
                settings,
                mode=options.mode,
                enable_external_enrichment=options.enable_external_enrichment,
                batch_rows=options.batch_rows,
            )
        except Exception as error:
            errored_file(path, error, options.attempt, settings, signature)
            _dashboards(pipeline, changes.failed_run_tables(error), settings)
            if is_refusal(error):
                return Failed(message=str(error), data=error)
            raise
        loaded = time.monotonic()
        _dashboards(pipeline, changes.file_run_tables(summary), settings)
    destination = processed_file(path, settings.pipeline, signature)
    file_artifacts(summary, destination, {"waiting for the warehouse": acquired - started, "load": loaded - acquired})
    filed = FiledRun(summary=summary, moved_to=destination, attempt=options.attempt)
    if summary.below_threshold and summary.quality is not None:
        quality_alert(
            "file", summary.quality.score, pipeline.quality_alert_threshold, summary.file_name, summary.file_id
        )
        return Completed(name=LOW_QUALITY, message=summary.quality_in_words(), data=filed)
    return Completed(data=filed)


def _batch_run(paths: list[str], options: FileOptions) -> State[BatchRun]:
    """Files one after another (a task each), enrichment and gold moved once by all of them; the dashboards
    refreshed once, for every table any of them wrote."""
    settings = load_settings()
    pipeline = options.mode.pipeline(settings.pipeline, options.batch_rows)
    started = time.monotonic()
    with concurrency(settings.service.warehouse_limit_name, occupy=1), Warehouse(pipeline) as warehouse:
        _holding(started)
        filed = batch_files(
            warehouse,
            paths,
            settings,
            options.mode,
            options.enable_external_enrichment,
            options.batch_rows,
            options.attempt,
        )
        batch = BatchRun(files=filed, attempt=options.attempt)
        if changed := batch.changed_tables():
            dashboards_refreshed(warehouse, changed, settings, return_state=True)
    batch_summary_artifact(batch)
    if kpis := batch.gold():
        gold_kpis_artifact(kpis, f"{len(paths)} files")
    for item in batch.files:
        summary = item.summary
        if summary is not None and summary.below_threshold and summary.quality is not None:
            threshold = pipeline.quality_alert_threshold
            quality_alert("file", summary.quality.score, threshold, summary.file_name, summary.file_id)
    if failures := batch.failures_in_words():
        return Failed(message=failures, data=batch)
    if low_quality := batch.low_quality_in_words():
        return Completed(name=LOW_QUALITY, message=low_quality, data=batch)
    return Completed(data=batch)


def _holding(started: float) -> float:
    acquired = time.monotonic()
    get_run_logger().info("holding the warehouse after %.1f s in the queue", acquired - started)
    return acquired


def _dashboards(pipeline: PipelineSettings, changed: Sequence[str], settings: Settings) -> None:
    """The dashboards refreshed after a change to `changed` (nothing when it is empty)."""
    if changed:
        with Warehouse(pipeline) as warehouse:
            dashboards_refreshed(warehouse, changed, settings, return_state=True)


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
