"""The pipeline's steps, one module per layer. Each function takes the run's `Warehouse` and the settings section
it needs, borrows a connection, computes, publishes atomically and returns a typed report. Nothing here knows
Prefect."""

from medallion.steps.bronze_step import BronzeReport, load_bronze, record_file_failure, record_refusal
from medallion.steps.enrichment_step import EnrichmentState, enrich_silver, enrichment_state
from medallion.steps.gold_step import load_gold, load_gold_of_files
from medallion.steps.quality_step import QualityReport, score_dataset, score_quality
from medallion.steps.silver_step import RebuildReport, SilverReport, load_silver, rebuild_silver
from medallion.steps.summary import loaded_run, skipped_run

__all__ = [
    "record_refusal",
    "BronzeReport",
    "EnrichmentState",
    "QualityReport",
    "RebuildReport",
    "SilverReport",
    "enrich_silver",
    "enrichment_state",
    "load_bronze",
    "load_gold",
    "load_gold_of_files",
    "load_silver",
    "loaded_run",
    "rebuild_silver",
    "record_file_failure",
    "score_dataset",
    "score_quality",
    "skipped_run",
]
