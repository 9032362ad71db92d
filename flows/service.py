"""The flows the six deployments run: a file run with its lifecycle, and the three scheduled maintenance runs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.concurrency.sync import concurrency

from deployments.lifecycle import file_signature, unattended_files
from deployments.names import FLOW_NAME
from deployments.routing import file_submission
from deployments.settings import load_service_settings
from flows.medallion import medallion
from medallion.settings import load_settings
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

Mode = Literal["standard", "large", "conservative"]


@flow(name=FLOW_NAME, validate_parameters=True)
def medallion_file(
    path: str,
    mode: Mode = "standard",
    enable_external_enrichment: bool | None = None,
    batch_rows: int | None = None,
    attempt: int = 1,
) -> dict[str, Any]:
    """Load one file with the warehouse held for this run alone, then move it to processed or errors."""
    settings = load_settings()
    service = load_service_settings()
    logger = get_run_logger()
    started = time.monotonic()
    with concurrency(service.warehouse_limit_name, occupy=1):
        acquired = time.monotonic()
        signature = file_signature(Path(path))
        logger.info("holding the warehouse after %.1f s in the queue", acquired - started)
        try:
            summary = medallion.fn(
                path=path, mode=mode, enable_external_enrichment=enable_external_enrichment, batch_rows=batch_rows
            )
        except Exception as error:
            errored_file(path, error, attempt, settings, service, signature)
            raise
        loaded = time.monotonic()
    destination = processed_file(path, settings, signature)
    file_artifacts(summary, destination, {"waiting for the warehouse": acquired - started, "load": loaded - acquired})
    if summary.get("quality_below_threshold"):
        quality_alert(
            "file",
            float(summary["quality_score"]),
            settings.quality_alert_threshold,
            str(summary.get("file_name")),
            str(summary.get("file_id")),
        )
    return {**summary, "moved_to": destination, "attempt": attempt}


@flow(name="incremental-processing")
def incremental_processing(min_age_seconds: float = 60.0) -> dict[str, Any]:
    """Catch up on files the watcher missed, refresh missing or expired enrichment, then rebuild gold."""
    settings = load_settings()
    service = load_service_settings()
    caught_up = []
    for path in unattended_files(settings, min_age_seconds):
        submission = file_submission(path, path.stat().st_size, "", settings)
        state = medallion_file(path=str(path), mode=submission.parameters["mode"], return_state=True)
        caught_up.append({"file": path.name, "state": state.type.value})
    with concurrency(service.warehouse_limit_name, occupy=1):
        enrichment = enrichment_layer(settings, settings.enable_external_enrichment)
        kpis = gold_rebuild(settings)
    return {"caught_up": caught_up, "enrichment": enrichment, "gold_kpis": kpis}


@flow(name="data-quality-monitoring")
def data_quality_monitoring() -> dict[str, Any]:
    """Score the whole silver table, record it in the quality history, and alert below the threshold."""
    settings = load_settings()
    service = load_service_settings()
    with concurrency(service.warehouse_limit_name, occupy=1):
        scores = dataset_quality(settings)
    if scores["score"] < settings.quality_alert_threshold:
        quality_alert("dataset", scores["score"], settings.quality_alert_threshold, "silver.transactions", None)
    return scores


@flow(name="historical-reprocessing")
def historical_reprocessing() -> dict[str, Any]:
    """Rebuild silver and gold from bronze, each swapped in atomically."""
    settings = load_settings()
    service = load_service_settings()
    with concurrency(service.warehouse_limit_name, occupy=1):
        silver = silver_rebuild(settings)
        kpis = gold_rebuild(settings)
    return {"silver": silver, "gold_kpis": kpis}
