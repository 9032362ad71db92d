"""REST Countries v5: its response models, the client, and the live countries source with countryinfo behind it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from enrichment.countries import CountryRecord, OfflineCountries, continent_of, main_timezone
from enrichment.live import Answers, LiveContext
from enrichment.lookup import Found, Lookup, Origin
from enrichment.redaction import redact
from enrichment.resilience import (
    NotFoundError,
    PermanentSourceError,
    RetryableSourceError,
    SourceGuard,
    check_response,
)
from medallion.countries import country_key, standard_country
from medallion.settings import EnrichmentSettings

RESTCOUNTRIES_SOURCE = "restcountries_v5"


class RestCountriesName(BaseModel):
    common: str
    official: str | None = None


class RestCountriesObject(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: RestCountriesName
    cca2: str | None = None
    cca3: str | None = None
    capital: list[str] = Field(default_factory=list)
    region: str | None = None
    subregion: str | None = None
    continents: list[str] = Field(default_factory=list)
    population: int | None = None
    area: float | None = None
    timezones: list[str] = Field(default_factory=list)
    latlng: list[float] = Field(default_factory=list)


class RestCountriesData(BaseModel):
    objects: list[RestCountriesObject] = Field(default_factory=list)


class RestCountriesEnvelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    success: bool
    data: RestCountriesData | None = None
    errors: list[dict[str, Any]] = Field(default_factory=list)


@dataclass(frozen=True)
class CountryQuestion:
    """The facts of a country as silver writes it (`country`), asked by its standard name (`query`)."""

    country: str
    query: str

    @classmethod
    def about(cls, country: str) -> CountryQuestion | None:
        """What to ask for a country as written, or None for a name that is no country."""
        query, _ = standard_country(country)
        return cls(country, query) if query is not None else None


def parse_countries_response(
    response: httpx.Response, query: str, *, secrets: tuple[str, ...], now: datetime
) -> RestCountriesObject:
    """The one place where a REST Countries v5 body becomes a typed record or a SourceError."""
    source = RESTCOUNTRIES_SOURCE
    url = redact(str(response.request.url), secrets)
    body = _json_body(response, url)
    if isinstance(body, dict) and body.get("success") is False:
        messages = "; ".join(str(error.get("message", "")) for error in body.get("errors") or [])
        message = redact(messages or "request failed", secrets)
        if "deprecated" in message.casefold():
            raise PermanentSourceError(source, f"{message} (set RESTCOUNTRIES_BASE_URL to the v5 host)")
        if response.status_code < 400 or response.status_code in (401, 403):
            raise PermanentSourceError(source, f"{message} (HTTP {response.status_code}) from {url}")
    check_response(source, response, secrets=secrets, now=now)
    try:
        envelope = RestCountriesEnvelope.model_validate(body)
    except ValidationError as error:
        problem = redact(str(error).splitlines()[0], secrets)
        raise RetryableSourceError(source, f"unexpected body from {url}: {problem}") from None
    objects = envelope.data.objects if envelope.data else []
    if not objects:
        raise NotFoundError(source, f"no country matches {query!r}")
    return _best_match(objects, query)


def _json_body(response: httpx.Response, url: str) -> object:
    try:
        return response.json() if response.content else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        if response.status_code < 400:
            raise RetryableSourceError(
                RESTCOUNTRIES_SOURCE, f"malformed JSON from {url}", status=response.status_code
            ) from None
        return None


def _best_match(objects: list[RestCountriesObject], query: str) -> RestCountriesObject:
    """The object whose name or code is the query; else the API's first."""
    wanted = country_key(query)
    for candidate in objects:
        names = {candidate.name.common, candidate.name.official or "", candidate.cca2 or "", candidate.cca3 or ""}
        if wanted in {country_key(name) for name in names}:
            return candidate
    return objects[0]


def record_from_restcountries(country: str, found: RestCountriesObject) -> CountryRecord:
    lat, lng = (list(found.latlng) + [None, None])[:2]
    return CountryRecord(
        country=country,
        iso2=found.cca2,
        iso3=found.cca3,
        official_name=found.name.official or found.name.common,
        common_name=found.name.common,
        region=found.region,
        subregion=found.subregion,
        continent=found.continents[0] if found.continents else continent_of(found.region, found.subregion, lat),
        capital=found.capital[0] if found.capital else None,
        population=found.population,
        area=found.area,
        timezone=main_timezone(found.timezones, lng),
        lat=lat,
        lng=lng,
        source=RESTCOUNTRIES_SOURCE,
    )


class RestCountriesApi:
    """REST Countries v5 (`data.objects[]`, Bearer key); the only version still served."""

    name = "countries"
    source = RESTCOUNTRIES_SOURCE

    def __init__(self, settings: EnrichmentSettings) -> None:
        key = settings.countries_api_key
        self.api_key = key.get_secret_value() if key is not None else ""
        self.url = f"{settings.restcountries_base_url.rstrip('/')}/countries/v5"
        self.per_run = settings.countries_requests_per_run
        self.per_month = settings.countries_requests_per_month
        self.ttl = settings.country_facts_ttl_s

    def budget(self, used_this_month: int) -> int:
        return max(0, min(self.per_run, self.per_month - used_this_month))

    def cache_key(self, question: CountryQuestion) -> str:
        return question.query.casefold()

    def ttl_s(self, question: CountryQuestion) -> int | None:
        return self.ttl

    def encode(self, answer: CountryRecord) -> object:
        # Kept by the standard name, so the record is stored without the name silver wrote.
        return answer.model_dump(mode="json", exclude={"country"})

    def decode(self, payload: Any, question: CountryQuestion) -> CountryRecord:
        return CountryRecord.model_validate({**payload, "country": question.country})

    async def ask(self, http: httpx.AsyncClient, guard: SourceGuard, question: CountryQuestion) -> CountryRecord:
        headers = {"Authorization": f"Bearer {self.api_key}"}

        async def request() -> CountryRecord:
            response = await http.get(self.url, params={"q": question.query}, headers=headers)
            now = guard.clock.now()
            found = parse_countries_response(response, question.query, secrets=guard.secrets, now=now)
            return record_from_restcountries(question.country, found)

        return await guard.call(request)


class LiveCountries:
    """Live twin: REST Countries for every name that is a country; countryinfo for the rest and for failures."""

    def __init__(self, live: LiveContext, offline: OfflineCountries | None = None) -> None:
        self.live = live
        self.offline = offline or OfflineCountries()
        self.api = RestCountriesApi(live.settings)

    def lookup(self, keys: Sequence[str]) -> Lookup[CountryRecord]:
        questions = {country: CountryQuestion.about(country) for country in keys}
        answers = self.live.answers(self.api, [question for question in questions.values() if question is not None])
        return answers.lookup([self._found(country, questions[country], answers) for country in keys])

    def _found(
        self,
        country: str,
        question: CountryQuestion | None,
        answers: Answers[CountryQuestion, CountryRecord],
    ) -> Found[CountryRecord]:
        if question is None:
            return Found(self.offline.facts_of(country), Origin.OFFLINE)
        answer = answers.get(question)
        if answer is None:
            return Found(self.offline.facts_of(country), Origin.FALLBACK, self.live.retry_at)
        return Found(answer.value, answer.origin, self.live.expiry(self.api.ttl))
