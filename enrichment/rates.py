"""Exchange rates at the invoice date: the dimension's key and record, and the ECB offline twin."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from currency_converter import CurrencyConverter, RateNotFoundError
from pydantic import BaseModel, ConfigDict

from enrichment.lookup import Lookup, offline_lookup

TARGET_CURRENCIES: tuple[str, ...] = ("USD", "EUR", "CAD", "AUD", "JPY")
ECB_SOURCE = "ecb_offline"
_MAX_DAYS_BACK = 10


@dataclass(frozen=True)
class RateKey:
    """A currency silver holds amounts in, on one invoice date."""

    currency: str
    invoice_date: date


class RateRecord(BaseModel):
    """One row of enrichment.rates: multipliers from one currency on one invoice date, and where they came from."""

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


def rate_record(key: RateKey, rate_date: date | None, rates: dict[str, float], source: str) -> RateRecord:
    return RateRecord(
        currency=key.currency,
        invoice_date=key.invoice_date,
        rate_date=rate_date,
        usd=rates.get("USD"),
        eur=rates.get("EUR"),
        cad=rates.get("CAD"),
        aud=rates.get("AUD"),
        jpy=rates.get("JPY"),
        source=source,
    )


@lru_cache(maxsize=1)
def _ecb() -> CurrencyConverter:
    return CurrencyConverter(fallback_on_missing_rate=False, fallback_on_wrong_date=False)


class EcbRates:
    """Offline twin: the ECB daily reference rates shipped by `currencyconverter`."""

    def __init__(self, converter: CurrencyConverter | None = None) -> None:
        self.converter = converter or _ecb()

    def lookup(self, keys: Sequence[RateKey]) -> Lookup[RateRecord]:
        return offline_lookup([self.rates_for(key.currency, key.invoice_date) for key in keys])

    def has_rate_on(self, currency: str, day: date) -> bool:
        bounds = self.converter.bounds.get(currency)
        return bounds is not None and bounds.first_date <= day <= bounds.last_date

    def rates_for(self, currency: str, invoice_date: date) -> RateRecord:
        """Rates of the invoice date, or of the last ECB business day before it (recorded as rate_date)."""
        key = RateKey(currency.upper(), invoice_date)
        bounds = self.converter.bounds.get(key.currency)
        if bounds is None or invoice_date < bounds.first_date:
            return rate_record(key, None, {}, "unavailable")
        day = min(invoice_date, bounds.last_date)
        for _ in range(_MAX_DAYS_BACK):
            try:
                rates = {target: self._convert(key.currency, target, day) for target in TARGET_CURRENCIES}
            except RateNotFoundError:
                day -= timedelta(days=1)
                continue
            return rate_record(key, day, rates, ECB_SOURCE)
        return rate_record(key, None, {}, "unavailable")

    def _convert(self, currency: str, target: str, day: date) -> float:
        return 1.0 if target == currency else float(self.converter.convert(1.0, currency, target, date=day))
