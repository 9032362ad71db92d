"""`medallion doctor`: a few lines on whether what a run needs works, and what the optional parts say.

Each check is read-only: the warehouse is opened read-only, the Prefect API and each live enrichment source get one
cheap request each (the probe's request is not entered in `enrichment.api_usage`, which a read-only warehouse cannot
write). No key or webhook URL appears in what it says.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb
import httpx
import prefect.settings
from prefect.client.orchestration import PrefectClient, get_client
from prefect.exceptions import ObjectNotFound

from deployments.names import ALERT_AUTOMATION
from enrichment.datamuse import DatamuseApi, parse_datamuse_response
from enrichment.exchangerate_api import ExchangeRateApi, RateQuestion, parse_rates_response
from enrichment.live import run_async
from enrichment.redaction import redact
from enrichment.resilience import PermanentSourceError, RequestRejectedError, SourceError
from enrichment.restcountries import RestCountriesApi, parse_countries_response
from medallion.errors import ConfigurationError, WarehouseBusyError, unusable_path
from medallion.names import printable
from medallion.readers import LockHolder, lock_holder
from medallion.settings import PipelineSettings, ServiceSettings, Settings
from medallion.warehouse import Warehouse
from medallion.warehouse.schema import MIGRATIONS, schema_version

PROBE_TIMEOUT_S = 3.0
# A word the product rules leave to Datamuse and a country REST Countries surely has: a probe that is a real lookup.
_PROBE_TERM = "mug"
_PROBE_COUNTRY = "United Kingdom"


@dataclass(frozen=True)
class Check:
    """One line of the doctor's answer; a failed check that runs need makes the exit code 1."""

    name: str
    ok: bool
    detail: str
    needed_by_runs: bool = True


def health_checks(
    settings: Settings,
    *,
    transport: httpx.BaseTransport | None = None,
    now: datetime | None = None,
    timeout_s: float = PROBE_TIMEOUT_S,
) -> list[Check]:
    """Every check, in the order the doctor prints them; `transport` carries every HTTP request but the Prefect
    client's (tests pass a respx router)."""
    moment = now or datetime.now(UTC)
    checks = [Check("settings", True, "valid")]
    warehouse, usage = warehouse_checks(settings.pipeline, moment)
    checks += warehouse
    with httpx.Client(transport=transport, timeout=timeout_s, follow_redirects=True) as http:
        checks += prefect_checks(settings.service, http, timeout_s)
        checks += enrichment_checks(settings, http, usage, moment)
    return checks


def invalid_settings_check(error: Exception) -> Check:
    """The one check to show when the settings do not load (the SettingsError names the variable, never a secret)."""
    return Check("settings", False, str(error))


def doctor_text(checks: Sequence[Check]) -> str:
    """The checks as aligned lines (a path's control characters escaped), then one line saying whether runs can
    work."""
    width = max((len(check.name) for check in checks), default=0)
    lines = [f"{_mark(check):<4}  {check.name:<{width}}  {printable(check.detail)}" for check in checks]
    broken = [check.name for check in checks if check.needed_by_runs and not check.ok]
    if broken:
        lines.append(f"runs need what failed: {', '.join(broken)}")
    else:
        lines.append("everything runs need works")
    return "\n".join(lines)


def doctor_exit_code(checks: Sequence[Check]) -> int:
    """1 when something runs need is broken, else 0 (an optional part failing is a warning only)."""
    return 1 if any(check.needed_by_runs and not check.ok for check in checks) else 0


def _mark(check: Check) -> str:
    if check.ok:
        return "ok"
    return "FAIL" if check.needed_by_runs else "warn"


# The warehouse


def warehouse_checks(pipeline: PipelineSettings, now: datetime) -> tuple[list[Check], dict[str, int] | None]:
    """Whether the warehouse opens read-only (or who holds it) and its schema version; with the requests each
    enrichment source has spent this month, None when the warehouse could not be read."""
    path = pipeline.warehouse_path
    if not path.exists():
        return [Check("warehouse", True, f"none yet at {path}: the first run creates it")], {}
    at_once = pipeline.model_copy(update={"warehouse_lock_timeout_s": 0.0})
    try:
        with Warehouse(at_once, read_only=True) as warehouse, warehouse.connection() as connection:
            version = schema_version(connection)
            usage = _requests_this_month(connection, now)
    except WarehouseBusyError:
        holder = lock_holder(path) or LockHolder(None, "")
        wait = f"a run waits up to {pipeline.warehouse_lock_timeout_s:g} s (WAREHOUSE_LOCK_TIMEOUT)"
        return [Check("warehouse", True, f"{path} is busy, held by {holder}; {wait}")], None
    except (OSError, duckdb.Error, ConfigurationError) as error:
        unusable = error if isinstance(error, ConfigurationError) else unusable_path("WAREHOUSE_PATH", path, error)
        problem = str(unusable) if unusable else _error_text(error)
        return [Check("warehouse", False, f"{path} does not open: {problem}")], None
    return [Check("warehouse", True, f"{path} opens read-only"), _schema_check(version)], usage


def _schema_check(version: int) -> Check:
    latest = MIGRATIONS[-1].version
    if version > latest:
        return Check("schema", False, f"version {version}, newer than this code knows ({latest}): upgrade medallion")
    if version < latest:
        return Check("schema", True, f"version {version}: the next run migrates it to {latest}")
    return Check("schema", True, f"version {version} (current)")


def _requests_this_month(connection: duckdb.DuckDBPyConnection, now: datetime) -> dict[str, int]:
    """Requests spent this month by source name, as `enrichment.cache.ApiCache` counts them."""
    kept = connection.execute(
        "SELECT 1 FROM duckdb_tables() WHERE schema_name = 'enrichment' AND table_name = 'api_usage'"
    ).fetchall()
    if not kept:
        return {}
    rows = connection.execute(
        "SELECT source, requests FROM enrichment.api_usage WHERE month = ?", [now.strftime("%Y-%m")]
    ).fetchall()
    return {str(source): int(requests) for source, requests in rows}


# Prefect


def prefect_checks(service: ServiceSettings, http: httpx.Client, timeout_s: float) -> list[Check]:
    """Whether the Prefect API answers; when it does, whether the warehouse limit and the alert automation exist.

    PREFECT_API_URL, when set, is the API runs report to, so it must answer; otherwise the API is the service's own
    server, which `medallion up` starts and `medallion run` does without."""
    api_url = (service.api_url or service.own_api_url).rstrip("/")
    needed = service.api_url is not None
    problem = _health_problem(http, api_url)
    if problem is not None:
        hint = "" if needed else "; `medallion up` starts it, `medallion run` does without"
        detail = f"no answer at {api_url}: {problem}{hint} (limit and automation not checked)"
        return [Check("prefect api", False, detail, needed)]
    answering = Check("prefect api", True, f"{api_url} answers", needed)
    try:
        return [answering, *run_async(lambda: _prefect_objects(service, api_url, timeout_s))]
    except Exception as error:  # a health check reports, it does not raise
        return [answering, Check("concurrency limit", False, f"could not be read: {_error_text(error)}")]


def _health_problem(http: httpx.Client, api_url: str) -> str | None:
    try:
        response = http.get(f"{api_url}/health")
    except httpx.TimeoutException:
        return f"no reply within {http.timeout.read:g} s"
    except httpx.TransportError as error:
        return _error_text(error)
    if response.status_code != 200:
        return f"HTTP {response.status_code} from /health"
    return None


async def _prefect_objects(service: ServiceSettings, api_url: str, timeout_s: float) -> list[Check]:
    updates: dict[prefect.settings.Setting, object] = {
        prefect.settings.PREFECT_API_URL: api_url,
        prefect.settings.PREFECT_CLIENT_MAX_RETRIES: 0,
    }
    # Prefect 2 reads automations only with its experimental events flag on; Prefect 3 has no such flag.
    events = getattr(prefect.settings, "PREFECT_EXPERIMENTAL_EVENTS", None)
    if events is not None:
        updates[events] = True
    with prefect.settings.temporary_settings(updates=updates):
        async with get_client(httpx_settings={"timeout": timeout_s}) as client:
            checks = [await _limit_check(client, service.warehouse_limit_name)]
            checks.append(await _alert_check(client, enabled=service.alert_webhook_url is not None))
    return checks


async def _limit_check(client: PrefectClient, name: str) -> Check:
    """The one-slot global concurrency limit the service's warehouse writers take turns on."""
    try:
        limit = await client.read_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        return Check("concurrency limit", False, f"{name!r} does not exist: `medallion up` creates it")
    except Exception as error:  # a health check reports, it does not raise
        return Check("concurrency limit", False, f"{name!r} could not be read: {_error_text(error)}")
    if limit.limit != 1 or not limit.active:
        state = "active" if limit.active else "inactive"
        detail = (
            f"{name!r} has {limit.limit} {state} slot(s): served runs need one active slot (`medallion up` sets it)"
        )
        return Check("concurrency limit", False, detail)
    return Check("concurrency limit", True, f"{name!r}: one active slot, {limit.active_slots} in use")


async def _alert_check(client: PrefectClient, *, enabled: bool) -> Check:
    """The automation that posts quality alerts, wanted only when ALERT_WEBHOOK_URL is set."""
    if not enabled:
        return Check("alerts", True, "off: ALERT_WEBHOOK_URL is not set", needed_by_runs=False)
    try:
        automations = await client.read_automations_by_name(ALERT_AUTOMATION)
    except Exception as error:  # a health check reports, it does not raise
        return Check("alerts", False, f"{ALERT_AUTOMATION!r} could not be read: {_error_text(error)}", False)
    if not automations:
        return Check("alerts", False, f"{ALERT_AUTOMATION!r} does not exist: `medallion up` creates it", False)
    if not any(automation.enabled for automation in automations):
        return Check("alerts", False, f"{ALERT_AUTOMATION!r} exists but is disabled", False)
    return Check("alerts", True, f"{ALERT_AUTOMATION!r} exists and is enabled", False)


def _error_text(error: BaseException) -> str:
    lines = str(error).splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


# Enrichment sources


@dataclass(frozen=True)
class Probe:
    """One cheap request to a live source and how to read its answer (raising a SourceError when it is refused)."""

    name: str
    label: str
    source: str
    url: str
    read: Callable[[httpx.Response], object]
    per_month: int | None
    keyed: bool
    params: dict[str, str | int] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


def enrichment_checks(
    settings: Settings, http: httpx.Client, usage: dict[str, int] | None, now: datetime
) -> list[Check]:
    """Each source live or offline; a live one probed: reachable, key accepted, requests left this month.

    A live source that fails only sends its lookups to the offline twin, so none of these is needed by runs."""
    enrichment = settings.enrichment
    if not enrichment.enabled:
        reason = "offline: ENABLE_EXTERNAL_ENRICHMENT is off"
        twins = {"rates": "ECB reference rates", "countries": "countryinfo", "products": "the product rules"}
        return [Check(name, True, f"{reason}; lookups use {twin}", False) for name, twin in twins.items()]
    secrets = tuple(enrichment.secrets())
    checks = [_probe_check(probe, http, usage, secrets) for probe in live_probes(settings, now)]
    if enrichment.countries_api_key is None:
        offline = "offline: no COUNTRIES_API_KEY (REST Countries v5 needs one); lookups use countryinfo"
        checks.insert(1, Check("countries", True, offline, False))
    return checks


def live_probes(settings: Settings, now: datetime) -> list[Probe]:
    """The request each live source is probed with, built by the source's own client."""
    enrichment = settings.enrichment
    secrets = tuple(enrichment.secrets())
    rates = ExchangeRateApi(enrichment)
    probes = [
        Probe(
            "rates",
            "ExchangeRate-API" if rates.api_key else "open ER-API, keyless",
            rates.source,
            rates.url(RateQuestion(settings.pipeline.source_currency)),
            lambda response: parse_rates_response(rates.source, response, secrets=secrets, now=now),
            rates.per_month,
            keyed=rates.api_key is not None,
        )
    ]
    if enrichment.countries_api_key is not None:
        countries = RestCountriesApi(enrichment)
        probes.append(
            Probe(
                "countries",
                "REST Countries v5",
                countries.source,
                countries.url,
                lambda response: parse_countries_response(response, _PROBE_COUNTRY, secrets=secrets, now=now),
                countries.per_month,
                keyed=True,
                params={"q": _PROBE_COUNTRY},
                headers={"Authorization": f"Bearer {countries.api_key}"},
            )
        )
    products = DatamuseApi(enrichment)
    probes.append(
        Probe(
            "products",
            "Datamuse",
            products.source,
            products.url,
            lambda response: parse_datamuse_response(response, now=now),
            None,
            keyed=False,
            params={"ml": _PROBE_TERM, "max": 1},
        )
    )
    return probes


def _probe_check(probe: Probe, http: httpx.Client, usage: dict[str, int] | None, secrets: tuple[str, ...]) -> Check:
    answered, outcome = _probe_outcome(probe, http)
    budget, left = _budget(probe.per_month, None if usage is None else usage.get(probe.source, 0))
    detail = redact(f"live ({probe.label}): {outcome}; {budget}", secrets)
    return Check(probe.name, answered and left, detail, needed_by_runs=False)


def _probe_outcome(probe: Probe, http: httpx.Client) -> tuple[bool, str]:
    """Whether the source answered as it should, and in words; the words may hold a URL, redacted by the caller."""
    accepted = "reachable, key accepted" if probe.keyed else "reachable"
    try:
        probe.read(http.get(probe.url, params=probe.params, headers=probe.headers))
    except httpx.TimeoutException:
        return False, f"unreachable: no reply within {http.timeout.read:g} s"
    except httpx.TransportError as error:
        return False, f"unreachable: {_error_text(error)}"
    except PermanentSourceError as error:
        return False, _refusal(error, keyed=probe.keyed)
    except RequestRejectedError:
        # It refused this one question, which it only does once past the key check.
        return True, accepted
    except SourceError as error:
        return False, f"reachable but failing: {error}"
    return True, accepted


def _refusal(error: PermanentSourceError, *, keyed: bool) -> str:
    text = str(error)
    if "quota-reached" in text:
        return f"quota used up: {text}"
    if keyed and (error.status in (401, 403) or "invalid-key" in text or "inactive-account" in text):
        return f"key refused: {text}"
    return f"refused: {text}"


def _budget(per_month: int | None, used: int | None) -> tuple[str, bool]:
    """The month's requests left in words, and whether any are left."""
    if per_month is None:
        return "no monthly quota", True
    if used is None:
        return f"requests left this month unknown (the warehouse could not be read), {per_month:,} a month", True
    left = max(0, per_month - used)
    return f"{left:,} of {per_month:,} requests left this month", left > 0
