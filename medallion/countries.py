"""The one table of country aliases: how files spell a country, and the standard name silver and enrichment use."""

from __future__ import annotations

# Keys are upper case with single spaces; silver matches `upper(trim(country))`, enrichment `country_key(name)`.
COUNTRY_ALIASES: dict[str, str] = {
    "EIRE": "Ireland",
    "REPUBLIC OF IRELAND": "Ireland",
    "RSA": "South Africa",
    "REPUBLIC OF SOUTH AFRICA": "South Africa",
    "USA": "United States",
    "U.S.A.": "United States",
    "US": "United States",
    "UNITED STATES OF AMERICA": "United States",
    "UK": "United Kingdom",
    "U.K.": "United Kingdom",
    "GREAT BRITAIN": "United Kingdom",
    "ENGLAND": "United Kingdom",
    "SCOTLAND": "United Kingdom",
    "WALES": "United Kingdom",
    "NORTHERN IRELAND": "United Kingdom",
    "CZECHIA": "Czech Republic",
    "UAE": "United Arab Emirates",
    "KOREA": "South Korea",
    "REPUBLIC OF KOREA": "South Korea",
    "HOLLAND": "Netherlands",
    "THE NETHERLANDS": "Netherlands",
    "RUSSIAN FEDERATION": "Russia",
    "HONG KONG SAR": "Hong Kong",
}

# Values files use for a country that name no single country, with the reason enrichment reports.
NOT_COUNTRIES: dict[str, str] = {
    "CHANNEL ISLANDS": "not one country: Jersey and Guernsey are separate Crown Dependencies",
    "EUROPEAN COMMUNITY": "not one country: a group of European states",
    "EUROPEAN UNION": "not one country: a group of European states",
    "WEST INDIES": "not one country: a Caribbean region of many states",
    "UNSPECIFIED": "no country given in the source file",
    "UNKNOWN": "no country given in the source file",
    "": "no country given in the source file",
}


def country_key(name: str) -> str:
    """The alias tables' key of a country as written: upper case, underscores as spaces, single spaces."""
    return " ".join(name.replace("_", " ").split()).upper()


def standard_country(name: str) -> tuple[str | None, str | None]:
    """The standard name of a country as written, or None and the reason it names no single country."""
    key = country_key(name)
    if key in NOT_COUNTRIES:
        return None, NOT_COUNTRIES[key]
    return COUNTRY_ALIASES.get(key, " ".join(name.split())), None
