from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta

import duckdb
import httpx
import pytest
import respx

from enrichment.build import EnrichmentStats, build_enrichment
from enrichment.cache import ApiCache
from enrichment.countries import OfflineCountries
from enrichment.dimensions import unmapped_countries
from enrichment.exchangerate_api import LiveRates
from enrichment.lookup import LookupCounts
from enrichment.products import ProductRules
from enrichment.rates import EcbRates
from enrichment.restcountries import LiveCountries
from enrichment.sources import enrichment_sources

from .conftest import SECRET, FakeClock, api_fixture, fast_settings, load_silver

ERRORS = api_fixture("exchangerate-api_v6_error_responses_FIXTURE.json")
HOLDER = "WHITE HANGING HEART T-LIGHT HOLDER"


def test_the_sources_are_chosen_once_from_the_run_mode_and_the_keys(clock: FakeClock) -> None:
    cache = ApiCache(duckdb.connect())
    now = datetime(2026, 11, 20)
    offline = enrichment_sources(cache, fast_settings(countries_api_key=SECRET), live=False, now=now, clock=clock)
    assert [type(source) for source in offline.values()] == [EcbRates, OfflineCountries, ProductRules]
    keyless = enrichment_sources(cache, fast_settings(), live=True, now=now, clock=clock)
    assert isinstance(keyless["rates"], LiveRates)
    assert isinstance(keyless["countries"], OfflineCountries), "REST Countries v5 needs a key"
    keyed = enrichment_sources(cache, fast_settings(countries_api_key=SECRET), live=True, now=now, clock=clock)
    assert isinstance(keyed["countries"], LiveCountries)


def test_an_unknown_country_is_an_unmapped_value_with_a_reason(warehouse: duckdb.DuckDBPyConnection) -> None:
    # countryinfo raises its own CountryNotFoundError (a LookupError) for a name it does not know.
    record = OfflineCountries().facts_of("Atlantis")
    assert (record.iso2, record.source) == (None, "unmapped")
    assert record.unmapped_reason == "no country called 'Atlantis' in countryinfo"

    load_silver(warehouse, [("85123A", HOLDER, 2.95, "Atlantis", date(2011, 6, 9))])
    stats = build_enrichment(warehouse, fast_settings(), live=False)
    assert (stats.countries.offline, stats.countries.failed) == (1, 0)
    assert stats.unmapped_countries == ["Atlantis"]
    [unmapped] = unmapped_countries(warehouse)
    assert (unmapped.country, unmapped.rows, unmapped.reason) == ("Atlantis", 1, record.unmapped_reason)


@respx.mock
def test_a_key_rejected_with_401_sends_and_counts_no_further_request(
    warehouse: duckdb.DuckDBPyConnection, clock: FakeClock
) -> None:
    days = [date(2011, 6, 1) + timedelta(days=offset) for offset in range(20)]
    load_silver(warehouse, [("85123A", HOLDER, 2.95, "United Kingdom", day) for day in days])

    async def invalid_key(request: httpx.Request) -> httpx.Response:
        # A real server answers later: the other lookups are queued meanwhile.
        await asyncio.sleep(0)
        return httpx.Response(401, json=ERRORS["invalid-key"]["body"])

    route = respx.get(url__startswith=f"https://v6.exchangerate-api.com/v6/{SECRET}/history/GBP/").mock(
        side_effect=invalid_key
    )
    settings = fast_settings(currency_api_key=SECRET, currency_history_enabled=True, batch_size=1)
    stats = build_enrichment(warehouse, settings, live=True, clock=clock)

    assert route.call_count == 1
    assert (stats.rates.requests, stats.rates.failed, stats.rates.offline) == (1, 20, 20)
    assert stats.breakers["rates"] == "open"
    usage = warehouse.execute("SELECT source, requests FROM enrichment.api_usage").fetchall()
    assert usage == [("exchangerate_api", 1)]
    sources = warehouse.execute("SELECT DISTINCT source FROM enrichment.rates").fetchall()
    assert sources == [("ecb_offline",)], "every key falls back to the ECB twin, to be retried later"


@pytest.mark.parametrize(
    ("counts", "words"),
    [
        (LookupCounts(), "none"),
        (LookupCounts(live=3, cached=2), "3 live, 2 cached"),
        (
            LookupCounts(live=1, offline=2, failed=2, requests=6, retries=3),
            "1 live, 2 offline, 2 failed (6 requests, 3 retries)",
        ),
    ],
)
def test_counts_in_words(counts: LookupCounts, words: str) -> None:
    assert counts.in_words() == words


def test_stats_in_words_name_every_dimension() -> None:
    stats = EnrichmentStats(
        live=True,
        rates=LookupCounts(live=3, cached=2),
        countries=LookupCounts(offline=5),
        products=LookupCounts(offline=12),
    )
    assert stats.in_words() == "rates 3 live, 2 cached; countries 5 offline; products 12 offline"
    assert stats.total_lookups == 22
