"""The enrichment task: the DuckDB dimensions and cache are the source of truth, Prefect's cache a thin layer on top."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.context import TaskRunContext
from prefect.settings import PREFECT_LOCAL_STORAGE_PATH

from enrichment.build import EnrichmentStats
from medallion import steps
from medallion.settings import EnrichmentSettings
from medallion.warehouse import Warehouse
from tasks.layers import refusals_fail_quietly, retry_unless_bad_input


def _marker(key: str) -> Path:
    return Path(PREFECT_LOCAL_STORAGE_PATH.value()) / f"{key}.done"


def _state_key(warehouse: Warehouse, settings: EnrichmentSettings, live: bool, fingerprint: str) -> str:
    sources = "|".join(
        (
            settings.exchangerate_api_base_url,
            settings.open_er_api_base_url,
            settings.restcountries_base_url,
            settings.datamuse_base_url,
            warehouse.describe(),
        )
    )
    mode = "live" if live else "offline"
    return "enrichment-" + hashlib.sha256(f"{fingerprint}|{mode}|{sources}".encode()).hexdigest()


def enrichment_cache_key(context: TaskRunContext | None, parameters: dict[str, Any]) -> str | None:
    """Cache only a run with nothing to look up, keyed by the enrichment state; never by a secret.

    Prefect 2 fails a cache hit whose result file is gone, so a key is offered only while the marker written
    beside the results by the last run is still there: wiping the result storage wipes the markers too.
    """
    if parameters.get("file_ids") is not None:
        return None  # a file run looks up its own rows' keys: new ones, nearly always
    warehouse: Warehouse = parameters["warehouse"]
    state = steps.enrichment_state(warehouse)
    if not state.complete:
        return None
    key = _state_key(warehouse, parameters["settings"], parameters["live"], state.fingerprint)
    return key if _marker(key).exists() else None


def enrichment_stats(
    warehouse: Warehouse, settings: EnrichmentSettings, live: bool, file_ids: Sequence[str] | None = None
) -> EnrichmentStats:
    """Fill the rate, country and product dimensions and the enriched view for the keys of all of silver, or of the
    files `file_ids` names (a file run's); returns the lookup counts."""
    stats = steps.enrich_silver(warehouse, settings, live=live, file_ids=file_ids)
    if file_ids is None and (state := steps.enrichment_state(warehouse)).complete:
        marker = _marker(_state_key(warehouse, settings, live, state.fingerprint))
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    get_run_logger().info("enrichment (%s): %s", "live" if live else "offline", stats.in_words())
    return stats


enrichment_layer = task(
    name="enrichment",
    cache_key_fn=enrichment_cache_key,
    cache_expiration=timedelta(hours=1),
    retries=2,
    retry_delay_seconds=[2, 10],
    retry_condition_fn=retry_unless_bad_input,
    # A cache hit returns the stored result, so the result must be stored.
    persist_result=True,
)(refusals_fail_quietly(enrichment_stats))
