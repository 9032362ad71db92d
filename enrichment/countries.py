"""Country facts: the `countryinfo` offline twin, the alias table files need, the REST Countries v5 client."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
from countryinfo import CountryInfo
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from enrichment.redaction import redact
from enrichment.resilience import (
    NotFoundError,
    PermanentSourceError,
    RetryableSourceError,
    SourceGuard,
    check_response,
)

COUNTRYINFO_SOURCE = "countryinfo_offline"
RESTCOUNTRIES_SOURCE = "restcountries_v5"
UNMAPPED_SOURCE = "unmapped"

COUNTRY_ALIASES: dict[str, str] = {
    "eire": "Ireland",
    "republic of ireland": "Ireland",
    "rsa": "South Africa",
    "republic of south africa": "South Africa",
    "usa": "United States",
    "us": "United States",
    "united states of america": "United States",
    "uk": "United Kingdom",
    "great britain": "United Kingdom",
    "england": "United Kingdom",
    "scotland": "United Kingdom",
    "wales": "United Kingdom",
    "northern ireland": "United Kingdom",
    "czechia": "Czech Republic",
    "uae": "United Arab Emirates",
    "korea": "South Korea",
    "republic of korea": "South Korea",
    "holland": "Netherlands",
    "the netherlands": "Netherlands",
    "russian federation": "Russia",
    "hong kong sar": "Hong Kong",
}

NOT_COUNTRIES: dict[str, str] = {
    "channel islands": "not one country: Jersey and Guernsey are separate Crown Dependencies",
    "european community": "not one country: a group of European states",
    "european union": "not one country: a group of European states",
    "west indies": "not one country: a Caribbean region of many states",
    "unspecified": "no country given in the source file",
    "unknown": "no country given in the source file",
    "": "no country given in the source file",
}

_CONTINENT_OF_REGION = {
    "Europe": "Europe",
    "Asia": "Asia",
    "Africa": "Africa",
    "Oceania": "Oceania",
    "Antarctic": "Antarctica",
    "Polar": "Antarctica",
}
_NORTH_AMERICAN_SUBREGIONS = {"Northern America", "North America", "Central America", "Caribbean"}
_OFFICIAL_WORDS = re.compile(
    r"\b(Republic|Kingdom|Federation|Commonwealth|State|States|Principality|"
    r"Confederation|Emirates|Union|Sultanate|Grand Duchy|Democratic)\b|\bof\b"
)


class CountryRecord(BaseModel):
    """One row of enrichment.countries: the facts of a country name as it appears in silver."""

    model_config = ConfigDict(frozen=True)

    country: str
    iso2: str | None = None
    iso3: str | None = None
    official_name: str | None = None
    common_name: str | None = None
    region: str | None = None
    subregion: str | None = None
    continent: str | None = None
    capital: str | None = None
    population: int | None = None
    area: float | None = None
    timezone: str | None = None
    lat: float | None = None
    lng: float | None = None
    source: str
    unmapped_reason: str | None = None

    def for_country(self, country: str) -> CountryRecord:
        return self.model_copy(update={"country": country})


def _key(name: str) -> str:
    return " ".join(name.replace("_", " ").split()).casefold()


def canonical_country(name: str) -> tuple[str | None, str | None]:
    """Map a country as written in a file to the name to look up, or to the reason it is not a country."""
    key = _key(name)
    if key in NOT_COUNTRIES:
        return None, NOT_COUNTRIES[key]
    return COUNTRY_ALIASES.get(key, " ".join(name.split())), None


def unmapped(country: str, reason: str) -> CountryRecord:
    return CountryRecord(country=country, source=UNMAPPED_SOURCE, unmapped_reason=reason)


def _ascii_offset(zone: str) -> str:
    return zone.replace("\u2212", "-").strip()


def _offset_hours(zone: str) -> float | None:
    match = re.fullmatch(r"UTC(?:([+-])(\d{1,2})(?::?(\d{2}))?)?", _ascii_offset(zone))
    if match is None:
        return None
    if match.group(1) is None:
        return 0.0
    hours = int(match.group(2)) + int(match.group(3) or 0) / 60
    return hours if match.group(1) == "+" else -hours


def main_timezone(zones: list[str], lng: float | None) -> str | None:
    """The UTC offset nearest the country's centre: lists include every overseas territory's zone."""
    cleaned = [_ascii_offset(zone) for zone in zones if zone]
    if not cleaned:
        return None
    if lng is None or len(cleaned) == 1:
        return cleaned[0]
    solar = lng / 15.0
    timed = [(zone, _offset_hours(zone)) for zone in cleaned]
    known = [(zone, hours) for zone, hours in timed if hours is not None]
    if not known:
        return cleaned[0]
    return min(known, key=lambda item: abs(item[1] - solar))[0]


def continent_of(region: str | None, subregion: str | None, lat: float | None) -> str | None:
    if not region:
        return None
    if region == "Americas":
        if subregion in _NORTH_AMERICAN_SUBREGIONS:
            return "North America"
        if subregion == "South America":
            return "South America"
        return "South America" if lat is not None and lat < 9 else "North America"
    return _CONTINENT_OF_REGION.get(region, region)


class OfflineCountries:
    """Offline twin: country facts from the `countryinfo` package."""

    source = COUNTRYINFO_SOURCE

    def lookup(self, country: str) -> CountryRecord:
        query, reason = canonical_country(country)
        if query is None:
            return unmapped(country, reason or "not a country")
        try:
            info: dict[str, Any] = dict(CountryInfo(query).info())
        except (KeyError, ValueError, AttributeError):
            return unmapped(country, f"no country called {query!r} in countryinfo")
        iso = info.get("ISO") or {}
        latlng = info.get("latlng") or [None, None]
        lat, lng = (latlng + [None, None])[:2]
        name = info.get("name")
        capital = info.get("capital")
        return CountryRecord(
            country=country,
            iso2=iso.get("alpha2"),
            iso3=iso.get("alpha3"),
            official_name=_official_name(name, info.get("altSpellings") or []),
            common_name=name,
            region=info.get("region") or None,
            subregion=info.get("subregion") or None,
            continent=continent_of(info.get("region"), info.get("subregion"), lat),
            capital=capital if isinstance(capital, str) and capital else None,
            population=info.get("population"),
            area=info.get("area"),
            timezone=main_timezone(info.get("timezones") or [], lng),
            lat=lat,
            lng=lng,
            source=COUNTRYINFO_SOURCE,
        )


def _official_name(name: str | None, spellings: list[str]) -> str | None:
    for spelling in spellings:
        if spelling.isascii() and len(spelling) > len(name or "") and _OFFICIAL_WORDS.search(spelling):
            return spelling
    return name


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


def parse_countries_response(
    response: httpx.Response, query: str, *, secrets: tuple[str, ...], now: Any
) -> RestCountriesObject:
    """The one place where a REST Countries v5 body becomes a typed record or a SourceError."""
    source = RESTCOUNTRIES_SOURCE
    url = redact(str(response.request.url), secrets)
    try:
        body = response.json() if response.content else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
        if response.status_code < 400:
            raise RetryableSourceError(source, f"malformed JSON from {url}", status=response.status_code) from None
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
    wanted = _key(query)
    for candidate in objects:
        names = {
            _key(candidate.name.common),
            _key(candidate.name.official or ""),
            _key(candidate.cca2 or ""),
            _key(candidate.cca3 or ""),
        }
        if wanted in names:
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


class RestCountriesClient:
    """REST Countries v5 (`data.objects[]`, Bearer key); the only version still served."""

    source = RESTCOUNTRIES_SOURCE

    def __init__(self, client: httpx.AsyncClient, guard: SourceGuard, *, api_key: str, base_url: str) -> None:
        self.client = client
        self.guard = guard
        self.api_key = api_key
        self.url = f"{base_url.rstrip('/')}/countries/v5"

    async def lookup(self, country: str) -> CountryRecord:
        query, reason = canonical_country(country)
        if query is None:
            return unmapped(country, reason or "not a country")
        headers = {"Authorization": f"Bearer {self.api_key}"}

        async def request() -> CountryRecord:
            response = await self.client.get(self.url, params={"q": query}, headers=headers)
            found = parse_countries_response(response, query, secrets=self.guard.secrets, now=self.guard.clock.now())
            return record_from_restcountries(country, found)

        return await self.guard.call(request)
