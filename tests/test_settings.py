"""Settings come from the environment and `.env`; a bad value fails at start naming its variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from medallion.settings import DateOrder, SettingsError, load_settings


def test_defaults_use_the_names_users_of_the_older_system_know(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RAW_DATA_PATH", "WAREHOUSE_PATH", "QUALITY_ALERT_THRESHOLD", "ENABLE_EXTERNAL_ENRICHMENT"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.pipeline.raw_data_path == Path("data/raw")
    assert settings.pipeline.warehouse_path == Path("data/warehouse.duckdb")
    assert settings.pipeline.quality_alert_threshold == 85
    assert settings.enrichment.enabled is False
    assert settings.pipeline.ambiguous_date_order is DateOrder.MONTH_FIRST


@pytest.mark.parametrize("text", ["false", "False", "0", "no", "off"])
def test_enable_external_enrichment_false_means_false(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv("ENABLE_EXTERNAL_ENRICHMENT", text)
    assert load_settings().enrichment.enabled is False


def test_values_come_from_the_environment_and_a_dot_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("QUALITY_ALERT_THRESHOLD=70\nENRICHMENT_BATCH_SIZE=4\n")
    monkeypatch.setenv("ENRICHMENT_BATCH_SIZE", "16")
    settings = load_settings()
    assert settings.pipeline.quality_alert_threshold == 70
    assert settings.enrichment.batch_size == 16, "the environment wins over .env"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "QUALITY_ALERT_THRESHOLD",
            "high",
            "invalid setting QUALITY_ALERT_THRESHOLD: Input should be a valid number",
        ),
        (
            "QUALITY_ALERT_THRESHOLD",
            "120",
            "invalid setting QUALITY_ALERT_THRESHOLD: Input should be less than or equal to 100",
        ),
        (
            "ENABLE_EXTERNAL_ENRICHMENT",
            "maybe",
            "invalid setting ENABLE_EXTERNAL_ENRICHMENT: Input should be a valid boolean",
        ),
        (
            "ENRICHMENT_BATCH_SIZE",
            "0",
            "invalid setting ENRICHMENT_BATCH_SIZE: Input should be greater than 0",
        ),
        (
            "AMBIGUOUS_DATE_ORDER",
            "guess",
            "invalid setting AMBIGUOUS_DATE_ORDER: Input should be 'month_first' or 'day_first'",
        ),
    ],
)
def test_a_bad_value_names_its_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert str(raised.value).startswith(message)


def test_an_api_key_never_appears_in_the_settings_repr_or_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CURRENCY_API_KEY", "sk-live-secret-123")
    monkeypatch.setenv("QUALITY_ALERT_THRESHOLD", "bad")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert "sk-live-secret-123" not in str(raised.value)
    monkeypatch.delenv("QUALITY_ALERT_THRESHOLD")
    settings = load_settings()
    assert "sk-live-secret-123" not in repr(settings)
    assert settings.enrichment.currency_api_key is not None
    assert settings.enrichment.currency_api_key.get_secret_value() == "sk-live-secret-123"


def test_an_empty_key_is_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CURRENCY_API_KEY", "")
    assert load_settings().enrichment.currency_api_key is None


def test_a_misspelt_override_is_refused_not_ignored() -> None:
    with pytest.raises(SettingsError, match="unknown setting BATCH_ROW$"):
        load_settings(BATCH_ROW=5)
    assert load_settings(BATCH_ROWS=5).pipeline.batch_rows == 5


@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
def test_a_weight_that_is_not_a_finite_number_is_refused_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("QUALITY_WEIGHT_VALIDITY", value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert str(raised.value).startswith("invalid setting QUALITY_WEIGHT_VALIDITY: Input should be a finite number")
