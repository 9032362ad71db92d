"""Settings of the long-running service, read like `medallion.settings`: environment first, then `.env`."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from medallion.settings import SettingsError


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        populate_by_name=True,
    )

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


def load_service_settings(**overrides: object) -> ServiceSettings:
    """Build the service settings; a bad value raises SettingsError naming the variable, never a secret."""
    try:
        return ServiceSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        problems = []
        for item in error.errors():
            field = ".".join(str(part) for part in item["loc"]) or "settings"
            info = ServiceSettings.model_fields.get(field)
            name = info.alias if info is not None and info.alias else field.upper()
            problems.append(f"{name}: {item['msg']}")
        raise SettingsError("invalid setting " + "; ".join(problems)) from None
