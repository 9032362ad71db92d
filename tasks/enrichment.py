"""The enrichment task: the DuckDB dimensions and cache are the source of truth, Prefect's cache a thin layer on top."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.context import TaskRunContext
from prefect.settings import PREFECT_LOCAL_STORAGE_PATH

from medallion import steps
from medallion.settings import Settings


def _marker(key: str) -> Path:
    return Path(PREFECT_LOCAL_STORAGE_PATH.value()) / f"{key}.done"


def _state_key(settings: Settings, live: bool, fingerprint: str) -> str:
    sources = "|".join(
        (
            settings.exchangerate_api_base_url,
            settings.open_er_api_base_url,
            settings.restcountries_base_url,
            settings.datamuse_base_url,
            str(settings.warehouse_path.resolve()),
        )
    )
    mode = "live" if live else "offline"
    return "enrichment-" + hashlib.sha256(f"{fingerprint}|{mode}|{sources}".encode()).hexdigest()


def enrichment_cache_key(context: TaskRunContext | None, parameters: dict[str, Any]) -> str | None:
    """Cache only a run with nothing to look up, keyed by the enrichment state; never by a secret.

    Prefect 2 fails a cache hit whose result file is gone, so a key is offered only while the marker written
    beside the results by the last run is still there: wiping the result storage wipes the markers too.
    """
    settings: Settings = parameters["settings"]
    pending, fingerprint = steps.enrichment_state(settings)
    if any(pending.values()):
        return None
    key = _state_key(settings, parameters["live"], fingerprint)
    return key if _marker(key).exists() else None


@task(
    name="enrichment",
    cache_key_fn=enrichment_cache_key,
    cache_expiration=timedelta(hours=1),
    retries=2,
    retry_delay_seconds=[2, 10],
    persist_result=True,
    result_serializer="json",
)
def enrichment_layer(settings: Settings, live: bool) -> dict[str, Any]:
    """Fill the rate, country and product dimensions and the enriched view; returns the lookup counts."""
    stats = steps.enrich_silver(settings, live=live)
    pending, fingerprint = steps.enrichment_state(settings)
    if not any(pending.values()):
        marker = _marker(_state_key(settings, live, fingerprint))
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    get_run_logger().info(
        "enrichment (%s): %s",
        "live" if live else "offline",
        {source: stats[source] for source in ("rates", "countries", "products")},
    )
    return stats
