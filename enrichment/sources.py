"""The one place that chooses each dimension's source: the offline twins, or the live APIs in front of them.

To add an enrichment source: write its key and record with an offline twin (like `rates.py`) and, if it has an
API, a live twin (like `exchangerate_api.py`: a `LiveApi` and a class whose `lookup` asks it through
`LiveContext.answers`); add its `Dimension` to `dimensions.DIMENSIONS`, its columns to the enriched view, and its
twins below. `build_enrichment` then looks its keys up with the others.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from enrichment.cache import ApiCache
from enrichment.countries import OfflineCountries
from enrichment.datamuse import LiveProducts
from enrichment.exchangerate_api import LiveRates
from enrichment.live import LiveContext
from enrichment.lookup import Source
from enrichment.products import ProductRules
from enrichment.rates import EcbRates
from enrichment.resilience import Clock
from enrichment.restcountries import LiveCountries
from medallion.settings import EnrichmentSettings


def offline_sources() -> dict[str, Source[Any, Any]]:
    return {"rates": EcbRates(), "countries": OfflineCountries(), "products": ProductRules()}


def live_sources(live: LiveContext) -> dict[str, Source[Any, Any]]:
    """The live twins; countries stay offline without a COUNTRIES_API_KEY (REST Countries v5 requires one)."""
    countries: Source[Any, Any] = OfflineCountries()
    if live.settings.countries_api_key is not None:
        countries = LiveCountries(live)
    return {"rates": LiveRates(live), "countries": countries, "products": LiveProducts(live)}


def enrichment_sources(
    cache: ApiCache,
    settings: EnrichmentSettings,
    *,
    live: bool,
    now: datetime,
    clock: Clock,
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, Source[Any, Any]]:
    """Each dimension's source for this run, by dimension name."""
    if not live:
        return offline_sources()
    return live_sources(LiveContext(settings, cache, clock, now, transport))
