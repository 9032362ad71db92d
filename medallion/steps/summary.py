"""A file run's summary, from the reports of its steps."""

from __future__ import annotations

from enrichment.build import EnrichmentStats
from medallion.runs import GoldKpis, RunStatus, RunSummary
from medallion.steps.bronze_step import BronzeReport
from medallion.steps.quality_step import QualityReport
from medallion.steps.silver_step import SilverReport
from medallion.warehouse import Warehouse


def skipped_run(warehouse: Warehouse, bronze: BronzeReport) -> RunSummary:
    """A run that found the file's content loaded already."""
    return RunSummary(
        file_id=bronze.file_id,
        file_name=bronze.file_name,
        status=RunStatus.SKIPPED,
        warehouse=warehouse.describe(),
        bronze_rows=bronze.bronze_rows,
    )


def loaded_run(
    warehouse: Warehouse,
    bronze: BronzeReport,
    silver: SilverReport,
    quality: QualityReport,
    enrichment: EnrichmentStats,
    gold: GoldKpis,
) -> RunSummary:
    """A run that took the file through every layer."""
    return RunSummary(
        file_id=bronze.file_id,
        file_name=bronze.file_name,
        status=RunStatus.LOADED,
        warehouse=warehouse.describe(),
        bronze_rows=bronze.bronze_rows,
        silver_rows=silver.silver_rows,
        rejected_rows=silver.rejected_rows,
        rejected_by_reason=silver.rejected_by_reason,
        duplicate_rows=silver.duplicate_rows,
        overlap_rows=silver.overlap_rows,
        changed_invoices=silver.changed_invoices,
        quality=quality.file,
        dataset_quality=quality.dataset,
        quality_threshold=quality.threshold,
        enrichment={"rates": enrichment.rates, "countries": enrichment.countries, "products": enrichment.products},
        gold=gold,
    )
