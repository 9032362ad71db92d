"""The `medallion` flow: one file through bronze, silver, quality and gold."""

from __future__ import annotations

from typing import Any

from prefect import flow

from medallion.errors import BadInputError
from medallion.settings import load_settings
from medallion.steps import held_warehouse
from tasks.enrichment import enrichment_layer
from tasks.layers import bronze_layer, failure_record, gold_layer, quality_layer, silver_layer

MODES = ("standard", "large", "conservative")
# Error retries run with less memory than the run that failed: DuckDB spills sooner, the tolerant and Excel
# readers hand over smaller batches.
CONSERVATIVE_BATCH_ROWS = 100_000
CONSERVATIVE_MEMORY_LIMIT = "256MB"


@flow(name="medallion", log_prints=False, validate_parameters=True)
def medallion(
    path: str,
    mode: str = "standard",
    enable_external_enrichment: bool | None = None,
    batch_rows: int | None = None,
) -> dict[str, Any]:
    """Load one retail file into the warehouse and return a summary of every layer."""
    if mode not in MODES:
        raise BadInputError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    overrides: dict[str, Any] = {}
    if enable_external_enrichment is not None:
        overrides["ENABLE_EXTERNAL_ENRICHMENT"] = enable_external_enrichment
    if batch_rows is not None:
        overrides["BATCH_ROWS"] = batch_rows
    elif mode == "conservative":
        overrides["BATCH_ROWS"] = CONSERVATIVE_BATCH_ROWS
    if mode == "conservative":
        overrides["DUCKDB_MEMORY_LIMIT"] = CONSERVATIVE_MEMORY_LIMIT
    settings = load_settings(**overrides)

    with held_warehouse(settings):  # the layers' tasks share the open warehouse instead of each opening it
        bronze = bronze_layer(path, settings)
        summary: dict[str, Any] = {
            "file_id": bronze.file_id,
            "file_name": bronze.file_name,
            "status": "skipped" if bronze.skipped else "loaded",
            "bronze_rows": bronze.bronze_rows,
            "warehouse": str(settings.warehouse_path),
        }
        if bronze.skipped:
            return summary
        try:
            silver = silver_layer(bronze, settings)
            quality = quality_layer(bronze.file_id, silver.quality_counts, settings)
            # Large files and error retries defer live lookups to the next incremental run.
            live = settings.enable_external_enrichment and mode == "standard"
            enrichment = enrichment_layer(settings, live)
            kpis = gold_layer(settings, bronze.file_id)
        except Exception as error:
            failure_record(path, error, settings)
            raise
    summary.update(
        silver_rows=silver.silver_rows,
        rejected_rows=silver.rejected_rows,
        rejected_by_reason=silver.rejected_by_reason,
        duplicate_rows=silver.duplicate_rows,
        quality_score=quality.file.score,
        quality=quality.file.model_dump(),
        dataset_quality_score=quality.dataset.score,
        quality_below_threshold=quality.below_threshold,
        enrichment={source: enrichment[source] for source in ("rates", "countries", "products")},
        gold_kpis={key: str(value) if value is not None else None for key, value in kpis.items()},
    )
    return summary
