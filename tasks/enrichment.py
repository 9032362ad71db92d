"""Prefect tasks over the enrichment builder; the DuckDB dimensions and cache stay the source of truth."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
from prefect import task
from prefect.context import TaskRunContext

from enrichment.dimensions import (
    build_enrichment,
    enrichment_fingerprint,
    pending_lookups,
    unmapped_countries,
)
from enrichment.settings import EnrichmentSettings


def _live(settings: EnrichmentSettings, live: bool | None) -> bool:
    return settings.enabled if live is None else live


def enrichment_cache_key(context: TaskRunContext | None, parameters: dict[str, Any]) -> str | None:
    """Cache only a run with nothing to look up, keyed by the enrichment state; never by a secret."""
    con: duckdb.DuckDBPyConnection = parameters["con"]
    settings = EnrichmentSettings.from_settings(parameters["settings"])
    if any(pending_lookups(con, datetime.now(UTC)).values()):
        return None
    sources = "|".join(
        (
            settings.exchangerate_api_base_url,
            settings.open_er_api_base_url,
            settings.restcountries_base_url,
            settings.datamuse_base_url,
        )
    )
    mode = "live" if _live(settings, parameters.get("live")) else "offline"
    digest = hashlib.sha256(f"{enrichment_fingerprint(con)}|{mode}|{sources}".encode()).hexdigest()
    return f"enrichment-{digest}"


@task(
    name="enrich-silver",
    cache_key_fn=enrichment_cache_key,
    cache_expiration=timedelta(hours=1),
    retries=2,
    retry_delay_seconds=[2, 10],
    persist_result=True,
    result_serializer="json",
)
def enrich_silver(con: duckdb.DuckDBPyConnection, settings: Any, live: bool | None = None) -> dict[str, Any]:
    """Fill the enrichment dimensions and the enriched view; returns the lookup counts for the metadata."""
    enrichment = EnrichmentSettings.from_settings(settings)
    stats = build_enrichment(con, enrichment, live=_live(enrichment, live))
    return stats.model_dump(mode="json")


@task(name="unmapped-countries", retries=1, retry_delay_seconds=2)
def report_unmapped_countries(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Countries of silver rows left without an ISO code, with row counts and reasons."""
    return [item.model_dump() for item in unmapped_countries(con)]
