"""Silver: one file's bronze rows typed and cleaned inside DuckDB, or every live file's rebuilt from bronze."""

from __future__ import annotations

import duckdb
from pydantic import BaseModel

from medallion import quality, silver
from medallion.settings import PipelineSettings
from medallion.warehouse import Warehouse, bronze, ledger, quality_store, silver_store


class SilverReport(BaseModel):
    """Where the file's bronze rows went: `bronze_rows` is `silver_rows + rejected_rows + duplicate_rows +
    overlap_rows`. `republished` names the later files published again after a version the file superseded."""

    file_id: str
    bronze_rows: int
    silver_rows: int
    rejected_rows: int
    duplicate_rows: int
    overlap_rows: int
    changed_invoices: int
    rejected_by_reason: dict[str, int]
    date_formats: list[str]
    date_order_source: str
    superseded: list[str]
    republished: list[str]
    quality_counts: quality.QualityCounts


class RebuildReport(BaseModel):
    """What a rebuild of silver from bronze put in place."""

    files: int
    carried_over: int
    silver_rows: int
    rejected_rows: int
    duplicate_rows: int
    overlap_rows: int
    changed_invoices: int


def load_silver(warehouse: Warehouse, file_id: str, pipeline: PipelineSettings) -> SilverReport:
    """Type and clean one file's bronze rows into silver inside DuckDB; rejected rows keep their reason, and lines
    another file has in silver already are counted, not added again.

    DuckDB streams the rows through the transforms within DUCKDB_MEMORY_LIMIT, spilling to disk beyond it, so
    memory stays bounded whatever the file's size. The files published again after a superseded version are
    scored again.
    """
    with warehouse.connection() as connection:
        report, totals = _file_silver(connection, file_id, pipeline, rebuild=False)
        for other, republished in totals.republished.items():
            quality_store.record_file_quality(
                connection,
                file_id=other,
                counts=republished.counts,
                scores=quality.quality_scores(republished.counts, pipeline.quality_weights),
                threshold=pipeline.quality_alert_threshold,
            )
    return report


def rebuild_silver(warehouse: Warehouse, pipeline: PipelineSettings) -> RebuildReport:
    """Rebuild silver from bronze with today's transforms for every live file in ledger order (so each line is the
    file's that first had it, as when the files were loaded), swapped in atomically. A live file without bronze
    rows (entered into the ledger when an earlier layout's silver was moved) keeps its rows as they are."""
    with warehouse.connection() as connection:
        files = ledger.live_files(connection)
        silver_store.prepare_silver_rebuild(connection)
        rebuilt: list[silver_store.RebuiltFile] = []
        for file in files:
            if not bronze.has_bronze(connection, file.file_id):
                silver_store.carry_over_silver(connection, file.file_id)
                continue
            totals = _file_silver(connection, file.file_id, pipeline, rebuild=True)[1]
            scores = quality.quality_scores(totals.counts, pipeline.quality_weights)
            rebuilt.append(silver_store.RebuiltFile(file.file_id, totals, scores))
        silver_store.swap_in_rebuilt_silver(
            connection,
            rebuilt,
            ledger_order=[file.file_id for file in files],
            currency=pipeline.source_currency,
            threshold=pipeline.quality_alert_threshold,
        )
    return RebuildReport(
        files=len(rebuilt),
        carried_over=len(files) - len(rebuilt),
        **{name: sum(getattr(file.totals, name) for file in rebuilt) for name in _SUMMED},
    )


_SUMMED = ("silver_rows", "rejected_rows", "duplicate_rows", "overlap_rows", "changed_invoices")


def _file_silver(
    connection: duckdb.DuckDBPyConnection, file_id: str, pipeline: PipelineSettings, *, rebuild: bool
) -> tuple[SilverReport, silver_store.SilverTotals]:
    file_name, bronze_rows = bronze.bronze_summary(connection, file_id)
    evidence = silver_store.date_evidence(connection, file_id)
    parsing = silver.date_parsing(evidence, pipeline.ambiguous_date_order, file_name)
    totals = silver_store.publish_silver(
        connection,
        file_id,
        file_name,
        pipeline.source_currency,
        date_formats=parsing.formats,
        date_order_source=parsing.order_source,
        rebuild=rebuild,
        max_abs_quantity=pipeline.max_abs_quantity,
        max_abs_unit_price=pipeline.max_abs_unit_price,
    )
    report = SilverReport(
        file_id=file_id,
        bronze_rows=bronze_rows,
        silver_rows=totals.silver_rows,
        rejected_rows=totals.rejected_rows,
        duplicate_rows=totals.duplicate_rows,
        overlap_rows=totals.overlap_rows,
        changed_invoices=totals.changed_invoices,
        rejected_by_reason=totals.rejected_by_reason,
        date_formats=parsing.formats,
        date_order_source=parsing.order_source,
        superseded=totals.superseded,
        republished=list(totals.republished),
        quality_counts=totals.counts,
    )
    return report, totals
