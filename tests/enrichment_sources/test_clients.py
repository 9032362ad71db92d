from __future__ import annotations

import asyncio
import logging
from datetime import date
from typing import TypeVar

import httpx
import pytest
import respx

from enrichment.countries import CountryRecord, OfflineCountries
from enrichment.datamuse import DatamuseApi
from enrichment.exchangerate_api import ExchangeRateApi, RateQuestion, RatesQuote
from enrichment.live import LiveApi
from enrichment.rates import EcbRates
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
from enrichment.restcountries import CountryQuestion, RestCountriesApi

from .conftest import SECRET, FakeClock, api_fixture, fast_settings

Q = TypeVar("Q")
A = TypeVar("A")

KEYED = "https://v6.exchangerate-api.com"
OPEN = "https://open.er-api.com"
COUNTRIES = "https://api.restcountries.com"
DATAMUSE = "https://api.datamuse.com"


def guard(name: str, clock: FakeClock) -> SourceGuard:
    return SourceGuard(name, fast_settings(), clock, budget=50, secrets=(SECRET,))


def ask(api: LiveApi[Q, A], question: Q, asking: SourceGuard) -> A:
    """One question to a live API, in its own event loop, as a run asks it."""

    async def one() -> A:
        async with httpx.AsyncClient() as http:
            return await api.ask(http, asking, question)

    return asyncio.run(one())


def rates_api(key: str | None = SECRET) -> ExchangeRateApi:
    return ExchangeRateApi(fast_settings(currency_api_key=key))


def latest(clock: FakeClock, currency: str = "GBP", key: str | None = SECRET) -> tuple[RatesQuote, SourceGuard]:
    rates_guard = guard("rates", clock)
    return ask(rates_api(key), RateQuestion(currency), rates_guard), rates_guard


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
    quote, _ = latest(clock, key=None)
    assert route.call_count == 1
    assert quote.rate_date == date(2026, 3, 2)
    assert quote.rates["USD"] == pytest.approx(1.342952)
    assert quote.source == rates_api(None).source == "open_er_api"


@respx.mock
def test_keyed_endpoint_reads_conversion_rates(clock: FakeClock) -> None:
    route = respx.get(f"{KEYED}/v6/{SECRET}/latest/USD").respond(
        200, json=api_fixture("exchangerate-api_v6_latest_USD_2021-06-21.CAPTURED.json")
    )
    quote, _ = latest(clock, "USD")
    assert route.call_count == 1
    assert quote.rates["USD"] == 1.0
    assert set(quote.rates) == {"USD", "EUR", "CAD", "AUD", "JPY"}


@respx.mock
def test_history_path_has_no_leading_zeros(clock: FakeClock) -> None:
    route = respx.get(f"{KEYED}/v6/{SECRET}/history/USD/2024/3/15").respond(
        200, json=api_fixture("exchangerate-api_v6_history_USD_2024-3-15_THIRDPARTY_EXAMPLE_apis.io.json")
    )
    quote = ask(rates_api(), RateQuestion("USD", date(2024, 3, 15)), guard("rates", clock))
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
        latest(clock)
    assert route.call_count == 1
    assert clock.sleeps == []
    assert SECRET not in str(raised.value)
    assert raised.value.__cause__ is None
    assert "***" in str(raised.value) or isinstance(raised.value, PermanentSourceError)
    assert SECRET not in caplog.text


@respx.mock
def test_source_wide_error_opens_breaker_for_the_run(clock: FakeClock) -> None:
    route = respx.get(f"{KEYED}/v6/{SECRET}/latest/GBP").respond(401, json=ERRORS["invalid-key"]["body"])
    rates_guard = guard("rates", clock)
    with pytest.raises(PermanentSourceError):
        ask(rates_api(), RateQuestion("GBP"), rates_guard)
    with pytest.raises(CircuitOpenError):
        ask(rates_api(), RateQuestion("GBP"), rates_guard)
    assert route.call_count == 1
    assert rates_guard.breaker.state is BreakerState.OPEN


@respx.mock
def test_429_honours_retry_after(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    install_log_redaction([SECRET])
    caplog.set_level(logging.INFO)
    body = api_fixture("open_er-api_v6_latest_GBP_2026-03-02.CAPTURED.json")
    route = respx.get(f"{KEYED}/v6/{SECRET}/latest/GBP").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200, json=body)]
    )
    quote, rates_guard = latest(clock)
    assert route.call_count == 2
    assert clock.sleeps == [7.0]
    assert quote.rates["EUR"] == pytest.approx(1.140396)
    assert rates_guard.retries == 1
    assert "retrying" in caplog.text
    assert SECRET not in caplog.text


@respx.mock
def test_retry_after_beyond_the_cap_gives_up_at_once(clock: FakeClock) -> None:
    route = respx.get(f"{OPEN}/v6/latest/GBP").respond(429, headers={"Retry-After": "1200"})
    with pytest.raises(RetryableSourceError, match="more than"):
        latest(clock, key=None)
    assert route.call_count == 1
    assert clock.sleeps == []


@respx.mock
def test_500_then_success_backs_off_exponentially_with_jitter(clock: FakeClock) -> None:
    body = api_fixture("open_er-api_v6_latest_GBP_2026-03-02.CAPTURED.json")
    route = respx.get(f"{OPEN}/v6/latest/GBP").mock(
        side_effect=[httpx.Response(500), httpx.Response(503), httpx.Response(200, json=body)]
    )
    _, rates_guard = latest(clock, key=None)
    assert route.call_count == 3
    assert len(clock.sleeps) == 2
    assert 1.0 <= clock.sleeps[0] <= 1.5
    assert 2.0 <= clock.sleeps[1] <= 2.5
    assert rates_guard.breaker.failures == 0


@respx.mock
def test_timeouts_are_retried_then_reported(clock: FakeClock) -> None:
    route = respx.get(f"{KEYED}/v6/{SECRET}/latest/GBP").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(RetryableSourceError, match="timed out") as raised:
        latest(clock)
    assert route.call_count == 3
    assert len(clock.sleeps) == 2
    assert SECRET not in str(raised.value)


@respx.mock
def test_malformed_json_is_retried_within_bounds(clock: FakeClock) -> None:
    route = respx.get(f"{KEYED}/v6/{SECRET}/latest/GBP").respond(200, text="{not json")
    with pytest.raises(RetryableSourceError, match="malformed JSON") as raised:
        latest(clock)
    assert route.call_count == 3
    assert SECRET not in str(raised.value)
    assert "/v6/***/latest/GBP" in str(raised.value)


def country(clock: FakeClock, name: str) -> CountryRecord:
    question = CountryQuestion.about(name)
    assert question is not None
    return ask(RestCountriesApi(fast_settings(countries_api_key=SECRET)), question, guard("countries", clock))


@respx.mock
def test_restcountries_v5_success_sends_bearer_key(clock: FakeClock) -> None:
    route = respx.get(f"{COUNTRIES}/countries/v5", params={"q": "Ireland"}).respond(
        200, json=api_fixture("restcountries_v5_countries.DERIVED.json")
    )
    record = country(clock, "EIRE")
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
        country(clock, "Atlantis")
    with pytest.raises(NotFoundError):
        country(clock, "Nowhere")
    assert clock.sleeps == []


@respx.mock
def test_restcountries_deprecation_body_is_permanent(clock: FakeClock) -> None:
    route = respx.get(f"{COUNTRIES}/countries/v5").respond(
        200, json=api_fixture("restcountries_legacy_deprecated_2026_followed_body.CAPTURED.json")
    )
    with pytest.raises(PermanentSourceError, match="deprecated"):
        country(clock, "Germany")
    assert route.call_count == 1


def test_non_countries_are_never_asked_and_stay_unmapped_with_a_reason() -> None:
    assert CountryQuestion.about("Channel Islands") is None
    assert CountryQuestion.about("EIRE") == CountryQuestion("EIRE", "Ireland")
    offline = OfflineCountries()
    assert offline.facts_of("RSA").iso2 == "ZA"
    assert offline.facts_of("West Indies").unmapped_reason


def related_terms(clock: FakeClock, term: str) -> list[str]:
    return ask(DatamuseApi(fast_settings()), term, guard("products", clock))


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
    words = related_terms(clock, "success")
    assert words[:2] == expected
    assert route.calls[0].request.url.params["ml"] == "success"


@respx.mock
def test_datamuse_accepts_the_newer_results_type_tag(clock: FakeClock) -> None:
    body = api_fixture("datamuse_words_ml_bust_max5_newer_results_type_tag.CAPTURED.json")["bust"]["ml"]
    respx.get(f"{DATAMUSE}/words").respond(200, json=body)
    assert related_terms(clock, "bust")[0] == "binge"
