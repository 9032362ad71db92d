"""The service's one settings object, read from the environment and an optional `.env` file."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class DateOrder(StrEnum):
    MONTH_FIRST = "month_first"
    DAY_FIRST = "day_first"


class SettingsError(ValueError):
    """A setting has a value the service cannot use; the message names the variable."""


# DuckDB spills to disk beyond it. 512MB read the 100x file in 29.2 s, this in 26.9 s (two runs each); the 100x data
# path then peaks at about 1.2 GB resident.
DEFAULT_DUCKDB_MEMORY_LIMIT = "1GB"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        populate_by_name=True,
    )

    raw_data_path: Path = Field(Path("./data/raw"), alias="RAW_DATA_PATH")
    processed_path: Path = Field(Path("./data/processed"), alias="PROCESSED_PATH")
    warehouse_path: Path = Field(Path("./data/warehouse.duckdb"), alias="WAREHOUSE_PATH")
    gold_export_path: Path = Field(Path("./data/gold"), alias="GOLD_EXPORT_PATH")
    staging_path: Path = Field(Path("./data/staging"), alias="STAGING_PATH")

    source_currency: str = Field("GBP", alias="SOURCE_CURRENCY", pattern=r"^[A-Z]{3}$")
    ambiguous_date_order: DateOrder = Field(DateOrder.MONTH_FIRST, alias="AMBIGUOUS_DATE_ORDER")
    large_file_bytes: int = Field(10 * 1024 * 1024, alias="LARGE_FILE_BYTES", gt=0)
    batch_rows: int = Field(250_000, alias="BATCH_ROWS", gt=0)
    duckdb_memory_limit: str = Field(
        DEFAULT_DUCKDB_MEMORY_LIMIT, alias="DUCKDB_MEMORY_LIMIT", pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|KiB|MiB|GiB)$"
    )
    warehouse_lock_timeout_s: float = Field(120.0, alias="WAREHOUSE_LOCK_TIMEOUT", ge=0)

    quality_alert_threshold: float = Field(85.0, alias="QUALITY_ALERT_THRESHOLD", ge=0, le=100)
    quality_weight_completeness: float = Field(0.3, alias="QUALITY_WEIGHT_COMPLETENESS", ge=0)
    quality_weight_validity: float = Field(0.3, alias="QUALITY_WEIGHT_VALIDITY", ge=0)
    quality_weight_uniqueness: float = Field(0.2, alias="QUALITY_WEIGHT_UNIQUENESS", ge=0)
    quality_weight_consistency: float = Field(0.2, alias="QUALITY_WEIGHT_CONSISTENCY", ge=0)

    vip_percentile: float = Field(0.8, alias="VIP_PERCENTILE", gt=0, lt=1)
    low_value_percentile: float = Field(0.2, alias="LOW_VALUE_PERCENTILE", gt=0, lt=1)
    top_n: int = Field(50, alias="GOLD_TOP_N", gt=0)

    enable_external_enrichment: bool = Field(False, alias="ENABLE_EXTERNAL_ENRICHMENT")
    enrichment_batch_size: int = Field(8, alias="ENRICHMENT_BATCH_SIZE", gt=0, le=256)
    currency_api_key: SecretStr | None = Field(None, alias="CURRENCY_API_KEY")
    countries_api_key: SecretStr | None = Field(None, alias="COUNTRIES_API_KEY")
    exchangerate_api_base_url: str = Field("https://v6.exchangerate-api.com", alias="EXCHANGERATE_API_BASE_URL")
    open_er_api_base_url: str = Field("https://open.er-api.com", alias="OPEN_ER_API_BASE_URL")
    restcountries_base_url: str = Field("https://api.restcountries.com", alias="RESTCOUNTRIES_BASE_URL")
    datamuse_base_url: str = Field("https://api.datamuse.com", alias="DATAMUSE_BASE_URL")
    enrichment_http_timeout_s: float = Field(10.0, alias="ENRICHMENT_HTTP_TIMEOUT", gt=0)
    enrichment_max_attempts: int = Field(4, alias="ENRICHMENT_MAX_ATTEMPTS", ge=1, le=10)
    enrichment_requests_per_second: float = Field(5.0, alias="ENRICHMENT_REQUESTS_PER_SECOND", gt=0)
    currency_history_enabled: bool = Field(False, alias="CURRENCY_HISTORY_ENABLED")
    currency_requests_per_run: int = Field(100, alias="CURRENCY_REQUESTS_PER_RUN", ge=0)
    currency_requests_per_month: int = Field(1500, alias="CURRENCY_REQUESTS_PER_MONTH", ge=0)
    countries_requests_per_run: int = Field(100, alias="COUNTRIES_REQUESTS_PER_RUN", ge=0)
    countries_requests_per_month: int = Field(500, alias="COUNTRIES_REQUESTS_PER_MONTH", ge=0)
    datamuse_requests_per_run: int = Field(1000, alias="DATAMUSE_REQUESTS_PER_RUN", ge=0)
    latest_rates_ttl_s: int = Field(3600, alias="LATEST_RATES_TTL", ge=0)
    country_facts_ttl_s: int = Field(30 * 24 * 3600, alias="COUNTRY_FACTS_TTL", ge=0)
    related_terms_ttl_s: int = Field(30 * 24 * 3600, alias="RELATED_TERMS_TTL", ge=0)

    @field_validator("currency_api_key", "countries_api_key", mode="before")
    @classmethod
    def _empty_key_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _percentiles_ordered(self) -> Settings:
        if self.low_value_percentile >= self.vip_percentile:
            raise ValueError("LOW_VALUE_PERCENTILE must be below VIP_PERCENTILE")
        weights = (
            self.quality_weight_completeness
            + self.quality_weight_validity
            + self.quality_weight_uniqueness
            + self.quality_weight_consistency
        )
        if weights <= 0:
            raise ValueError("the QUALITY_WEIGHT_* settings must not all be zero")
        return self

    @property
    def quality_weights(self) -> dict[str, float]:
        return {
            "completeness": self.quality_weight_completeness,
            "validity": self.quality_weight_validity,
            "uniqueness": self.quality_weight_uniqueness,
            "consistency": self.quality_weight_consistency,
        }


def load_settings(**overrides: object) -> Settings:
    """Build the settings once; a bad value raises SettingsError naming the variable, never its secret value."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        problems = []
        for item in error.errors():
            field = ".".join(str(part) for part in item["loc"]) or "settings"
            name = _alias_of(field)
            problems.append(f"{name}: {item['msg']}")
        raise SettingsError("invalid setting " + "; ".join(problems)) from None


def _alias_of(field: str) -> str:
    info = Settings.model_fields.get(field)
    if info is not None and info.alias:
        return info.alias
    return field.upper()
