"""Country facts: the dimension's record, the helpers both twins share, and the `countryinfo` offline twin."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from countryinfo import CountryInfo, CountryNotFoundError
from pydantic import BaseModel, ConfigDict

from enrichment.lookup import Lookup, offline_lookup
from medallion.countries import standard_country

COUNTRYINFO_SOURCE = "countryinfo_offline"
UNMAPPED_SOURCE = "unmapped"

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

    def lookup(self, keys: Sequence[str]) -> Lookup[CountryRecord]:
        return offline_lookup([self.facts_of(country) for country in keys])

    def facts_of(self, country: str) -> CountryRecord:
        """The facts of a country as written; a name that is no country, or one unknown, is unmapped with a reason."""
        query, reason = standard_country(country)
        if query is None:
            return unmapped(country, reason or "not a country")
        try:
            info: dict[str, Any] = dict(CountryInfo(query).info())
        except (CountryNotFoundError, KeyError, ValueError, AttributeError):
            return unmapped(country, f"no country called {query!r} in countryinfo")
        return _record_from_countryinfo(country, info)


def _record_from_countryinfo(country: str, info: dict[str, Any]) -> CountryRecord:
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
