from __future__ import annotations

import asyncio
import logging
from datetime import date

import httpx
import pytest
import respx

from enrichment.countries import OfflineCountries, RestCountriesClient
from enrichment.products import DatamuseClient
from enrichment.rates import EcbRates, LiveRatesClient, RatesQuote
from enrichment.redaction import install_log_redaction
from enrichment.resilience import (
    BreakerState,
    CircuitOpenError,
    NotFoundError,
    PermanentSourceError,
    RequestRejectedError,
    RetryableSourceError,
    SourceGuard,
)

from .conftest import SECRET, FakeClock, api_fixture, fast_settings

KEYED = "https://v6.exchangerate-api.com"
OPEN = "https://open.er-api.com"
COUNTRIES = "https://api.restcountries.com"
DATAMUSE = "https://api.datamuse.com"


def rates_client(client: httpx.AsyncClient, clock: FakeClock, *, key: str | None = SECRET) -> LiveRatesClient:
    guard = SourceGuard("rates", fast_settings(), clock, budget=50, secrets=(SECRET,))
    return LiveRatesClient(client, guard, api_key=key, keyed_base_url=KEYED, open_base_url=OPEN)


async def latest(
    clock: FakeClock, currency: str = "GBP", key: str | None = SECRET
) -> tuple[RatesQuote, LiveRatesClient]:
    async with httpx.AsyncClient() as client:
        live = rates_client(client, clock, key=key)
        return await live.latest(currency), live


def test_ecb_twin_uses_last_business_day_for_a_saturday() -> None:
    saturday = EcbRates().rates_for("GBP", date(2010, 12, 4))
    friday = EcbRates().rates_for("GBP", date(2010, 12, 3))
    assert saturday.rate_date == date(2010, 12, 3)
    assert saturday.usd == friday.usd
    assert saturday.source == "ecb_offline"
    assert EcbRates().rates_for("XXX", date(2010, 12, 3)).usd is None


@respx.mock
def test_open_endpoint_success_without_key(clock: FakeClock) -> None:
    route = respx.get(f"{OPEN}/v6/latest/GBP").respond(
        200, json=api_fixture("open_er-api_v6_latest_GBP_2026-03-02.CAPTURED.json")
    )
    quote, live = asyncio.run(latest(clock, key=None))
    assert route.call_count == 1
    assert quote.rate_date == date(2026, 3, 2)
    assert quote.rates["USD"] == pytest.approx(1.342952)
    assert live.source == "open_er_api"


@respx.mock
def test_keyed_endpoint_reads_conversion_rates(clock: FakeClock) -> None:
    route = respx.get(f"{KEYED}/v6/{SECRET}/latest/USD").respond(
        200, json=api_fixture("exchangerate-api_v6_latest_USD_2021-06-21.CAPTURED.json")
    )
    quote, _ = asyncio.run(latest(clock, "USD"))
    assert route.call_count == 1
    assert quote.rates["USD"] == 1.0
    assert set(quote.rates) == {"USD", "EUR", "CAD", "AUD", "JPY"}


@respx.mock
def test_history_path_has_no_leading_zeros(clock: FakeClock) -> None:
    route = respx.get(f"{KEYED}/v6/{SECRET}/history/USD/2024/3/15").respond(
        200, json=api_fixture("exchangerate-api_v6_history_USD_2024-3-15_THIRDPARTY_EXAMPLE_apis.io.json")
    )

    async def history() -> RatesQuote:
        async with httpx.AsyncClient() as client:
            return await rates_client(client, clock).history("USD", date(2024, 3, 15))

    quote = asyncio.run(history())
    assert route.call_count == 1
    assert quote.rate_date == date(2024, 3, 15)
    assert quote.rates["EUR"] == 0.917


ERRORS = api_fixture("exchangerate-api_v6_error_responses_FIXTURE.json")


@pytest.mark.parametrize(
    ("status", "body", "error_type"),
    [
        (401, ERRORS["invalid-key"]["body"], PermanentSourceError),  # JSON error with HTTP 4xx
        (200, ERRORS["quota-reached"]["body"], PermanentSourceError),  # JSON error with HTTP 200
        (403, None, PermanentSourceError),  # bare 403, no body
        (404, ERRORS["unsupported-code"]["body"], NotFoundError),  # a bad currency code is not source-wide
        (400, ERRORS["malformed-request"]["body"], RequestRejectedError),
    ],
)
@respx.mock
def test_exchangerate_errors_are_never_retried(
    clock: FakeClock, caplog: pytest.LogCaptureFixture, status: int, body: object, error_type: type[Exception]
) -> None:
    install_log_redaction([SECRET])
    caplog.set_level(logging.DEBUG)
    response = httpx.Response(status, json=body) if body is not None else httpx.Response(status)
    route = respx.get(f"{KEYED}/v6/{SECRET}/latest/GBP").mock(return_value=response)
    with pytest.raises(error_type) as raised:
        asyncio.run(latest(clock))
    assert route.call_count == 1
    assert clock.sleeps == []
    assert SECRET not in str(raised.value)
    assert raised.value.__cause__ is None
    assert "***" in str(raised.value) or isinstance(raised.value, PermanentSourceError)
    assert SECRET not in caplog.text


@respx.mock
def test_source_wide_error_opens_breaker_for_the_run(clock: FakeClock) -> None:
    route = respx.get(f"{KEYED}/v6/{SECRET}/latest/GBP").respond(401, json=ERRORS["invalid-key"]["body"])

    async def twice() -> LiveRatesClient:
        async with httpx.AsyncClient() as client:
            live = rates_client(client, clock)
            with pytest.raises(PermanentSourceError):
                await live.latest("GBP")
            with pytest.raises(CircuitOpenError):
                await live.latest("GBP")
            return live

    live = asyncio.run(twice())
    assert route.call_count == 1
    assert live.guard.breaker.state is BreakerState.OPEN


@respx.mock
def test_429_honours_retry_after(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    install_log_redaction([SECRET])
    caplog.set_level(logging.INFO)
    body = api_fixture("open_er-api_v6_latest_GBP_2026-03-02.CAPTURED.json")
    route = respx.get(f"{KEYED}/v6/{SECRET}/latest/GBP").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200, json=body)]
    )
    quote, live = asyncio.run(latest(clock))
    assert route.call_count == 2
    assert clock.sleeps == [7.0]
    assert quote.rates["EUR"] == pytest.approx(1.140396)
    assert live.guard.retries == 1
    assert "retrying" in caplog.text
    assert SECRET not in caplog.text


@respx.mock
def test_retry_after_beyond_the_cap_gives_up_at_once(clock: FakeClock) -> None:
    route = respx.get(f"{OPEN}/v6/latest/GBP").respond(429, headers={"Retry-After": "1200"})
    with pytest.raises(RetryableSourceError, match="more than"):
        asyncio.run(latest(clock, key=None))
    assert route.call_count == 1
    assert clock.sleeps == []


@respx.mock
def test_500_then_success_backs_off_exponentially_with_jitter(clock: FakeClock) -> None:
    body = api_fixture("open_er-api_v6_latest_GBP_2026-03-02.CAPTURED.json")
    route = respx.get(f"{OPEN}/v6/latest/GBP").mock(
        side_effect=[httpx.Response(500), httpx.Response(503), httpx.Response(200, json=body)]
    )
    _, live = asyncio.run(latest(clock, key=None))
    assert route.call_count == 3
    assert len(clock.sleeps) == 2
    assert 1.0 <= clock.sleeps[0] <= 1.5
    assert 2.0 <= clock.sleeps[1] <= 2.5
    assert live.guard.breaker.failures == 0


@respx.mock
def test_timeouts_are_retried_then_reported(clock: FakeClock) -> None:
    route = respx.get(f"{KEYED}/v6/{SECRET}/latest/GBP").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(RetryableSourceError, match="timed out") as raised:
        asyncio.run(latest(clock))
    assert route.call_count == 3
    assert len(clock.sleeps) == 2
    assert SECRET not in str(raised.value)


@respx.mock
def test_malformed_json_is_retried_within_bounds(clock: FakeClock) -> None:
    route = respx.get(f"{KEYED}/v6/{SECRET}/latest/GBP").respond(200, text="{not json")
    with pytest.raises(RetryableSourceError, match="malformed JSON") as raised:
        asyncio.run(latest(clock))
    assert route.call_count == 3
    assert SECRET not in str(raised.value)
    assert "/v6/***/latest/GBP" in str(raised.value)


def countries_client(client: httpx.AsyncClient, clock: FakeClock) -> RestCountriesClient:
    guard = SourceGuard("countries", fast_settings(), clock, budget=50, secrets=(SECRET,))
    return RestCountriesClient(client, guard, api_key=SECRET, base_url=COUNTRIES)


async def country(clock: FakeClock, name: str):  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient() as client:
        return await countries_client(client, clock).lookup(name)


@respx.mock
def test_restcountries_v5_success_sends_bearer_key(clock: FakeClock) -> None:
    route = respx.get(f"{COUNTRIES}/countries/v5", params={"q": "Ireland"}).respond(
        200, json=api_fixture("restcountries_v5_countries.DERIVED.json")
    )
    record = asyncio.run(country(clock, "EIRE"))
    assert route.call_count == 1
    assert route.calls[0].request.headers["Authorization"] == f"Bearer {SECRET}"
    assert (record.country, record.iso2, record.iso3, record.continent) == ("EIRE", "IE", "IRL", "Europe")
    assert record.source == "restcountries_v5"


@respx.mock
def test_restcountries_empty_objects_and_404_are_not_found(clock: FakeClock) -> None:
    respx.get(f"{COUNTRIES}/countries/v5", params={"q": "Atlantis"}).respond(
        200, json={"success": True, "data": {"objects": []}, "errors": []}
    )
    respx.get(f"{COUNTRIES}/countries/v5", params={"q": "Nowhere"}).respond(
        404, json=api_fixture("restcountries_v3.1_error_404.json")
    )
    with pytest.raises(NotFoundError):
        asyncio.run(country(clock, "Atlantis"))
    with pytest.raises(NotFoundError):
        asyncio.run(country(clock, "Nowhere"))
    assert clock.sleeps == []


@respx.mock
def test_restcountries_deprecation_body_is_permanent(clock: FakeClock) -> None:
    route = respx.get(f"{COUNTRIES}/countries/v5").respond(
        200, json=api_fixture("restcountries_legacy_deprecated_2026_followed_body.CAPTURED.json")
    )
    with pytest.raises(PermanentSourceError, match="deprecated"):
        asyncio.run(country(clock, "Germany"))
    assert route.call_count == 1


def test_non_countries_stay_unmapped_with_a_reason_and_no_call(clock: FakeClock) -> None:
    with respx.mock(assert_all_called=False) as router:
        route = router.get(f"{COUNTRIES}/countries/v5")
        record = asyncio.run(country(clock, "Channel Islands"))
    assert route.call_count == 0
    assert record.iso2 is None and record.unmapped_reason
    offline = OfflineCountries()
    assert offline.lookup("RSA").iso2 == "ZA"
    assert offline.lookup("West Indies").unmapped_reason


def datamuse(client: httpx.AsyncClient, clock: FakeClock) -> DatamuseClient:
    return DatamuseClient(client, SourceGuard("products", fast_settings(), clock, budget=50), base_url=DATAMUSE)


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("datamuse_words_ml_success_max10.CAPTURED.json", ["achiever", "winner"]),
        ("datamuse_words_no_results_empty_array.json", []),
    ],
)
@respx.mock
def test_datamuse_related_terms(clock: FakeClock, fixture: str, expected: list[str]) -> None:
    route = respx.get(f"{DATAMUSE}/words").respond(200, json=api_fixture(fixture))

    async def terms() -> list[str]:
        async with httpx.AsyncClient() as client:
            return await datamuse(client, clock).related_terms("success")

    words = asyncio.run(terms())
    assert words[:2] == expected
    assert route.calls[0].request.url.params["ml"] == "success"


@respx.mock
def test_datamuse_accepts_the_newer_results_type_tag(clock: FakeClock) -> None:
    body = api_fixture("datamuse_words_ml_bust_max5_newer_results_type_tag.CAPTURED.json")["bust"]["ml"]
    respx.get(f"{DATAMUSE}/words").respond(200, json=body)

    async def terms() -> list[str]:
        async with httpx.AsyncClient() as client:
            return await datamuse(client, clock).related_terms("bust")

    assert asyncio.run(terms())[0] == "binge"
