"""Building the enrichment dimensions: each dimension's pending keys, looked up by its source, published together."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import duckdb
import httpx
from pydantic import BaseModel, Field

from enrichment.cache import ApiCache, naive_utc
from enrichment.dimensions import (
    DIMENSIONS,
    distinct_key_counts,
    ensure_dimension_tables,
    publish_dimensions,
    stage_keys,
    staged_unmapped_countries,
)
from enrichment.lookup import Found, Lookup, LookupCounts
from enrichment.redaction import install_log_redaction
from enrichment.resilience import Clock, SystemClock
from enrichment.sources import enrichment_sources
from medallion.settings import EnrichmentSettings

logger = logging.getLogger(__name__)


class EnrichmentStats(BaseModel):
    """What a run of build_enrichment did; the run's summary and artifacts report it."""

    live: bool
    rates: LookupCounts = Field(default_factory=LookupCounts)
    countries: LookupCounts = Field(default_factory=LookupCounts)
    products: LookupCounts = Field(default_factory=LookupCounts)
    # Distinct keys of silver per dimension, and how many of them this run looked up (missing or expired).
    distinct_keys: dict[str, int] = Field(default_factory=dict)
    looked_up: dict[str, int] = Field(default_factory=dict)
    # Breaker state of each live API asked this run.
    breakers: dict[str, str] = Field(default_factory=dict)
    unmapped_countries: list[str] = Field(default_factory=list)
    duration_s: float = 0.0

    @property
    def total_lookups(self) -> int:
        return sum(counts.answered for counts in (self.rates, self.countries, self.products))

    @property
    def live_requests(self) -> int:
        return self.rates.requests + self.countries.requests + self.products.requests

    def in_words(self) -> str:
        """E.g. "rates 3 live, 2 cached; countries 5 offline; products 12 offline", for logs and artifacts."""
        dimensions = (("rates", self.rates), ("countries", self.countries), ("products", self.products))
        return "; ".join(f"{name} {counts.in_words()}" for name, counts in dimensions)

    def record(self, name: str, keys: int, lookup: Lookup[Any]) -> None:
        """Note what looking up one dimension's `keys` pending keys gave."""
        setattr(self, name, lookup.counts())
        self.looked_up[name] = keys
        if lookup.breaker is not None:
            self.breakers[name] = lookup.breaker


def build_enrichment(
    connection: duckdb.DuckDBPyConnection,
    settings: EnrichmentSettings,
    *,
    live: bool,
    clock: Clock | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    file_ids: Sequence[str] | None = None,
) -> EnrichmentStats:
    """Fill the rate, country and product dimensions for the keys silver lacks (with `file_ids`, the keys of
    those files' rows only: what a file run adds); recreate the enriched view.

    `live` asks the live APIs (the run mode decides); `clock` and `transport` stand in for time and the network in
    tests.
    """
    clock = clock or SystemClock()
    started = time.perf_counter()
    now = naive_utc(clock.now())
    if live:
        install_log_redaction(settings.secrets())
    ensure_dimension_tables(connection)
    cache = ApiCache(connection, tuple(settings.secrets()))
    sources = enrichment_sources(cache, settings, live=live, now=now, clock=clock, transport=transport)
    stage_keys(connection, file_ids)
    stats = EnrichmentStats(live=live, distinct_keys=distinct_key_counts(connection))
    found: dict[str, list[Found[Any]]] = {}
    for dimension in DIMENSIONS:
        keys = dimension.pending_keys(connection, now)
        lookup = sources[dimension.name].lookup(keys)
        stats.record(dimension.name, len(keys), lookup)
        found[dimension.name] = lookup.found
    publish_dimensions(connection, found, now)
    stats.unmapped_countries = [item.country for item in staged_unmapped_countries(connection)]
    stats.duration_s = round(time.perf_counter() - started, 3)
    logger.info("enrichment (%s): %s", "live" if live else "offline", stats.in_words())
    return stats
