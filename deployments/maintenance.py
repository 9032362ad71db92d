"""Warehouse-wide measurements the scheduled deployments need, composed from the core's functions."""

from __future__ import annotations

from medallion import quality, warehouse
from medallion.quality import QualityScores
from medallion.settings import Settings


def dataset_quality(settings: Settings) -> QualityScores:
    """Score every file now in silver together and record it as a `dataset` row of the quality history."""
    with warehouse.open_warehouse(
        settings.warehouse_path, lock_timeout_s=settings.warehouse_lock_timeout_s
    ) as connection:
        counts = warehouse.live_quality_counts(connection)
        scores = quality.quality_scores(counts, settings.quality_weights)
        warehouse.record_quality(
            connection,
            scope="dataset",
            file_id=None,
            counts=counts,
            scores=scores,
            threshold=settings.quality_alert_threshold,
        )
    return scores
