"""Exchange rates at the invoice date: the ECB offline twin and the live ExchangeRate-API client."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Literal

import httpx
from currency_converter import CurrencyConverter, RateNotFoundError
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from enrichment.redaction import redact
from enrichment.resilience import (
    NotFoundError,
    PermanentSourceError,
    RequestRejectedError,
    RetryableSourceError,
    SourceGuard,
    check_response,
)

logger = logging.getLogger(__name__)

TARGET_CURRENCIES: tuple[str, ...] = ("USD", "EUR", "CAD", "AUD", "JPY")
ECB_SOURCE = "ecb_offline"
EXCHANGERATE_API_SOURCE = "exchangerate_api"
OPEN_ER_API_SOURCE = "open_er_api"
_MAX_DAYS_BACK = 10
_SOURCE_WIDE_ERRORS = {"invalid-key", "inactive-account", "quota-reached", "plan-upgrade-required"}


class RateRecord(BaseModel):
    """Multipliers from one source currency on one invoice date, and where they came from."""

    model_config = ConfigDict(frozen=True)

    currency: str
    invoice_date: date
    rate_date: date | None
    usd: float | None
    eur: float | None
    cad: float | None
    aud: float | None
    jpy: float | None
    source: str


class RatesResponse(BaseModel):
    """The success body of /latest and /history on both the keyed and the open endpoint."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    result: Literal["success"]
    base_code: str
    rates: dict[str, float] = Field(validation_alias=AliasChoices("conversion_rates", "rates"))
    time_last_update_unix: int | None = None
    year: int | None = None
    month: int | None = None
    day: int | None = None

    @property
    def rate_date(self) -> date:
        if self.year and self.month and self.day:
            return date(self.year, self.month, self.day)
        if self.time_last_update_unix is not None:
            return datetime.fromtimestamp(self.time_last_update_unix, UTC).date()
        raise ValueError("response carries no date")


class RatesQuote(BaseModel):
    """What the cache keeps of a live answer: the base, the date the rates are for, the five targets."""

    base: str
    rate_date: date
    rates: dict[str, float]
    source: str

    def record(self, currency: str, invoice_date: date, source: str | None = None) -> RateRecord:
        return RateRecord(
            currency=currency,
            invoice_date=invoice_date,
            rate_date=self.rate_date,
            usd=self.rates.get("USD"),
            eur=self.rates.get("EUR"),
            cad=self.rates.get("CAD"),
            aud=self.rates.get("AUD"),
            jpy=self.rates.get("JPY"),
            source=source or self.source,
        )


def parse_rates_response(
    source: str, response: httpx.Response, *, secrets: tuple[str, ...], now: datetime
) -> RatesQuote:
    """The one place where an ExchangeRate-API body becomes a typed quote or a SourceError."""
    url = redact(str(response.request.url), secrets)
    if response.status_code == 429 or response.status_code >= 500:
        check_response(source, response, secrets=secrets, now=now)
    body: object = None
    if response.content:
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            if response.status_code < 400:
                raise RetryableSourceError(source, f"malformed JSON from {url}", status=response.status_code) from None
    if isinstance(body, dict) and body.get("result") == "error":
        error_type = str(body.get("error-type", "unknown"))
        message = f"error-type {error_type} (HTTP {response.status_code}) from {url}"
        if error_type in _SOURCE_WIDE_ERRORS:
            raise PermanentSourceError(source, message, status=response.status_code)
        if error_type == "unsupported-code":
            raise NotFoundError(source, message, status=response.status_code)
        raise RequestRejectedError(source, message, status=response.status_code)
    if response.status_code == 403 and body is None:
        raise PermanentSourceError(
            source, f"HTTP 403 with no body from {url}; the key or the plan does not allow this", status=403
        )
    check_response(source, response, secrets=secrets, now=now)
    try:
        parsed = RatesResponse.model_validate(body)
        rate_date = parsed.rate_date
    except (ValidationError, ValueError) as error:
        problem = redact(str(error).splitlines()[0], secrets)
        raise RetryableSourceError(source, f"unexpected body from {url}: {problem}") from None
    base = parsed.base_code.upper()
    rates = {code: parsed.rates[code] for code in TARGET_CURRENCIES if code in parsed.rates}
    if base in TARGET_CURRENCIES:
        rates[base] = 1.0
    return RatesQuote(base=base, rate_date=rate_date, rates=rates, source=source)


@lru_cache(maxsize=1)
def _ecb() -> CurrencyConverter:
    return CurrencyConverter(fallback_on_missing_rate=False, fallback_on_wrong_date=False)


class EcbRates:
    """Offline twin: the ECB daily reference rates shipped by `currencyconverter`."""

    source = ECB_SOURCE

    def __init__(self, converter: CurrencyConverter | None = None) -> None:
        self.converter = converter or _ecb()

    def has_rate_on(self, currency: str, day: date) -> bool:
        bounds = self.converter.bounds.get(currency)
        return bounds is not None and bounds.first_date <= day <= bounds.last_date

    def rates_for(self, currency: str, invoice_date: date) -> RateRecord:
        """Rates of the invoice date, or of the last ECB business day before it (recorded as rate_date)."""
        currency = currency.upper()
        bounds = self.converter.bounds.get(currency)
        if bounds is None or invoice_date < bounds.first_date:
            return _no_rate(currency, invoice_date)
        day = min(invoice_date, bounds.last_date)
        for _ in range(_MAX_DAYS_BACK):
            try:
                converted = {
                    target: (1.0 if target == currency else self.converter.convert(1.0, currency, target, date=day))
                    for target in TARGET_CURRENCIES
                }
            except RateNotFoundError:
                day -= timedelta(days=1)
                continue
            return RateRecord(
                currency=currency,
                invoice_date=invoice_date,
                rate_date=day,
                usd=converted["USD"],
                eur=converted["EUR"],
                cad=converted["CAD"],
                aud=converted["AUD"],
                jpy=converted["JPY"],
                source=ECB_SOURCE,
            )
        return _no_rate(currency, invoice_date)


def _no_rate(currency: str, invoice_date: date) -> RateRecord:
    return RateRecord(
        currency=currency,
        invoice_date=invoice_date,
        rate_date=None,
        usd=None,
        eur=None,
        cad=None,
        aud=None,
        jpy=None,
        source="unavailable",
    )


class LiveRatesClient:
    """ExchangeRate-API v6: keyed when a key is set, else the keyless open endpoint (latest rates only)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        guard: SourceGuard,
        *,
        api_key: str | None,
        keyed_base_url: str,
        open_base_url: str,
    ) -> None:
        self.client = client
        self.guard = guard
        self.api_key = api_key
        self.keyed_base_url = keyed_base_url.rstrip("/")
        self.open_base_url = open_base_url.rstrip("/")

    @property
    def source(self) -> str:
        return EXCHANGERATE_API_SOURCE if self.api_key else OPEN_ER_API_SOURCE

    @property
    def supports_history(self) -> bool:
        return self.api_key is not None

    async def latest(self, currency: str) -> RatesQuote:
        if self.api_key:
            url = f"{self.keyed_base_url}/v6/{self.api_key}/latest/{currency.upper()}"
        else:
            url = f"{self.open_base_url}/v6/latest/{currency.upper()}"
        return await self._get(url)

    async def history(self, currency: str, day: date) -> RatesQuote:
        """Rates of a past date (paid plans only); the path has no leading zeros."""
        if not self.api_key:
            raise PermanentSourceError(self.source, "history needs CURRENCY_API_KEY")
        path = f"history/{currency.upper()}/{day.year}/{day.month}/{day.day}"
        url = f"{self.keyed_base_url}/v6/{self.api_key}/{path}"
        return await self._get(url)

    async def _get(self, url: str) -> RatesQuote:
        secrets = self.guard.secrets
        source = self.source

        async def request() -> RatesQuote:
            response = await self.client.get(url)
            return parse_rates_response(source, response, secrets=secrets, now=self.guard.clock.now())

        return await self.guard.call(request)
