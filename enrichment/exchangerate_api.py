"""ExchangeRate-API v6: its response models, the client, and the live rates source with the ECB twin behind it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

import httpx
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from enrichment.live import Answers, LiveContext
from enrichment.lookup import Found, Lookup, Origin
from enrichment.rates import TARGET_CURRENCIES, EcbRates, RateKey, RateRecord, rate_record
from enrichment.redaction import redact
from enrichment.resilience import (
    NotFoundError,
    PermanentSourceError,
    RequestRejectedError,
    RetryableSourceError,
    SourceGuard,
    check_response,
)
from medallion.settings import EnrichmentSettings

EXCHANGERATE_API_SOURCE = "exchangerate_api"
OPEN_ER_API_SOURCE = "open_er_api"
_SOURCE_WIDE_ERRORS = {"invalid-key", "inactive-account", "quota-reached", "plan-upgrade-required"}


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


@dataclass(frozen=True)
class RateQuestion:
    """The rates of one currency: of a past day (`/history`), or the latest ones when `day` is None."""

    currency: str
    day: date | None = None


def parse_rates_response(
    source: str, response: httpx.Response, *, secrets: tuple[str, ...], now: datetime
) -> RatesQuote:
    """The one place where an ExchangeRate-API body becomes a typed quote or a SourceError."""
    url = redact(str(response.request.url), secrets)
    if response.status_code == 429 or response.status_code >= 500:
        check_response(source, response, secrets=secrets, now=now)
    body = _json_body(source, response, url)
    if isinstance(body, dict) and body.get("result") == "error":
        _raise_error_type(source, body, response.status_code, url)
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


def _json_body(source: str, response: httpx.Response, url: str) -> object:
    if not response.content:
        return None
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        if response.status_code < 400:
            raise RetryableSourceError(source, f"malformed JSON from {url}", status=response.status_code) from None
        return None


def _raise_error_type(source: str, body: dict[str, Any], status: int, url: str) -> None:
    error_type = str(body.get("error-type", "unknown"))
    message = f"error-type {error_type} (HTTP {status}) from {url}"
    if error_type in _SOURCE_WIDE_ERRORS:
        raise PermanentSourceError(source, message, status=status)
    if error_type == "unsupported-code":
        raise NotFoundError(source, message, status=status)
    raise RequestRejectedError(source, message, status=status)


class ExchangeRateApi:
    """ExchangeRate-API v6: keyed when CURRENCY_API_KEY is set, else the keyless open endpoint (latest rates only)."""

    name = "rates"

    def __init__(self, settings: EnrichmentSettings) -> None:
        key = settings.currency_api_key
        self.api_key = key.get_secret_value() if key is not None else None
        self.keyed_base_url = settings.exchangerate_api_base_url.rstrip("/")
        self.open_base_url = settings.open_er_api_base_url.rstrip("/")
        self.source = EXCHANGERATE_API_SOURCE if self.api_key else OPEN_ER_API_SOURCE
        self.per_run = settings.currency_requests_per_run
        # The keyless endpoint has no monthly quota.
        self.per_month = settings.currency_requests_per_month if self.api_key else None
        self.latest_ttl_s = settings.latest_rates_ttl_s

    def budget(self, used_this_month: int) -> int:
        if self.per_month is None:
            return self.per_run
        return max(0, min(self.per_run, self.per_month - used_this_month))

    def cache_key(self, question: RateQuestion) -> str:
        if question.day is None:
            return f"latest:{question.currency}"
        return f"history:{question.currency}:{question.day.isoformat()}"

    def ttl_s(self, question: RateQuestion) -> int | None:
        # The rates of a past day never change.
        return None if question.day is not None else self.latest_ttl_s

    def encode(self, answer: RatesQuote) -> object:
        return answer.model_dump(mode="json")

    def decode(self, payload: Any, question: RateQuestion) -> RatesQuote:
        return RatesQuote.model_validate(payload)

    def url(self, question: RateQuestion) -> str:
        """The request's URL; a past day's path has no leading zeros."""
        currency = question.currency.upper()
        if question.day is None:
            if self.api_key:
                return f"{self.keyed_base_url}/v6/{self.api_key}/latest/{currency}"
            return f"{self.open_base_url}/v6/latest/{currency}"
        if not self.api_key:
            raise PermanentSourceError(self.source, "history needs CURRENCY_API_KEY")
        day = question.day
        return f"{self.keyed_base_url}/v6/{self.api_key}/history/{currency}/{day.year}/{day.month}/{day.day}"

    async def ask(self, http: httpx.AsyncClient, guard: SourceGuard, question: RateQuestion) -> RatesQuote:
        url = self.url(question)

        async def request() -> RatesQuote:
            response = await http.get(url)
            return parse_rates_response(self.source, response, secrets=guard.secrets, now=guard.clock.now())

        return await guard.call(request)


class LiveRates:
    """Live twin: ExchangeRate-API for dates the ECB data does not cover (for every date with history enabled)."""

    def __init__(self, live: LiveContext, offline: EcbRates | None = None) -> None:
        self.live = live
        self.offline = offline or EcbRates()
        self.api = ExchangeRateApi(live.settings)
        self.history = live.settings.currency_history_enabled and self.api.api_key is not None

    def lookup(self, keys: Sequence[RateKey]) -> Lookup[RateRecord]:
        questions = {key: self._question(key) for key in keys}
        answers = self.live.answers(self.api, [question for question in questions.values() if question is not None])
        return answers.lookup([self._found(key, questions[key], answers) for key in keys])

    def _question(self, key: RateKey) -> RateQuestion | None:
        """What to ask for a key, or None when the ECB twin answers it."""
        covered = self.offline.has_rate_on(key.currency, key.invoice_date)
        if covered and not self.history:
            return None
        past = covered or key.invoice_date < self.live.now.date()
        return RateQuestion(key.currency, key.invoice_date if self.history and past else None)

    def _found(
        self, key: RateKey, question: RateQuestion | None, answers: Answers[RateQuestion, RatesQuote]
    ) -> Found[RateRecord]:
        if question is None:
            return Found(self.offline.rates_for(key.currency, key.invoice_date), Origin.OFFLINE)
        answer = answers.get(question)
        if answer is None:
            return Found(self.offline.rates_for(key.currency, key.invoice_date), Origin.FALLBACK, self.live.retry_at)
        quote = answer.value
        expires = None if question.day is not None else self.live.expiry(self.api.latest_ttl_s)
        return Found(rate_record(key, quote.rate_date, quote.rates, quote.source), answer.origin, expires)
