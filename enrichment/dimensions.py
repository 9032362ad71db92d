"""Enrichment dimensions built from the distinct keys of silver.transactions, and the enriched view."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

import duckdb
import httpx
import polars as pl
from pydantic import BaseModel, Field

from enrichment.cache import ApiCache, _naive_utc
from enrichment.countries import (
    RESTCOUNTRIES_SOURCE,
    CountryRecord,
    OfflineCountries,
    RestCountriesClient,
    canonical_country,
)
from enrichment.products import DATAMUSE_SOURCE, OTHER, DatamuseClient, categorise, categorise_with_related
from enrichment.rates import EcbRates, LiveRatesClient, RateRecord, RatesQuote
from enrichment.redaction import install_log_redaction
from enrichment.resilience import Clock, SourceError, SourceGuard, SystemClock
from enrichment.settings import EnrichmentSettings

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

DIMENSION_SQL = (
    "CREATE SCHEMA IF NOT EXISTS enrichment",
    """CREATE TABLE IF NOT EXISTS enrichment.rates (
        currency VARCHAR NOT NULL, invoice_date DATE NOT NULL, rate_date DATE,
        usd DOUBLE, eur DOUBLE, cad DOUBLE, aud DOUBLE, jpy DOUBLE,
        source VARCHAR NOT NULL, enriched_at TIMESTAMP NOT NULL, expires_at TIMESTAMP,
        PRIMARY KEY (currency, invoice_date))""",
    """CREATE TABLE IF NOT EXISTS enrichment.countries (
        country VARCHAR PRIMARY KEY, iso2 VARCHAR, iso3 VARCHAR, official_name VARCHAR, common_name VARCHAR,
        region VARCHAR, subregion VARCHAR, continent VARCHAR, capital VARCHAR, population BIGINT, area DOUBLE,
        timezone VARCHAR, lat DOUBLE, lng DOUBLE, source VARCHAR NOT NULL, unmapped_reason VARCHAR,
        enriched_at TIMESTAMP NOT NULL, expires_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS enrichment.products (
        stock_code VARCHAR, description VARCHAR, category VARCHAR NOT NULL, brand VARCHAR,
        is_seasonal BOOLEAN NOT NULL, complexity INTEGER NOT NULL, tags VARCHAR[] NOT NULL,
        source VARCHAR NOT NULL, enriched_at TIMESTAMP NOT NULL, expires_at TIMESTAMP)""",
)

ENRICHED_VIEW_SQL = """
CREATE OR REPLACE VIEW silver.transactions_enriched AS
SELECT
    t.*,
    t.line_amount * r.usd AS amount_usd,
    t.line_amount * r.eur AS amount_eur,
    t.line_amount * r.cad AS amount_cad,
    t.line_amount * r.aud AS amount_aud,
    t.line_amount * r.jpy AS amount_jpy,
    r.rate_date,
    r.source AS rate_source,
    c.iso2 AS country_iso2,
    c.iso3 AS country_iso3,
    c.region AS country_region,
    c.subregion AS country_subregion,
    c.continent AS country_continent,
    c.source AS country_source,
    p.category AS product_category,
    p.brand AS product_brand,
    p.is_seasonal AS product_is_seasonal,
    p.source AS product_source
FROM silver.transactions AS t
LEFT JOIN enrichment.rates AS r ON r.currency = t.currency AND r.invoice_date = t.invoice_date
LEFT JOIN enrichment.countries AS c ON c.country = t.country
LEFT JOIN enrichment.products AS p
    ON p.stock_code IS NOT DISTINCT FROM t.stock_code AND p.description IS NOT DISTINCT FROM t.description
"""

_RATE_COLUMNS = ("currency", "invoice_date", "rate_date", "usd", "eur", "cad", "aud", "jpy", "source")
_COUNTRY_COLUMNS = tuple(name for name in CountryRecord.model_fields)
_PRODUCT_COLUMNS = (
    "stock_code",
    "description",
    "category",
    "brand",
    "is_seasonal",
    "complexity",
    "tags",
    "source",
)


class SourceStats(BaseModel):
    """Lookups of one dimension this run, by where the answer came from."""

    live: int = 0
    cached: int = 0
    offline: int = 0
    failed: int = 0
    requests: int = 0
    retries: int = 0


class EnrichmentStats(BaseModel):
    """What a run of build_enrichment did; the run's metadata reports it."""

    live: bool
    rates: SourceStats = Field(default_factory=SourceStats)
    countries: SourceStats = Field(default_factory=SourceStats)
    products: SourceStats = Field(default_factory=SourceStats)
    distinct_keys: dict[str, int] = Field(default_factory=dict)
    looked_up: dict[str, int] = Field(default_factory=dict)
    breakers: dict[str, str] = Field(default_factory=dict)
    unmapped_countries: list[str] = Field(default_factory=list)
    duration_s: float = 0.0

    @property
    def total_lookups(self) -> int:
        return sum(stats.live + stats.cached + stats.offline for stats in (self.rates, self.countries, self.products))

    @property
    def live_requests(self) -> int:
        return self.rates.requests + self.countries.requests + self.products.requests


class UnmappedCountry(BaseModel):
    country: str
    rows: int
    reason: str | None


def ensure_dimension_tables(con: duckdb.DuckDBPyConnection) -> None:
    for statement in DIMENSION_SQL:
        con.execute(statement)


def _pending_rate_keys(con: duckdb.DuckDBPyConnection, now: datetime) -> list[tuple[str, date]]:
    return con.execute(
        """SELECT DISTINCT s.currency, s.invoice_date FROM silver.transactions AS s
           WHERE s.currency IS NOT NULL AND s.invoice_date IS NOT NULL AND NOT EXISTS (
               SELECT 1 FROM enrichment.rates AS r
               WHERE r.currency = s.currency AND r.invoice_date = s.invoice_date
               AND (r.expires_at IS NULL OR r.expires_at > ?))
           ORDER BY 1, 2""",
        [now],
    ).fetchall()


def _pending_countries(con: duckdb.DuckDBPyConnection, now: datetime) -> list[str]:
    rows = con.execute(
        """SELECT DISTINCT s.country FROM silver.transactions AS s
           WHERE s.country IS NOT NULL AND NOT EXISTS (
               SELECT 1 FROM enrichment.countries AS c WHERE c.country = s.country
               AND (c.expires_at IS NULL OR c.expires_at > ?))
           ORDER BY 1""",
        [now],
    ).fetchall()
    return [row[0] for row in rows]


def _pending_products(con: duckdb.DuckDBPyConnection, now: datetime) -> list[tuple[str | None, str | None]]:
    return con.execute(
        """SELECT DISTINCT s.stock_code, s.description FROM silver.transactions AS s
           WHERE NOT EXISTS (
               SELECT 1 FROM enrichment.products AS p
               WHERE p.stock_code IS NOT DISTINCT FROM s.stock_code
               AND p.description IS NOT DISTINCT FROM s.description
               AND (p.expires_at IS NULL OR p.expires_at > ?))
           ORDER BY 1, 2""",
        [now],
    ).fetchall()


def _distinct_key_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    row = con.execute(
        """SELECT
               (SELECT count(*) FROM (SELECT DISTINCT currency, invoice_date FROM silver.transactions
                                      WHERE currency IS NOT NULL AND invoice_date IS NOT NULL)),
               (SELECT count(DISTINCT country) FROM silver.transactions),
               (SELECT count(*) FROM (SELECT DISTINCT stock_code, description FROM silver.transactions))"""
    ).fetchone()
    assert row is not None
    return {"rates": int(row[0]), "countries": int(row[1]), "products": int(row[2])}


async def _gather_lookups(keys: list[K], fetch: Callable[[K], Awaitable[V]]) -> dict[K, V | SourceError]:
    async def one(key: K) -> tuple[K, V | SourceError]:
        try:
            return key, await fetch(key)
        except SourceError as error:
            return key, error

    pairs = await asyncio.gather(*(one(key) for key in keys))
    return dict(pairs)


def _run(coroutine_factory: Callable[[], Coroutine[Any, Any, V]]) -> V:
    """Run a coroutine to completion, also when the caller already runs an event loop in this thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine_factory())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(coroutine_factory())).result()


RateRequest = tuple[str, str, str | None]


@dataclass
class _LivePlan:
    rate_requests: list[RateRequest] = field(default_factory=list)
    countries: list[str] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)


@dataclass
class _LiveResults:
    rates: dict[RateRequest, RatesQuote | SourceError] = field(default_factory=dict)
    countries: dict[str, CountryRecord | SourceError] = field(default_factory=dict)
    terms: dict[str, list[str] | SourceError] = field(default_factory=dict)
    guards: dict[str, SourceGuard] = field(default_factory=dict)


def _run_budget(settings_limit: int, monthly_limit: int | None, used: int) -> int:
    if monthly_limit is None:
        return settings_limit
    return max(0, min(settings_limit, monthly_limit - used))


async def _live_lookups(
    plan: _LivePlan,
    settings: EnrichmentSettings,
    clock: Clock,
    transport: httpx.AsyncBaseTransport | None,
    budgets: dict[str, int],
) -> _LiveResults:
    secrets = tuple(settings.secrets())
    results = _LiveResults()
    timeout = httpx.Timeout(settings.http_timeout_s)
    async with httpx.AsyncClient(transport=transport, timeout=timeout, follow_redirects=True) as client:
        work: list[Awaitable[Any]] = []
        if plan.rate_requests:
            key = settings.currency_api_key.get_secret_value() if settings.currency_api_key else None
            guard = SourceGuard("rates", settings, clock, budget=budgets["rates"], secrets=secrets)
            rates_client = LiveRatesClient(
                client,
                guard,
                api_key=key,
                keyed_base_url=settings.exchangerate_api_base_url,
                open_base_url=settings.open_er_api_base_url,
            )
            results.guards["rates"] = guard

            async def fetch_rates(request: RateRequest) -> RatesQuote:
                _, currency, day = request
                if day is None:
                    return await rates_client.latest(currency)
                return await rates_client.history(currency, date.fromisoformat(day))

            work.append(_store(results.rates, _gather_lookups(plan.rate_requests, fetch_rates)))
        if plan.countries and settings.countries_api_key is not None:
            guard = SourceGuard("countries", settings, clock, budget=budgets["countries"], secrets=secrets)
            countries_client = RestCountriesClient(
                client,
                guard,
                api_key=settings.countries_api_key.get_secret_value(),
                base_url=settings.restcountries_base_url,
            )
            results.guards["countries"] = guard
            work.append(_store(results.countries, _gather_lookups(plan.countries, countries_client.lookup)))
        if plan.terms:
            guard = SourceGuard("products", settings, clock, budget=budgets["products"], secrets=secrets)
            datamuse = DatamuseClient(client, guard, base_url=settings.datamuse_base_url)
            results.guards["products"] = guard
            work.append(_store(results.terms, _gather_lookups(plan.terms, datamuse.related_terms)))
        await asyncio.gather(*work)
    return results


async def _store(target: dict[Any, Any], lookups: Awaitable[dict[Any, Any]]) -> None:
    target.update(await lookups)


def build_enrichment(
    con: duckdb.DuckDBPyConnection,
    settings: EnrichmentSettings,
    *,
    live: bool,
    clock: Clock | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> EnrichmentStats:
    """Fill the rate, country and product dimensions for the keys silver lacks; recreate the enriched view."""
    clock = clock or SystemClock()
    started = time.perf_counter()
    now = _naive_utc(clock.now())
    secrets = tuple(settings.secrets())
    if live:
        install_log_redaction(secrets)
    ensure_dimension_tables(con)
    cache = ApiCache(con, secrets)
    stats = EnrichmentStats(live=live, distinct_keys=_distinct_key_counts(con))

    rate_keys = _pending_rate_keys(con, now)
    country_keys = _pending_countries(con, now)
    product_keys = _pending_products(con, now)
    stats.looked_up = {"rates": len(rate_keys), "countries": len(country_keys), "products": len(product_keys)}

    ecb = EcbRates()
    offline_countries = OfflineCountries()
    products = {key: categorise(*key) for key in product_keys}

    plan = _LivePlan()
    cached_quotes: dict[RateRequest, RatesQuote] = {}
    cached_countries: dict[str, CountryRecord] = {}
    cached_terms: dict[str, list[str]] = {}
    rate_request_of: dict[tuple[str, date], RateRequest] = {}
    rates_source = ""
    if live:
        rates_source = "exchangerate_api" if settings.currency_api_key else "open_er_api"
        history = settings.currency_history_enabled and settings.currency_api_key is not None
        for currency, invoice_date in rate_keys:
            if ecb.has_rate_on(currency, invoice_date) and not history:
                continue
            past = ecb.has_rate_on(currency, invoice_date) or invoice_date < now.date()
            request: RateRequest = (
                (f"history:{currency}:{invoice_date.isoformat()}", currency, invoice_date.isoformat())
                if history and past
                else (f"latest:{currency}", currency, None)
            )
            rate_request_of[(currency, invoice_date)] = request
        for unique_request in dict.fromkeys(rate_request_of.values()):
            payload = cache.get(rates_source, unique_request[0], now)
            if payload is not None:
                cached_quotes[unique_request] = RatesQuote.model_validate(payload)
            else:
                plan.rate_requests.append(unique_request)
        if settings.countries_api_key is not None:
            for country in country_keys:
                query, _ = canonical_country(country)
                if query is None:
                    continue
                payload = cache.get(RESTCOUNTRIES_SOURCE, query.casefold(), now)
                if payload is not None:
                    cached_countries[country] = CountryRecord.model_validate({**payload, "country": country})
                else:
                    plan.countries.append(country)
        for term in dict.fromkeys(record.head_term for record in products.values() if record.head_term):
            assert term is not None
            payload = cache.get(DATAMUSE_SOURCE, term, now)
            if payload is not None:
                cached_terms[term] = list(payload)
            else:
                plan.terms.append(term)

    results = _LiveResults()
    if plan.rate_requests or plan.countries or plan.terms:
        budgets = {
            "rates": _run_budget(
                settings.currency_requests_per_run,
                settings.currency_requests_per_month if settings.currency_api_key else None,
                cache.requests_this_month(rates_source, now),
            ),
            "countries": _run_budget(
                settings.countries_requests_per_run,
                settings.countries_requests_per_month,
                cache.requests_this_month(RESTCOUNTRIES_SOURCE, now),
            ),
            "products": settings.datamuse_requests_per_run,
        }
        results = _run(lambda: _live_lookups(plan, settings, clock, transport, budgets))
        for name, guard in results.guards.items():
            getattr(stats, name).requests = guard.attempts
            getattr(stats, name).retries = guard.retries
            stats.breakers[name] = guard.breaker.state.value
        usage_source = {"rates": rates_source, "countries": RESTCOUNTRIES_SOURCE, "products": DATAMUSE_SOURCE}
        for name, guard in results.guards.items():
            cache.add_requests(usage_source[name], now, guard.attempts)

    retry_at = now + timedelta(seconds=settings.failed_lookup_retry_s)
    rate_rows: list[dict[str, Any]] = []
    for currency, invoice_date in rate_keys:
        pending_request = rate_request_of.get((currency, invoice_date))
        record: RateRecord | None = None
        expires: datetime | None = None
        if pending_request is not None:
            quote = cached_quotes.get(pending_request)
            fetched = results.rates.get(pending_request)
            if quote is not None:
                stats.rates.cached += 1
            elif isinstance(fetched, RatesQuote):
                quote = fetched
                stats.rates.live += 1
                cache.put(
                    rates_source,
                    pending_request[0],
                    quote.model_dump(mode="json"),
                    now,
                    None if pending_request[2] else settings.latest_rates_ttl_s,
                )
            else:
                stats.rates.failed += 1
                expires = retry_at
            if quote is not None:
                record = quote.record(currency, invoice_date)
                expires = None if pending_request[2] else now + timedelta(seconds=settings.latest_rates_ttl_s)
        if record is None:
            record = ecb.rates_for(currency, invoice_date)
            stats.rates.offline += 1
        rate_rows.append({**record.model_dump(), "enriched_at": now, "expires_at": expires})

    country_rows: list[dict[str, Any]] = []
    for country in country_keys:
        country_record: CountryRecord | None = cached_countries.get(country)
        expires = None
        if country_record is not None:
            stats.countries.cached += 1
            expires = now + timedelta(seconds=settings.country_facts_ttl_s)
        elif country in results.countries:
            fetched_country = results.countries[country]
            if isinstance(fetched_country, CountryRecord):
                country_record = fetched_country
                stats.countries.live += 1
                query, _ = canonical_country(country)
                assert query is not None
                cache.put(
                    RESTCOUNTRIES_SOURCE,
                    query.casefold(),
                    fetched_country.model_dump(mode="json", exclude={"country"}),
                    now,
                    settings.country_facts_ttl_s,
                )
                expires = now + timedelta(seconds=settings.country_facts_ttl_s)
            else:
                stats.countries.failed += 1
                expires = retry_at
        if country_record is None:
            country_record = offline_countries.lookup(country)
            stats.countries.offline += 1
        country_rows.append({**country_record.model_dump(), "enriched_at": now, "expires_at": expires})

    product_rows: list[dict[str, Any]] = []
    for term, fetched_terms in results.terms.items():
        if isinstance(fetched_terms, list):
            cache.put(DATAMUSE_SOURCE, term, fetched_terms, now, settings.related_terms_ttl_s)
    for product in products.values():
        expires = None
        if live and product.head_term and product.category == OTHER:
            related = cached_terms.get(product.head_term)
            fetched_related = results.terms.get(product.head_term)
            if related is not None:
                stats.products.cached += 1
                product = categorise_with_related(product, related)
            elif isinstance(fetched_related, list):
                stats.products.live += 1
                product = categorise_with_related(product, fetched_related)
            else:
                stats.products.failed += 1
                stats.products.offline += 1
                expires = retry_at
        else:
            stats.products.offline += 1
        product_rows.append({**product.model_dump(exclude={"head_term"}), "enriched_at": now, "expires_at": expires})

    _publish(con, rate_rows, country_rows, product_rows)
    stats.unmapped_countries = [item.country for item in unmapped_countries(con)]
    stats.duration_s = round(time.perf_counter() - started, 3)
    logger.info(
        "enrichment: %d rate, %d country, %d product keys looked up (live=%s)",
        len(rate_keys),
        len(country_keys),
        len(product_keys),
        live,
    )
    return stats


def _frame(rows: list[dict[str, Any]], columns: tuple[str, ...], schema: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            **{name: schema[name] for name in columns},
            "enriched_at": pl.Datetime("us"),
            "expires_at": pl.Datetime("us"),
        },
    )


_RATE_SCHEMA = {
    "currency": pl.String,
    "invoice_date": pl.Date,
    "rate_date": pl.Date,
    "usd": pl.Float64,
    "eur": pl.Float64,
    "cad": pl.Float64,
    "aud": pl.Float64,
    "jpy": pl.Float64,
    "source": pl.String,
}
_COUNTRY_SCHEMA = {
    "country": pl.String,
    "iso2": pl.String,
    "iso3": pl.String,
    "official_name": pl.String,
    "common_name": pl.String,
    "region": pl.String,
    "subregion": pl.String,
    "continent": pl.String,
    "capital": pl.String,
    "population": pl.Int64,
    "area": pl.Float64,
    "timezone": pl.String,
    "lat": pl.Float64,
    "lng": pl.Float64,
    "source": pl.String,
    "unmapped_reason": pl.String,
}
_PRODUCT_SCHEMA = {
    "stock_code": pl.String,
    "description": pl.String,
    "category": pl.String,
    "brand": pl.String,
    "is_seasonal": pl.Boolean,
    "complexity": pl.Int32,
    "tags": pl.List(pl.String),
    "source": pl.String,
}


def _publish(
    con: duckdb.DuckDBPyConnection,
    rate_rows: list[dict[str, Any]],
    country_rows: list[dict[str, Any]],
    product_rows: list[dict[str, Any]],
) -> None:
    """Upsert the three dimensions and recreate the view in one transaction."""
    new_rates = _frame(rate_rows, _RATE_COLUMNS, _RATE_SCHEMA)
    new_countries = _frame(country_rows, _COUNTRY_COLUMNS, _COUNTRY_SCHEMA)
    new_products = _frame(product_rows, _PRODUCT_COLUMNS, _PRODUCT_SCHEMA)
    con.begin()
    try:
        con.register("enrichment_new_rates", new_rates)
        con.register("enrichment_new_countries", new_countries)
        con.register("enrichment_new_products", new_products)
        con.execute("INSERT OR REPLACE INTO enrichment.rates SELECT * FROM enrichment_new_rates")
        con.execute("INSERT OR REPLACE INTO enrichment.countries SELECT * FROM enrichment_new_countries")
        con.execute(
            """DELETE FROM enrichment.products AS p USING enrichment_new_products AS n
               WHERE p.stock_code IS NOT DISTINCT FROM n.stock_code
               AND p.description IS NOT DISTINCT FROM n.description"""
        )
        con.execute("INSERT INTO enrichment.products SELECT * FROM enrichment_new_products")
        con.execute(ENRICHED_VIEW_SQL)
        con.commit()
    except Exception:
        con.rollback()
        raise
    finally:
        for name in ("enrichment_new_rates", "enrichment_new_countries", "enrichment_new_products"):
            con.unregister(name)


def unmapped_countries(con: duckdb.DuckDBPyConnection) -> list[UnmappedCountry]:
    """Countries of silver rows that have no ISO code, with their row counts and the reason."""
    ensure_dimension_tables(con)
    rows = con.execute(
        """SELECT s.country, count(*) AS rows, any_value(c.unmapped_reason)
           FROM silver.transactions AS s LEFT JOIN enrichment.countries AS c ON c.country = s.country
           WHERE s.country IS NOT NULL AND c.iso2 IS NULL
           GROUP BY s.country ORDER BY rows DESC, s.country"""
    ).fetchall()
    return [UnmappedCountry(country=row[0], rows=int(row[1]), reason=row[2]) for row in rows]


def pending_lookups(con: duckdb.DuckDBPyConnection, now: datetime) -> dict[str, int]:
    """How many keys of each dimension are missing or expired: all zero means a run would look nothing up."""
    ensure_dimension_tables(con)
    moment = _naive_utc(now)
    return {
        "rates": len(_pending_rate_keys(con, moment)),
        "countries": len(_pending_countries(con, moment)),
        "products": len(_pending_products(con, moment)),
    }


def enrichment_fingerprint(con: duckdb.DuckDBPyConnection) -> str:
    """A digest of silver's keys and the dimensions' contents: equal digests mean nothing to look up."""
    ensure_dimension_tables(con)
    row = con.execute(
        """SELECT
               (SELECT count(*) FROM silver.transactions),
               (SELECT max(invoice_date) FROM silver.transactions),
               (SELECT count(*) FROM (SELECT DISTINCT stock_code, description FROM silver.transactions)),
               (SELECT count(DISTINCT country) FROM silver.transactions),
               (SELECT count(*) FROM enrichment.rates), (SELECT max(enriched_at) FROM enrichment.rates),
               (SELECT min(expires_at) FROM enrichment.rates),
               (SELECT count(*) FROM enrichment.countries),
               (SELECT max(enriched_at) FROM enrichment.countries),
               (SELECT min(expires_at) FROM enrichment.countries),
               (SELECT count(*) FROM enrichment.products), (SELECT max(enriched_at) FROM enrichment.products),
               (SELECT min(expires_at) FROM enrichment.products),
               (SELECT count(*) FROM duckdb_views()
                WHERE schema_name = 'silver' AND view_name = 'transactions_enriched')"""
    ).fetchone()
    return hashlib.sha256(repr(row).encode()).hexdigest()
