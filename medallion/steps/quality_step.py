"""Quality: a file's scores and the whole dataset's, recorded in the quality history."""

from __future__ import annotations

from pydantic import BaseModel

from medallion import quality
from medallion.settings import PipelineSettings
from medallion.warehouse import Warehouse, quality_store


class QualityReport(BaseModel):
    file: quality.QualityScores
    dataset: quality.QualityScores
    threshold: float

    @property
    def below_threshold(self) -> bool:
        return self.file.score < self.threshold


def score_quality(
    warehouse: Warehouse, file_id: str, counts: quality.QualityCounts, pipeline: PipelineSettings
) -> QualityReport:
    """Score the file and the whole dataset (every file now in silver) and record both."""
    threshold = pipeline.quality_alert_threshold
    file_scores = quality.quality_scores(counts, pipeline.quality_weights)
    with warehouse.connection() as connection:
        dataset_scores = quality_store.record_file_and_dataset_quality(
            connection,
            file_id=file_id,
            counts=counts,
            scores=file_scores,
            threshold=threshold,
            weights=pipeline.quality_weights,
        )
    return QualityReport(file=file_scores, dataset=dataset_scores, threshold=threshold)


def score_dataset(warehouse: Warehouse, pipeline: PipelineSettings) -> quality.QualityScores:
    """Score every file now in silver together and record it as a `dataset` row of the quality history."""
    with warehouse.connection() as connection:
        return quality_store.record_dataset_quality(
            connection, threshold=pipeline.quality_alert_threshold, weights=pipeline.quality_weights
        )
