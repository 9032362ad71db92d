from __future__ import annotations

import duckdb

from enrichment.settings import EnrichmentSettings
from medallion.settings import load_settings
from tasks.enrichment import enrich_silver, enrichment_cache_key, report_unmapped_countries

from .conftest import SECRET, load_silver
from .test_dimensions import ROWS


def test_task_caches_only_when_nothing_is_pending_and_never_keys_on_the_secret(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    load_silver(warehouse, ROWS)
    core = load_settings(CURRENCY_API_KEY=SECRET)
    parameters = {"con": warehouse, "settings": core, "live": False}
    assert enrichment_cache_key(None, parameters) is None
    stats = enrich_silver.fn(warehouse, core, live=False)
    assert stats["rates"]["offline"] == 4 and stats["countries"]["offline"] == 5
    key = enrichment_cache_key(None, parameters)
    assert key is not None and SECRET not in key
    assert enrichment_cache_key(None, parameters) == key
    warehouse.execute("DROP VIEW silver.transactions_enriched")
    assert enrichment_cache_key(None, parameters) != key
    unmapped = report_unmapped_countries.fn(warehouse)
    assert [item["country"] for item in unmapped] == ["Channel Islands", "Unspecified"]


def test_retry_delays_are_whole_seconds() -> None:
    assert all(float(delay).is_integer() for delay in enrich_silver.retry_delay_seconds)
    assert EnrichmentSettings.from_settings(load_settings()).enabled is False
