"""Status-aware retries, rate limiting, circuit breaking and request budgets shared by the live clients."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Protocol, TypeVar

import httpx
from aiolimiter import AsyncLimiter
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_base, wait_exponential_jitter

from enrichment.redaction import redact
from medallion.settings import EnrichmentSettings

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Clock(Protocol):
    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class SourceError(Exception):
    """A live source could not answer; the message is already free of secrets."""

    def __init__(self, source: str, message: str, *, status: int | None = None) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.status = status


class RetryableSourceError(SourceError):
    """A 429, a 5xx, a timeout or a broken connection: worth another attempt."""

    def __init__(
        self, source: str, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(source, message, status=status)
        self.retry_after = retry_after


class PermanentSourceError(SourceError):
    """A 4xx such as an invalid key, a used-up quota or a retired API version: retrying cannot help."""


class RequestRejectedError(SourceError):
    """The source refused this one request (bad code, no data for the date); other keys may still work."""


class NotFoundError(RequestRejectedError):
    """The source answered that it has no record for this key."""


class BudgetExhaustedError(SourceError):
    """The run or the month has spent its requests to this source."""


class CircuitOpenError(SourceError):
    """The source's breaker is open after repeated failures."""


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Opens after `failure_threshold` consecutive failures, lets one trial through after `reset_s`."""

    def __init__(self, source: str, clock: Clock, *, failure_threshold: int, reset_s: float) -> None:
        self.source = source
        self.clock = clock
        self.failure_threshold = failure_threshold
        self.reset_s = reset_s
        self.failures = 0
        self.forced_open = False
        self._opened_at: float | None = None

    @property
    def state(self) -> BreakerState:
        if self.forced_open:
            return BreakerState.OPEN
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self.clock.monotonic() - self._opened_at >= self.reset_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def check(self) -> None:
        if self.state is BreakerState.OPEN:
            raise CircuitOpenError(self.source, "circuit open after repeated failures; using the offline twin")

    def record_success(self) -> None:
        if not self.forced_open:
            self.failures = 0
            self._opened_at = None

    def record_failure(self) -> None:
        self.failures += 1
        if self.failures >= self.failure_threshold or self.state is BreakerState.HALF_OPEN:
            self._opened_at = self.clock.monotonic()
            logger.warning("%s: circuit opened after %d failures", self.source, self.failures)

    def open_for_run(self, reason: str) -> None:
        """Stop calling the source for the rest of the run (invalid key, quota reached, retired version)."""
        self.forced_open = True
        logger.warning("%s: disabled for this run: %s", self.source, reason)


class RequestBudget:
    """Caps the HTTP requests one run may spend on a source, within what the month has left."""

    def __init__(self, source: str, limit: int) -> None:
        self.source = source
        self.limit = max(0, limit)
        self.spent = 0

    def spend(self) -> None:
        if self.spent >= self.limit:
            raise BudgetExhaustedError(self.source, f"request budget of {self.limit} spent for this run")
        self.spent += 1

    @property
    def remaining(self) -> int:
        return self.limit - self.spent


class _WaitRetryAfterOrBackoff(wait_base):
    """Honour a server's Retry-After; otherwise exponential backoff with jitter."""

    def __init__(self, backoff: wait_base) -> None:
        self.backoff = backoff

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, RetryableSourceError) and error.retry_after is not None:
            return error.retry_after
        return float(self.backoff(retry_state))


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header in either of its two forms."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class SourceGuard:
    """Everything one live source needs to be called safely: limiter, breaker, budget and retry policy."""

    def __init__(
        self,
        source: str,
        settings: EnrichmentSettings,
        clock: Clock,
        *,
        budget: int,
        secrets: Iterable[str] = (),
    ) -> None:
        self.source = source
        self.settings = settings
        self.clock = clock
        self.secrets = tuple(secrets)
        self.breaker = CircuitBreaker(
            source,
            clock,
            failure_threshold=settings.breaker_failure_threshold,
            reset_s=settings.breaker_reset_s,
        )
        self.budget = RequestBudget(source, budget)
        self.concurrency = asyncio.Semaphore(settings.batch_size)
        self.limiter = AsyncLimiter(settings.requests_per_second, 1.0)
        self.attempts = 0
        self.retries = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._backoff = wait_exponential_jitter(
            initial=settings.backoff_initial_s,
            max=settings.backoff_max_s,
            jitter=settings.backoff_jitter_s,
        )

    async def call(self, request: Callable[[], Awaitable[T]]) -> T:
        """Run one logical lookup with bounded, status-aware retries; raises SourceError when it fails."""
        self.breaker.check()
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.settings.max_attempts),
            wait=_WaitRetryAfterOrBackoff(self._backoff),
            retry=retry_if_exception_type(RetryableSourceError),
            sleep=self.clock.sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            result: T = await retrying(self._attempt, request)
        except PermanentSourceError as error:
            self.breaker.open_for_run(str(error))
            raise
        except (BudgetExhaustedError, CircuitOpenError):
            # Nothing was sent for this lookup, so the source did not fail.
            raise
        except RequestRejectedError:
            self.breaker.record_success()
            raise
        except SourceError:
            self.breaker.record_failure()
            raise
        self.breaker.record_success()
        return result

    async def _attempt(self, request: Callable[[], Awaitable[T]]) -> T:
        async with self.concurrency:
            # Checked again after each wait: another lookup may have disabled the source meanwhile, and then
            # this request must neither be sent nor spend the budget.
            self.breaker.check()
            await self.limiter.acquire()
            self.breaker.check()
            self.budget.spend()
            self.attempts += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                return await request()
            except httpx.TimeoutException as error:
                raise RetryableSourceError(self.source, f"timed out ({type(error).__name__})") from None
            except httpx.TransportError as error:
                message = redact(str(error), self.secrets)
                raise RetryableSourceError(self.source, f"connection failed: {message}") from None
            finally:
                self.in_flight -= 1

    def _before_sleep(self, retry_state: RetryCallState) -> None:
        self.retries += 1
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, RetryableSourceError) and error.retry_after is not None:
            if error.retry_after > self.settings.max_retry_after_s:
                raise RetryableSourceError(
                    self.source,
                    f"asked to wait {error.retry_after:.0f}s, more than the "
                    f"{self.settings.max_retry_after_s:.0f}s "
                    "allowed; giving up on this source for now",
                    status=error.status,
                )
        wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
        logger.info(
            "%s: attempt %d failed (%s); retrying in %.2fs",
            self.source,
            retry_state.attempt_number,
            error,
            wait,
        )


def check_response(source: str, response: httpx.Response, *, secrets: Iterable[str], now: datetime) -> httpx.Response:
    """Turn an HTTP error status into the matching SourceError, with a redacted, actionable message."""
    status = response.status_code
    if status < 400:
        return response
    url = redact(str(response.request.url), secrets)
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now)
        raise RetryableSourceError(source, f"rate limited (HTTP 429) at {url}", status=status, retry_after=retry_after)
    if status >= 500:
        raise RetryableSourceError(source, f"server error HTTP {status} at {url}", status=status)
    if status == 404:
        raise NotFoundError(source, f"not found (HTTP 404) at {url}", status=status)
    if status in (400, 422):
        raise RequestRejectedError(source, f"request rejected (HTTP {status}) at {url}", status=status)
    raise PermanentSourceError(source, f"HTTP {status} at {url}; check the key and the base URL", status=status)
