"""Which warehouse tables each of the service's runs writes, named as the catalog records them (`schema.name`)."""

from __future__ import annotations

from medallion.errors import ConfigurationError, WarehouseBusyError
from medallion.gold import GOLD_TABLES
from medallion.runs import RunStatus, RunSummary
from medallion.warehouse.bronze import bronze_table
from medallion.warehouse.catalog import GOLD_STATE

LEDGER = ("ops.files",)
QUALITY = ("ops.quality",)
SILVER = ("silver.lines", "silver.rejected")
ENRICHMENT = ("enrichment.rates", "enrichment.countries", "enrichment.products")
GOLD = (GOLD_STATE, *(f"gold.{name}" for name in GOLD_TABLES))

# The scheduled runs: the daily catch-up refreshes enrichment and gold, the monitor scores the dataset, the weekly
# reprocessing rebuilds silver (with each file's counts in the ledger and its quality) and gold.
DAILY = (*ENRICHMENT, *GOLD)
MONITOR = QUALITY
WEEKLY = (*SILVER, *LEDGER, *QUALITY, *GOLD)


def file_run_tables(summary: RunSummary) -> tuple[str, ...]:
    """The tables a file run wrote: every layer for a loaded file, none for content loaded already."""
    if summary.status is RunStatus.SKIPPED:
        return ()
    return (
        bronze_table(summary.file_id),
        "bronze.transactions",
        *LEDGER,
        *SILVER,
        *QUALITY,
        *ENRICHMENT,
        *GOLD,
    )


def failed_run_tables(error: BaseException) -> tuple[str, ...]:
    """The tables a failed file run wrote: its file entered failed in the ledger. None when the warehouse itself
    failed it (busy, or a setting it cannot use): nothing was written, and opening it again would fail the same way."""
    if isinstance(error, WarehouseBusyError | ConfigurationError):
        return ()
    return LEDGER
