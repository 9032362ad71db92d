"""The `medallion` flow: one file through bronze, silver, quality, enrichment and gold."""

from __future__ import annotations

from prefect import flow

from medallion import steps
from medallion.runs import RunMode, RunSummary
from medallion.settings import Settings, load_settings
from medallion.warehouse import Warehouse
from tasks.enrichment import enrichment_layer
from tasks.layers import bronze_layer, failure_record, gold_layer, quality_layer, silver_layer


@flow(name="medallion", log_prints=False, validate_parameters=True)
def medallion(
    path: str,
    mode: RunMode = RunMode.STANDARD,
    enable_external_enrichment: bool | None = None,
    batch_rows: int | None = None,
) -> RunSummary:
    """Load one retail file into the warehouse and return a summary of every layer."""
    return load_file(
        path, load_settings(), mode=mode, enable_external_enrichment=enable_external_enrichment, batch_rows=batch_rows
    )


def load_file(
    path: str,
    settings: Settings,
    *,
    mode: RunMode = RunMode.STANDARD,
    enable_external_enrichment: bool | None = None,
    batch_rows: int | None = None,
) -> RunSummary:
    """Run the layers' tasks on one file inside one open warehouse; a failure after bronze is noted in the ledger."""
    pipeline = mode.pipeline(settings.pipeline, batch_rows)
    live = mode.live_lookups(settings.enrichment, enable_external_enrichment)
    with Warehouse(pipeline) as warehouse:
        bronze = bronze_layer(warehouse, path, pipeline)
        if bronze.skipped:
            return steps.skipped_run(warehouse, bronze)
        try:
            silver = silver_layer(warehouse, bronze.file_id, pipeline)
            quality = quality_layer(warehouse, bronze.file_id, silver.quality_counts, pipeline)
            enrichment = enrichment_layer(warehouse, settings.enrichment, live)
            gold = gold_layer(warehouse, pipeline, bronze.file_id)
        except Exception as error:
            failure_record(warehouse, path, error)
            raise
        return steps.loaded_run(warehouse, bronze, silver, quality, enrichment, gold)
