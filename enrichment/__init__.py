"""Enrichment of silver transactions: rates at the invoice date, country facts and product categories.

Each dimension has one source chosen per run in `enrichment.sources`: an offline twin, or a live API in front of it.
"""

from enrichment.build import EnrichmentStats, build_enrichment
from enrichment.dimensions import (
    UnmappedCountry,
    enrichment_fingerprint,
    ensure_dimension_tables,
    pending_lookups,
    unmapped_countries,
)
from enrichment.lookup import LookupCounts

__all__ = [
    "EnrichmentStats",
    "LookupCounts",
    "UnmappedCountry",
    "build_enrichment",
    "enrichment_fingerprint",
    "ensure_dimension_tables",
    "pending_lookups",
    "unmapped_countries",
]
