"""What a file run may do (its mode) and what it reports (its summary), as the CLI, artifacts and service read them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from enrichment.lookup import LookupCounts
from medallion.quality import QualityScores
from medallion.settings import EnrichmentSettings, PipelineSettings


class RunMode(StrEnum):
    """How a file is run: `large` defers live lookups to the next scheduled run; `conservative` (an error retry)
    does too, and reads with less memory so DuckDB spills sooner and the readers hand over smaller batches."""

    STANDARD = "standard"
    LARGE = "large"
    CONSERVATIVE = "conservative"

    def pipeline(self, pipeline: PipelineSettings, batch_rows: int | None = None) -> PipelineSettings:
        """The pipeline settings of a run in this mode; `batch_rows` wins over the mode's own."""
        update: dict[str, object] = {}
        if self is RunMode.CONSERVATIVE:
            update = {"batch_rows": CONSERVATIVE_BATCH_ROWS, "duckdb_memory_limit": CONSERVATIVE_MEMORY_LIMIT}
        if batch_rows is not None:
            update["batch_rows"] = batch_rows
        if not update:
            return pipeline
        return PipelineSettings.model_validate({**pipeline.model_dump(), **update})

    def live_lookups(self, enrichment: EnrichmentSettings, enable: bool | None = None) -> bool:
        """Whether this run asks the live enrichment APIs; `enable` wins over ENABLE_EXTERNAL_ENRICHMENT."""
        wanted = enrichment.enabled if enable is None else enable
        return wanted and self is RunMode.STANDARD


CONSERVATIVE_BATCH_ROWS = 100_000
CONSERVATIVE_MEMORY_LIMIT = "256MB"


class RunStatus(StrEnum):
    LOADED = "loaded"
    SKIPPED = "skipped"


class GoldKpis(BaseModel):
    """The row of `gold.kpis` after the run."""

    net_revenue: float | None = None
    gross_revenue: float | None = None
    returns: float | None = None
    orders: int | None = None
    customers: int | None = None
    average_order_value: float | None = None
    distinct_products: int | None = None
    first_invoice: datetime | None = None
    last_invoice: datetime | None = None
    rows: int | None = None
    files: int | None = None
    refreshed_at: datetime | None = None


class RunSummary(BaseModel):
    """One file's run through the layers: what each layer holds of it and how it scored."""

    file_id: str
    file_name: str
    status: RunStatus
    warehouse: str
    bronze_rows: int
    silver_rows: int = 0
    rejected_rows: int = 0
    rejected_by_reason: dict[str, int] = Field(default_factory=dict)
    duplicate_rows: int = 0
    # Lines another live file has in silver already: counted, not added again (bronze = silver + rejected + duplicates
    # + overlaps). Invoices silver has that the file brought back with other lines: those lines are rejected.
    overlap_rows: int = 0
    changed_invoices: int = 0
    quality: QualityScores | None = None
    dataset_quality: QualityScores | None = None
    quality_threshold: float | None = None
    # Lookups per source (`rates`, `countries`, `products`), by where the answer came from (`live`, `cached`, ...).
    enrichment: dict[str, LookupCounts] = Field(default_factory=dict)
    gold: GoldKpis | None = None

    @property
    def below_threshold(self) -> bool:
        return (
            self.quality is not None
            and self.quality_threshold is not None
            and self.quality.score < self.quality_threshold
        )

    def enrichment_in_words(self) -> str:
        """E.g. "rates 3 live, 2 cached; countries 5 offline; products none", as logs and artifacts print it."""
        return "; ".join(f"{source} {counts.in_words()}" for source, counts in self.enrichment.items())

    def quality_in_words(self) -> str:
        """The file's score against the threshold, e.g. "quality 75.1 is below the threshold of 85"."""
        if self.quality is None or self.quality_threshold is None:
            return "no quality score"
        relation = "below" if self.below_threshold else "at or above"
        return f"quality {self.quality.score:.1f} is {relation} the threshold of {self.quality_threshold:g}"
