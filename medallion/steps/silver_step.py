"""Silver: one file's bronze rows typed and cleaned inside DuckDB, or every live file's rebuilt from bronze."""

from __future__ import annotations

import duckdb
from pydantic import BaseModel

from medallion import quality, silver
from medallion.settings import PipelineSettings
from medallion.warehouse import Warehouse, bronze, ledger, silver_store


class SilverReport(BaseModel):
    file_id: str
    bronze_rows: int
    silver_rows: int
    rejected_rows: int
    duplicate_rows: int
    rejected_by_reason: dict[str, int]
    date_formats: list[str]
    date_order_source: str
    superseded: list[str]
    quality_counts: quality.QualityCounts


class RebuildReport(BaseModel):
    """What a rebuild of silver from bronze put in place."""

    files: int
    carried_over: int
    silver_rows: int
    rejected_rows: int
    duplicate_rows: int


def load_silver(warehouse: Warehouse, file_id: str, pipeline: PipelineSettings) -> SilverReport:
    """Type and clean one file's bronze rows into silver inside DuckDB; rejected rows keep their reason.

    DuckDB streams the rows through the transforms within DUCKDB_MEMORY_LIMIT, spilling to disk beyond it, so
    memory stays bounded whatever the file's size.
    """
    with warehouse.connection() as connection:
        return _file_silver(connection, file_id, pipeline, rebuild=False)


def rebuild_silver(warehouse: Warehouse, pipeline: PipelineSettings) -> RebuildReport:
    """Rebuild silver from bronze with today's transforms for every live file, swapped in atomically. A live file
    without bronze rows (entered into the ledger when an earlier layout's silver was moved) keeps its rows as
    they are."""
    with warehouse.connection() as connection:
        files = ledger.live_files(connection)
        silver_store.prepare_silver_rebuild(connection)
        reports = []
        carried_over = 0
        for file in files:
            if bronze.has_bronze(connection, file.file_id):
                reports.append(_file_silver(connection, file.file_id, pipeline, rebuild=True))
            else:
                silver_store.carry_over_silver(connection, file.file_id)
                carried_over += 1
        silver_store.swap_in_rebuilt_silver(
            connection,
            [
                silver_store.RebuiltFile(
                    file_id=report.file_id,
                    silver_rows=report.silver_rows,
                    rejected_rows=report.rejected_rows,
                    duplicate_rows=report.duplicate_rows,
                    counts=report.quality_counts,
                    scores=quality.quality_scores(report.quality_counts, pipeline.quality_weights),
                )
                for report in reports
            ],
            currency=pipeline.source_currency,
            threshold=pipeline.quality_alert_threshold,
        )
    return RebuildReport(
        files=len(reports),
        carried_over=carried_over,
        silver_rows=sum(report.silver_rows for report in reports),
        rejected_rows=sum(report.rejected_rows for report in reports),
        duplicate_rows=sum(report.duplicate_rows for report in reports),
    )


def _file_silver(
    connection: duckdb.DuckDBPyConnection, file_id: str, pipeline: PipelineSettings, *, rebuild: bool
) -> SilverReport:
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
    return SilverReport(
        file_id=file_id,
        bronze_rows=bronze_rows,
        silver_rows=totals.silver_rows,
        rejected_rows=totals.rejected_rows,
        duplicate_rows=totals.duplicate_rows,
        rejected_by_reason=totals.rejected_by_reason,
        date_formats=parsing.formats,
        date_order_source=parsing.order_source,
        superseded=totals.superseded,
        quality_counts=totals.counts,
    )
