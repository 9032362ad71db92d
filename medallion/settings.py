"""Every setting of the service and its one loader: the environment first, then an optional `.env` file.

Each field's alias is the variable a user sets; the field's default is the only place that default lives.
`load_settings()` is called once per entry point (the CLI, a served flow run, the worker) and the result passed down.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


class DateOrder(StrEnum):
    MONTH_FIRST = "month_first"
    DAY_FIRST = "day_first"


class SettingsError(ValueError):
    """A setting has a value the service cannot use; the message names the variable."""


_SECTION_CONFIG = ConfigDict(frozen=True, populate_by_name=True, allow_inf_nan=False, extra="forbid")
_MEMORY = r"^\d+(\.\d+)?\s*(KB|MB|GB|KiB|MiB|GiB)$"


class PipelineSettings(BaseModel):
    """Where files and the warehouse live, how files are read, scored and summed into gold."""

    model_config = _SECTION_CONFIG

    raw_data_path: Path = Field(Path("./data/raw"), alias="RAW_DATA_PATH")
    processed_path: Path = Field(Path("./data/processed"), alias="PROCESSED_PATH")
    warehouse_path: Path = Field(Path("./data/warehouse.duckdb"), alias="WAREHOUSE_PATH")
    gold_export_path: Path = Field(Path("./data/gold"), alias="GOLD_EXPORT_PATH")
    staging_path: Path = Field(Path("./data/staging"), alias="STAGING_PATH")

    source_currency: str = Field("GBP", alias="SOURCE_CURRENCY", pattern=r"^[A-Z]{3}$")
    ambiguous_date_order: DateOrder = Field(DateOrder.MONTH_FIRST, alias="AMBIGUOUS_DATE_ORDER")
    large_file_bytes: int = Field(10 * 1024 * 1024, alias="LARGE_FILE_BYTES", gt=0)
    batch_rows: int = Field(250_000, alias="BATCH_ROWS", gt=0)
    # DuckDB spills to disk beyond it, which bounds a large file's memory (docs/scaling.md).
    duckdb_memory_limit: str = Field("1GB", alias="DUCKDB_MEMORY_LIMIT", pattern=_MEMORY)
    warehouse_lock_timeout_s: float = Field(120.0, alias="WAREHOUSE_LOCK_TIMEOUT", ge=0)
    # Silver rejects a row whose quantity or unit price is larger in absolute value; the caps keep every line
    # amount, and every sum of them in gold, finite whatever the settings.
    max_abs_quantity: int = Field(10_000_000, alias="MAX_ABS_QUANTITY", gt=0, le=10**12)
    max_abs_unit_price: float = Field(1_000_000.0, alias="MAX_ABS_UNIT_PRICE", gt=0, le=1e12)

    quality_alert_threshold: float = Field(85.0, alias="QUALITY_ALERT_THRESHOLD", ge=0, le=100)
    quality_weight_completeness: float = Field(0.3, alias="QUALITY_WEIGHT_COMPLETENESS", ge=0)
    quality_weight_validity: float = Field(0.3, alias="QUALITY_WEIGHT_VALIDITY", ge=0)
    quality_weight_uniqueness: float = Field(0.2, alias="QUALITY_WEIGHT_UNIQUENESS", ge=0)
    quality_weight_consistency: float = Field(0.2, alias="QUALITY_WEIGHT_CONSISTENCY", ge=0)

    vip_percentile: float = Field(0.8, alias="VIP_PERCENTILE", gt=0, lt=1)
    low_value_percentile: float = Field(0.2, alias="LOW_VALUE_PERCENTILE", gt=0, lt=1)
    top_n: int = Field(50, alias="GOLD_TOP_N", gt=0)

    @field_validator("warehouse_path")
    @classmethod
    def _warehouse_path_given(cls, value: Path) -> Path:
        if str(value) in ("", "."):
            raise ValueError("must name a file, not be empty")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> PipelineSettings:
        if self.low_value_percentile >= self.vip_percentile:
            raise ValueError("LOW_VALUE_PERCENTILE must be below VIP_PERCENTILE")
        if sum(self.quality_weights.values()) <= 0:
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


class EnrichmentSettings(BaseModel):
    """Base URLs, keys, time limits, retries, TTLs and request budgets of the enrichment sources."""

    model_config = _SECTION_CONFIG

    enabled: bool = Field(False, alias="ENABLE_EXTERNAL_ENRICHMENT")
    batch_size: int = Field(8, alias="ENRICHMENT_BATCH_SIZE", gt=0, le=256)
    currency_api_key: SecretStr | None = Field(None, alias="CURRENCY_API_KEY")
    countries_api_key: SecretStr | None = Field(None, alias="COUNTRIES_API_KEY")
    exchangerate_api_base_url: str = Field("https://v6.exchangerate-api.com", alias="EXCHANGERATE_API_BASE_URL")
    open_er_api_base_url: str = Field("https://open.er-api.com", alias="OPEN_ER_API_BASE_URL")
    restcountries_base_url: str = Field("https://api.restcountries.com", alias="RESTCOUNTRIES_BASE_URL")
    datamuse_base_url: str = Field("https://api.datamuse.com", alias="DATAMUSE_BASE_URL")
    http_timeout_s: float = Field(10.0, alias="ENRICHMENT_HTTP_TIMEOUT", gt=0)
    max_attempts: int = Field(4, alias="ENRICHMENT_MAX_ATTEMPTS", ge=1, le=10)
    backoff_initial_s: float = Field(1.0, alias="ENRICHMENT_BACKOFF_INITIAL", ge=0)
    backoff_max_s: float = Field(30.0, alias="ENRICHMENT_BACKOFF_MAX", ge=0)
    backoff_jitter_s: float = Field(1.0, alias="ENRICHMENT_BACKOFF_JITTER", ge=0)
    max_retry_after_s: float = Field(120.0, alias="ENRICHMENT_MAX_RETRY_AFTER", ge=0)
    requests_per_second: float = Field(5.0, alias="ENRICHMENT_REQUESTS_PER_SECOND", gt=0)
    breaker_failure_threshold: int = Field(5, alias="ENRICHMENT_BREAKER_FAILURES", ge=1)
    breaker_reset_s: float = Field(60.0, alias="ENRICHMENT_BREAKER_RESET", ge=0)
    currency_history_enabled: bool = Field(False, alias="CURRENCY_HISTORY_ENABLED")
    currency_requests_per_run: int = Field(100, alias="CURRENCY_REQUESTS_PER_RUN", ge=0)
    currency_requests_per_month: int = Field(1500, alias="CURRENCY_REQUESTS_PER_MONTH", ge=0)
    countries_requests_per_run: int = Field(100, alias="COUNTRIES_REQUESTS_PER_RUN", ge=0)
    countries_requests_per_month: int = Field(500, alias="COUNTRIES_REQUESTS_PER_MONTH", ge=0)
    datamuse_requests_per_run: int = Field(1000, alias="DATAMUSE_REQUESTS_PER_RUN", ge=0)
    latest_rates_ttl_s: int = Field(3600, alias="LATEST_RATES_TTL", ge=0)
    country_facts_ttl_s: int = Field(30 * 24 * 3600, alias="COUNTRY_FACTS_TTL", ge=0)
    related_terms_ttl_s: int = Field(30 * 24 * 3600, alias="RELATED_TERMS_TTL", ge=0)
    failed_lookup_retry_s: int = Field(3600, alias="FAILED_LOOKUP_RETRY", ge=0)

    @field_validator("currency_api_key", "countries_api_key", mode="before")
    @classmethod
    def _empty_key_is_none(cls, value: object) -> object:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        return None if value == "" else value

    def secrets(self) -> list[str]:
        """The secret values that must never appear in a URL, message, log line or table."""
        keys = (self.currency_api_key, self.countries_api_key)
        return [key.get_secret_value() for key in keys if key is not None]


class ServiceSettings(BaseModel):
    """The long-running service: the Prefect server it starts, the watcher, error retries and alerts."""

    model_config = _SECTION_CONFIG

    server_host: str = Field("127.0.0.1", alias="PREFECT_SERVER_API_HOST")
    server_port: int = Field(4200, alias="PREFECT_SERVER_API_PORT", gt=0, lt=65536)
    api_url: str | None = Field(None, alias="PREFECT_API_URL")
    prefect_home: Path = Field(Path("./.prefect"), alias="PREFECT_HOME")
    runner_poll_seconds: int = Field(1, alias="PREFECT_RUNNER_POLL_FREQUENCY", ge=1)
    runner_process_limit: int = Field(4, alias="PREFECT_RUNNER_PROCESS_LIMIT", ge=1)

    watch_stable_seconds: float = Field(0.3, alias="WATCH_STABLE_SECONDS", gt=0)
    empty_file_wait_seconds: float = Field(5.0, alias="WATCH_EMPTY_FILE_SECONDS", ge=0)
    error_retry_delay_s: float = Field(300.0, alias="ERROR_RETRY_DELAY", ge=0)
    error_max_retries: int = Field(3, alias="ERROR_MAX_RETRIES", ge=0)
    error_scan_seconds: float = Field(2.0, alias="ERROR_SCAN_INTERVAL", gt=0)

    warehouse_limit_name: str = Field("medallion-warehouse", alias="WAREHOUSE_CONCURRENCY_LIMIT")
    alert_webhook_url: SecretStr | None = Field(None, alias="ALERT_WEBHOOK_URL")
    seed_sample: bool = Field(True, alias="SEED_SAMPLE_ON_FIRST_START")
    sample_data_path: Path = Field(Path("./data/sample"), alias="SAMPLE_DATA_PATH")
    server_start_timeout_s: float = Field(90.0, alias="SERVER_START_TIMEOUT", gt=0)

    @field_validator("alert_webhook_url", "api_url", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("warehouse_limit_name")
    @classmethod
    def _limit_name_is_a_slug(cls, value: str) -> str:
        if not value or not all(c.isascii() and (c.isalnum() or c in "-_") for c in value):
            raise ValueError("must be letters, digits, dashes or underscores")
        return value

    @property
    def own_api_url(self) -> str:
        return f"http://{self.server_host}:{self.server_port}/api"

    @property
    def own_ui_url(self) -> str:
        return f"http://{self.server_host}:{self.server_port}"


_SECTIONS: dict[str, type[BaseModel]] = {
    "pipeline": PipelineSettings,
    "enrichment": EnrichmentSettings,
    "service": ServiceSettings,
}


class _VariablesSource(PydanticBaseSettingsSource):
    """Each section's variables, by their names, from the environment (case-insensitive) over the `.env` file."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        env_file = self.config.get("env_file")
        path = Path(env_file) if isinstance(env_file, str | Path) else None
        from_file = dotenv_values(path, encoding="utf-8") if path is not None and path.is_file() else {}
        variables = {name.upper(): value for name, value in from_file.items() if value is not None}
        variables.update({name.upper(): value for name, value in os.environ.items()})
        return {section: _section_values(model, variables) for section, model in _SECTIONS.items()}


def _section_values(model: type[BaseModel], variables: Mapping[str, object]) -> dict[str, object]:
    names = (info.alias for info in model.model_fields.values())
    return {name: variables[name] for name in names if name is not None and name in variables}


class Settings(BaseSettings):
    """The root: one section for the pipeline, one for enrichment, one for the service."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", frozen=True)

    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    enrichment: EnrichmentSettings = Field(default_factory=EnrichmentSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, _VariablesSource(settings_cls))


def load_settings(**overrides: object) -> Settings:
    """Build the settings; `overrides` are by variable name and win over the environment.

    A bad value or an unknown override raises SettingsError naming the variable, never a secret's value.
    """
    sections: dict[str, dict[str, object]] = {section: {} for section in _SECTIONS}
    for name, value in overrides.items():
        section = next((s for s, model in _SECTIONS.items() if name in _aliases(model)), None)
        if section is None:
            raise SettingsError(f"unknown setting {name}")
        sections[section][name] = value
    try:
        return Settings.model_validate({section: values for section, values in sections.items() if values})
    except ValidationError as error:
        raise SettingsError("invalid setting " + "; ".join(_problems(error))) from None


def _aliases(model: type[BaseModel]) -> set[str]:
    return {info.alias for info in model.model_fields.values() if info.alias}


def _problems(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors(include_input=False, include_url=False):
        location = [str(part) for part in item["loc"]]
        name = location[-1] if len(location) > 1 else "settings"
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{name}: {message}" if name != "settings" else message)
    return problems
