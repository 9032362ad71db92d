"""Settings of the enrichment sources, built from the service's one settings object."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

_ENV_DEFAULTS: dict[str, Any] = {
    "enable_external_enrichment": False,
    "enrichment_batch_size": 8,
    "currency_api_key": None,
    "countries_api_key": None,
    "exchangerate_api_base_url": "https://v6.exchangerate-api.com",
    "open_er_api_base_url": "https://open.er-api.com",
    "restcountries_base_url": "https://api.restcountries.com",
    "datamuse_base_url": "https://api.datamuse.com",
    "enrichment_http_timeout_s": 10.0,
    "enrichment_max_attempts": 4,
    "enrichment_requests_per_second": 5.0,
    "currency_history_enabled": False,
    "currency_requests_per_run": 100,
    "currency_requests_per_month": 1500,
    "countries_requests_per_run": 100,
    "countries_requests_per_month": 500,
    "datamuse_requests_per_run": 1000,
    "latest_rates_ttl_s": 3600,
    "country_facts_ttl_s": 30 * 24 * 3600,
    "related_terms_ttl_s": 30 * 24 * 3600,
}


class EnrichmentSettings(BaseModel):
    """Base URLs, keys, time limits, TTLs and request budgets of the enrichment sources."""

    model_config = ConfigDict(frozen=True)

    enabled: bool = False
    batch_size: int = Field(8, gt=0, le=256)
    currency_api_key: SecretStr | None = None
    countries_api_key: SecretStr | None = None
    exchangerate_api_base_url: str = _ENV_DEFAULTS["exchangerate_api_base_url"]
    open_er_api_base_url: str = _ENV_DEFAULTS["open_er_api_base_url"]
    restcountries_base_url: str = _ENV_DEFAULTS["restcountries_base_url"]
    datamuse_base_url: str = _ENV_DEFAULTS["datamuse_base_url"]
    http_timeout_s: float = Field(10.0, gt=0)
    max_attempts: int = Field(4, ge=1, le=10)
    backoff_initial_s: float = Field(1.0, ge=0)
    backoff_max_s: float = Field(30.0, ge=0)
    backoff_jitter_s: float = Field(1.0, ge=0)
    max_retry_after_s: float = Field(120.0, ge=0)
    requests_per_second: float = Field(5.0, gt=0)
    breaker_failure_threshold: int = Field(5, ge=1)
    breaker_reset_s: float = Field(60.0, ge=0)
    currency_history_enabled: bool = False
    currency_requests_per_run: int = Field(100, ge=0)
    currency_requests_per_month: int = Field(1500, ge=0)
    countries_requests_per_run: int = Field(100, ge=0)
    countries_requests_per_month: int = Field(500, ge=0)
    datamuse_requests_per_run: int = Field(1000, ge=0)
    latest_rates_ttl_s: int = Field(3600, ge=0)
    country_facts_ttl_s: int = Field(30 * 24 * 3600, ge=0)
    related_terms_ttl_s: int = Field(30 * 24 * 3600, ge=0)
    failed_lookup_retry_s: int = Field(3600, ge=0)

    @classmethod
    def from_settings(cls, settings: object) -> EnrichmentSettings:
        """Read the enrichment fields of `medallion.settings.Settings`, with defaults for those it lacks."""

        def read(name: str) -> Any:
            return getattr(settings, name, _ENV_DEFAULTS[name])

        return cls.model_validate(
            {
                "enabled": read("enable_external_enrichment"),
                "batch_size": read("enrichment_batch_size"),
                "currency_api_key": _secret(read("currency_api_key")),
                "countries_api_key": _secret(read("countries_api_key")),
                "exchangerate_api_base_url": read("exchangerate_api_base_url"),
                "open_er_api_base_url": read("open_er_api_base_url"),
                "restcountries_base_url": read("restcountries_base_url"),
                "datamuse_base_url": read("datamuse_base_url"),
                "http_timeout_s": read("enrichment_http_timeout_s"),
                "max_attempts": read("enrichment_max_attempts"),
                "requests_per_second": read("enrichment_requests_per_second"),
                "currency_history_enabled": read("currency_history_enabled"),
                "currency_requests_per_run": read("currency_requests_per_run"),
                "currency_requests_per_month": read("currency_requests_per_month"),
                "countries_requests_per_run": read("countries_requests_per_run"),
                "countries_requests_per_month": read("countries_requests_per_month"),
                "datamuse_requests_per_run": read("datamuse_requests_per_run"),
                "latest_rates_ttl_s": read("latest_rates_ttl_s"),
                "country_facts_ttl_s": read("country_facts_ttl_s"),
                "related_terms_ttl_s": read("related_terms_ttl_s"),
            }
        )

    def secrets(self) -> list[str]:
        """The secret values that must never appear in a URL, message, log line or table."""
        keys = (self.currency_api_key, self.countries_api_key)
        return [key.get_secret_value() for key in keys if key is not None and key.get_secret_value()]


def _secret(value: object) -> SecretStr | None:
    if value is None or value == "":
        return None
    if isinstance(value, SecretStr):
        return value if value.get_secret_value() else None
    return SecretStr(str(value))
