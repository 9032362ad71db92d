"""Enrichment: rates, country facts and categories for the keys silver lacks, and what is still pending."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from enrichment.build import EnrichmentStats, build_enrichment
from enrichment.dimensions import enrichment_fingerprint, ensure_dimension_tables, pending_lookups
from medallion.settings import EnrichmentSettings
from medallion.warehouse import Warehouse, sql


class EnrichmentState(NamedTuple):
    """Lookups still pending per dimension, and a fingerprint of what the dimensions hold now."""

    pending: dict[str, int]
    fingerprint: str

    @property
    def complete(self) -> bool:
        return not any(self.pending.values())


def enrich_silver(
    warehouse: Warehouse, settings: EnrichmentSettings, *, live: bool, file_ids: Sequence[str] | None = None
) -> EnrichmentStats:
    """Look up rates, country facts and categories for the keys silver lacks (with `file_ids`, the keys of those
    files' rows only); returns the lookup counts."""
    with warehouse.connection() as connection:
        return build_enrichment(connection, settings, live=live, file_ids=file_ids)


def enrichment_state(warehouse: Warehouse) -> EnrichmentState:
    """What a run of `enrich_silver` would still look up, and a digest of the dimensions as they are."""
    with warehouse.connection() as connection:
        ensure_dimension_tables(connection)
        return EnrichmentState(pending_lookups(connection, sql.now()), enrichment_fingerprint(connection))
