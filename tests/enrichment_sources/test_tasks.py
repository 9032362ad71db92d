from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from prefect import flow
from prefect.settings import PREFECT_LOCAL_STORAGE_PATH

from medallion.settings import load_settings
from medallion.warehouse import Warehouse
from tasks.enrichment import enrichment_cache_key, enrichment_layer

from .conftest import SECRET, load_warehouse_silver
from .test_dimensions import ROWS


@pytest.mark.usefixtures("prefect_harness")
def test_the_task_is_cached_only_when_nothing_is_pending_and_never_keyed_on_the_secret(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    load_warehouse_silver(path, ROWS)
    settings = load_settings(WAREHOUSE_PATH=str(path), CURRENCY_API_KEY=SECRET)
    with Warehouse(settings.pipeline) as warehouse:
        parameters = {"warehouse": warehouse, "settings": settings.enrichment, "live": False}
        assert enrichment_cache_key(None, parameters) is None, "lookups are pending: nothing to cache yet"

        @flow
        def enrich_three_times() -> tuple[list[str], list[int]]:
            states = [enrichment_layer(warehouse, settings.enrichment, False, return_state=True) for _ in range(3)]
            return [state.name for state in states], [state.result().rates.offline for state in states]

        names, offline_rates = enrich_three_times()
        # the first run looks up; the second finds nothing to look up and is stored under its key; the third hits it
        assert names == ["Completed", "Completed", "Cached"]
        assert offline_rates == [4, 0, 0]
        key = enrichment_cache_key(None, parameters)
        assert key is not None and SECRET not in key

        with warehouse.connection() as connection:
            connection.execute("DROP VIEW silver.transactions_enriched")
        assert enrichment_cache_key(None, parameters) != key

        shutil.rmtree(PREFECT_LOCAL_STORAGE_PATH.value())
        with warehouse.connection() as connection:
            assert connection.execute("SELECT count(*) FROM enrichment.rates").fetchall() == [(4,)]
        assert enrichment_cache_key(None, parameters) is None, "no cache is offered once its result files are gone"


def test_retry_delays_are_whole_seconds() -> None:
    assert all(float(delay).is_integer() for delay in enrichment_layer.retry_delay_seconds)
    assert load_settings().enrichment.enabled is False
