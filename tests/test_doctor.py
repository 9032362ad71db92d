"""`medallion doctor`'s checks against real warehouses, a real Prefect server, and the APIs' real answers."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
import respx
from pydantic import SecretStr
from test_readers import held_warehouse

from deployments import control
from deployments.server import prefect_environment, start_server, stop_process
from enrichment.cache import ApiCache
from medallion.doctor import (
    Check,
    doctor_exit_code,
    doctor_text,
    enrichment_checks,
    health_checks,
    invalid_settings_check,
    prefect_checks,
    warehouse_checks,
)
from medallion.settings import ServiceSettings, Settings, SettingsError, load_settings
from medallion.warehouse import Warehouse
from medallion.warehouse.schema import MIGRATIONS

API_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "api"
NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
RATES_KEY = "rates-secret-4f9a"
COUNTRIES_KEY = "countries-secret-77c1"
KEYED = "https://v6.exchangerate-api.com"
OPEN = "https://open.er-api.com"
COUNTRIES = "https://api.restcountries.com/countries/v5"
DATAMUSE = "https://api.datamuse.com/words"


def api_fixture(name: str) -> Any:
    return json.loads((API_FIXTURES / name).read_text(encoding="utf-8"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in checks}


@pytest.fixture
def live_settings(warehouse_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Every source live, both keys set; the Prefect API on a port nothing listens on."""
    monkeypatch.setenv("PREFECT_SERVER_API_PORT", str(free_port()))
    return load_settings(ENABLE_EXTERNAL_ENRICHMENT=True, CURRENCY_API_KEY=RATES_KEY, COUNTRIES_API_KEY=COUNTRIES_KEY)


@pytest.fixture
def router() -> respx.Router:
    return respx.Router(assert_all_called=False)


def through(router: respx.Router) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(router.handler), timeout=3.0)


def answer_every_source(router: respx.Router) -> dict[str, respx.Route]:
    """Each source's success, as the real APIs send it; the routes by source."""
    return {
        "rates": router.get(f"{KEYED}/v6/{RATES_KEY}/latest/GBP").respond(
            200, json=api_fixture("exchangerate-api_v6_latest_USD_2021-06-21.CAPTURED.json")
        ),
        "countries": router.get(COUNTRIES).respond(200, json=api_fixture("restcountries_v5_countries.DERIVED.json")),
        "products": router.get(DATAMUSE).respond(
            200, json=api_fixture("datamuse_words_ml_success_max10.CAPTURED.json")
        ),
    }


def spend_requests(settings: Settings, source: str, count: int) -> None:
    """Requests this month as the enrichment cache records them."""
    with Warehouse(settings.pipeline) as warehouse, warehouse.connection() as connection:
        ApiCache(connection).add_requests(source, NOW, count)


# The whole answer


def test_health_checks_with_every_source_live(live_settings: Settings, router: respx.Router) -> None:
    spend_requests(live_settings, "exchangerate_api", 10)
    routes = answer_every_source(router)
    router.get(f"{live_settings.service.own_api_url}/health").respond(503)
    checks = health_checks(live_settings, transport=httpx.MockTransport(router.handler), now=NOW)
    found = by_name(checks)
    assert [check.name for check in checks] == [
        "settings", "warehouse", "schema", "prefect api", "rates", "countries", "products"
    ]  # fmt: skip
    assert found["rates"].detail == (
        "live (ExchangeRate-API): reachable, key accepted; 1,490 of 1,500 requests left this month"
    )
    assert found["countries"].detail == (
        "live (REST Countries v5): reachable, key accepted; 500 of 500 requests left this month"
    )
    assert found["products"].detail == "live (Datamuse): reachable; no monthly quota"
    assert not found["prefect api"].ok and "HTTP 503" in found["prefect api"].detail
    # Only the service's own server failed to answer, which `medallion run` does without.
    assert doctor_exit_code(checks) == 0
    text = doctor_text(checks)
    assert RATES_KEY not in text and COUNTRIES_KEY not in text
    assert text.splitlines()[-1] == "everything runs need works"
    # The countries probe sends its key as the API wants it, in the header only.
    sent = routes["countries"].calls.last.request
    assert sent.headers["Authorization"] == f"Bearer {COUNTRIES_KEY}" and COUNTRIES_KEY not in str(sent.url)


def test_health_checks_with_enrichment_off_say_which_twin_answers(settings: Settings, router: respx.Router) -> None:
    checks = enrichment_checks(settings, through(router), {}, NOW)
    assert [(check.name, check.ok, check.needed_by_runs) for check in checks] == [
        ("rates", True, False),
        ("countries", True, False),
        ("products", True, False),
    ]
    assert all(check.detail.startswith("offline: ENABLE_EXTERNAL_ENRICHMENT is off") for check in checks)
    assert len(router.calls) == 0


# Enrichment sources


def test_refused_keys_are_reported_without_the_key(live_settings: Settings, router: respx.Router) -> None:
    errors = api_fixture("exchangerate-api_v6_error_responses_FIXTURE.json")
    router.get(f"{KEYED}/v6/{RATES_KEY}/latest/GBP").respond(401, json=errors["invalid-key"]["body"])
    # REST Countries v5 refuses a bad bearer token with a bare 401.
    router.get(COUNTRIES).respond(401)
    router.get(DATAMUSE).respond(200, json=api_fixture("datamuse_words_no_results_empty_array.json"))
    found = by_name(enrichment_checks(live_settings, through(router), {}, NOW))
    for name in ("rates", "countries"):
        assert not found[name].ok and not found[name].needed_by_runs
        assert found[name].detail.startswith(f"live ({'ExchangeRate-API' if name == 'rates' else 'REST Countries v5'})")
        assert "key refused" in found[name].detail
    assert "invalid-key" in found["rates"].detail
    text = doctor_text(list(found.values()))
    assert RATES_KEY not in text and COUNTRIES_KEY not in text and "***" in found["rates"].detail
    assert found["products"].ok  # an empty answer is still an answer


def test_a_used_up_month_is_a_warning(live_settings: Settings, router: respx.Router) -> None:
    answer_every_source(router)
    usage = {"exchangerate_api": 1600, "restcountries_v5": 499}
    found = by_name(enrichment_checks(live_settings, through(router), usage, NOW))
    assert not found["rates"].ok and found["rates"].detail.endswith("0 of 1,500 requests left this month")
    assert found["countries"].ok and found["countries"].detail.endswith("1 of 500 requests left this month")
    assert doctor_exit_code(list(found.values())) == 0


def test_quota_reached_is_named(live_settings: Settings, router: respx.Router) -> None:
    answer_every_source(router)
    errors = api_fixture("exchangerate-api_v6_error_responses_FIXTURE.json")
    router.get(f"{KEYED}/v6/{RATES_KEY}/latest/GBP").respond(403, json=errors["quota-reached"]["body"])
    rates = by_name(enrichment_checks(live_settings, through(router), {}, NOW))["rates"]
    assert not rates.ok and "quota used up" in rates.detail and RATES_KEY not in rates.detail


def test_unreachable_and_failing_sources(live_settings: Settings, router: respx.Router) -> None:
    router.get(f"{KEYED}/v6/{RATES_KEY}/latest/GBP").mock(side_effect=httpx.ConnectTimeout("timed out"))
    router.get(COUNTRIES).mock(side_effect=httpx.ConnectError("[Errno 111] Connection refused"))
    router.get(DATAMUSE).respond(503)
    found = by_name(enrichment_checks(live_settings, through(router), None, NOW))
    assert found["rates"].detail.startswith("live (ExchangeRate-API): unreachable: no reply within 3 s")
    assert "unreachable: ConnectError: [Errno 111] Connection refused" in found["countries"].detail
    assert "reachable but failing" in found["products"].detail and "HTTP 503" in found["products"].detail
    # Without the warehouse the month's usage is unknown; the budget is still given.
    assert "requests left this month unknown" in found["rates"].detail
    assert not any(check.ok for check in found.values())


def test_keyless_rates_and_countries_without_a_key(warehouse_env: dict[str, str], router: respx.Router) -> None:
    settings = load_settings(ENABLE_EXTERNAL_ENRICHMENT=True)
    router.get(f"{OPEN}/v6/latest/GBP").respond(
        200, json=api_fixture("open_er-api_v6_latest_GBP_2026-03-02.CAPTURED.json")
    )
    router.get(DATAMUSE).respond(200, json=api_fixture("datamuse_words_ml_success_max10.CAPTURED.json"))
    found = by_name(enrichment_checks(settings, through(router), {}, NOW))
    assert found["rates"].detail == "live (open ER-API, keyless): reachable; no monthly quota"
    assert found["countries"].ok and found["countries"].detail.startswith("offline: no COUNTRIES_API_KEY")
    assert list(found) == ["rates", "countries", "products"]


def test_a_retired_restcountries_version_is_refused(warehouse_env: dict[str, str], router: respx.Router) -> None:
    settings = load_settings(
        ENABLE_EXTERNAL_ENRICHMENT=True, COUNTRIES_API_KEY=COUNTRIES_KEY, RESTCOUNTRIES_BASE_URL="https://old.test"
    )
    answer_every_source(router)
    router.get(f"{OPEN}/v6/latest/GBP").respond(
        200, json=api_fixture("open_er-api_v6_latest_GBP_2026-03-02.CAPTURED.json")
    )
    router.get("https://old.test/countries/v5").respond(
        200, json=api_fixture("restcountries_legacy_deprecated_2026_followed_body.CAPTURED.json")
    )
    countries = by_name(enrichment_checks(settings, through(router), {}, NOW))["countries"]
    assert not countries.ok and "deprecated" in countries.detail and "RESTCOUNTRIES_BASE_URL" in countries.detail


# The warehouse


def test_no_warehouse_yet_is_fine(settings: Settings) -> None:
    checks, usage = warehouse_checks(settings.pipeline, NOW)
    assert [(check.name, check.ok) for check in checks] == [("warehouse", True)]
    assert "the first run creates it" in checks[0].detail and usage == {}


def test_an_open_warehouse_gives_its_schema_and_usage(settings: Settings) -> None:
    spend_requests(settings, "restcountries_v5", 7)
    checks, usage = warehouse_checks(settings.pipeline, NOW)
    assert [(check.name, check.ok, check.detail) for check in checks] == [
        ("warehouse", True, f"{settings.pipeline.warehouse_path} opens read-only"),
        ("schema", True, f"version {MIGRATIONS[-1].version} (current)"),
    ]
    assert usage == {"restcountries_v5": 7}
    # Last month's requests are not this month's.
    assert warehouse_checks(settings.pipeline, datetime(2026, 4, 1, tzinfo=UTC))[1] == {}


def test_a_held_warehouse_names_its_holder(settings: Settings) -> None:
    spend_requests(settings, "exchangerate_api", 1)
    with held_warehouse(settings.pipeline.warehouse_path) as holder:
        checks, usage = warehouse_checks(settings.pipeline, NOW)
    (check,) = checks
    # A run waits for it, so nothing is broken; the user learns who holds it.
    assert check.ok and f"is busy, held by process {holder.pid} (" in check.detail
    assert "-c import duckdb" in check.detail and "WAREHOUSE_LOCK_TIMEOUT" in check.detail
    assert usage is None


@pytest.mark.parametrize(
    ("version", "ok", "words"),
    [
        (MIGRATIONS[-1].version - 1, True, f"the next run migrates it to {MIGRATIONS[-1].version}"),
        (MIGRATIONS[-1].version + 1, False, "newer than this code knows"),
    ],
)
def test_schema_version_other_than_current(settings: Settings, version: int, ok: bool, words: str) -> None:
    path = settings.pipeline.warehouse_path
    with duckdb.connect(str(path)) as connection:
        connection.execute("CREATE SCHEMA ops")
        connection.execute("CREATE TABLE ops.schema_version (version INTEGER, name VARCHAR, applied_at TIMESTAMP)")
        connection.execute("INSERT INTO ops.schema_version VALUES (?, 'test', now())", [version])
    schema = by_name(warehouse_checks(settings.pipeline, NOW)[0])["schema"]
    assert schema.ok is ok and words in schema.detail and schema.needed_by_runs


def test_a_warehouse_that_does_not_open_fails_the_doctor(warehouse_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "a-directory").mkdir()
    settings = load_settings(WAREHOUSE_PATH=str(tmp_path / "a-directory"))
    checks, usage = warehouse_checks(settings.pipeline, NOW)
    (check,) = checks
    assert not check.ok and check.needed_by_runs and "does not open" in check.detail and usage is None
    assert doctor_exit_code(checks) == 1


# Prefect


def test_an_unreachable_prefect_api_is_a_failed_check(warehouse_env: dict[str, str]) -> None:
    port = free_port()
    own = load_settings(PREFECT_SERVER_API_PORT=port).service
    configured = load_settings(PREFECT_API_URL=f"http://127.0.0.1:{port}/api").service
    with httpx.Client(timeout=2.0) as http:
        (own_check,) = prefect_checks(own, http, 2.0)
        (configured_check,) = prefect_checks(configured, http, 2.0)
    for check in (own_check, configured_check):
        assert check.name == "prefect api" and not check.ok
        assert f"no answer at http://127.0.0.1:{port}/api" in check.detail and "Connection refused" in check.detail
    # The service's own server is not needed by `medallion run`; an API the user configured is.
    assert not own_check.needed_by_runs and "`medallion up` starts it" in own_check.detail
    assert configured_check.needed_by_runs and doctor_exit_code([configured_check]) == 1


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceSettings]:
    """A real Prefect server, started as `medallion up` starts it, with events on for automations."""
    home = tmp_path_factory.mktemp("prefect-home")
    service = load_settings(PREFECT_SERVER_API_PORT=free_port(), PREFECT_HOME=str(home)).service
    environment = {**os.environ, **prefect_environment(service, service.own_api_url), "PREFECT_UI_ENABLED": "false"}
    process: subprocess.Popen[bytes] = start_server(service, environment)
    try:
        yield service
    finally:
        stop_process(process, "Prefect server", grace_s=10)


def set_up_as_the_service_does(service: ServiceSettings) -> None:
    import prefect.settings

    async def set_up() -> None:
        updates: dict[prefect.settings.Setting[Any], object] = {
            prefect.settings.PREFECT_API_URL: service.own_api_url,
            prefect.settings.PREFECT_EXPERIMENTAL_EVENTS: True,
        }
        with prefect.settings.temporary_settings(updates=updates):
            await control.ensure_warehouse_limit(service)
            await control.configure_quality_alert(service)

    asyncio.run(set_up())


def test_prefect_checks_find_what_the_service_creates(prefect_server: ServiceSettings) -> None:
    service = prefect_server.model_copy(
        update={"warehouse_limit_name": "doctor-limit", "alert_webhook_url": SecretStr("http://127.0.0.1:9/hook-9d2")}
    )
    with httpx.Client(timeout=3.0) as http:
        before = by_name(prefect_checks(service, http, 3.0))
        set_up_as_the_service_does(service)
        after = by_name(prefect_checks(service, http, 3.0))
    assert before["prefect api"].ok and not before["prefect api"].needed_by_runs
    assert not before["concurrency limit"].ok and before["concurrency limit"].needed_by_runs
    assert "'doctor-limit' does not exist" in before["concurrency limit"].detail
    assert not before["alerts"].ok and not before["alerts"].needed_by_runs
    assert doctor_exit_code(list(before.values())) == 1
    assert after["concurrency limit"].detail == "'doctor-limit': one active slot, 0 in use"
    assert after["alerts"].ok and "'medallion-quality-alert' exists and is enabled" in after["alerts"].detail
    assert doctor_exit_code(list(after.values())) == 0
    assert "hook-9d2" not in doctor_text(list(after.values()))


def test_a_limit_with_more_slots_fails(prefect_server: ServiceSettings) -> None:
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    async def create() -> None:
        async with PrefectClient(api=prefect_server.own_api_url) as client:
            await client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate.parse_obj({"name": "doctor-wide", "limit": 3, "active": True})
            )

    asyncio.run(create())
    service = prefect_server.model_copy(update={"warehouse_limit_name": "doctor-wide"})
    with httpx.Client(timeout=3.0) as http:
        found = by_name(prefect_checks(service, http, 3.0))
    assert not found["concurrency limit"].ok and "has 3 active slot(s)" in found["concurrency limit"].detail
    # Without ALERT_WEBHOOK_URL no automation is wanted.
    assert found["alerts"].ok and found["alerts"].detail == "off: ALERT_WEBHOOK_URL is not set"


# What the doctor prints


def test_doctor_text_and_exit_code() -> None:
    checks = [
        Check("settings", True, "valid"),
        Check("warehouse", False, "data/w.duckdb does not open: Permission denied"),
        Check("rates", False, "live (ExchangeRate-API): unreachable", needed_by_runs=False),
    ]
    assert doctor_text(checks).splitlines() == [
        "ok    settings   valid",
        "FAIL  warehouse  data/w.duckdb does not open: Permission denied",
        "warn  rates      live (ExchangeRate-API): unreachable",
        "runs need what failed: warehouse",
    ]
    assert doctor_exit_code(checks) == 1
    assert doctor_exit_code([checks[0], checks[2]]) == 0


def test_invalid_settings_are_one_failed_check(warehouse_env: dict[str, str]) -> None:
    with pytest.raises(SettingsError) as invalid:
        load_settings(BATCH_ROWS=0)
    check = invalid_settings_check(invalid.value)
    assert not check.ok and "BATCH_ROWS" in check.detail and doctor_exit_code([check]) == 1
