from __future__ import annotations

import asyncio

import pytest

from enrichment.redaction import redact
from enrichment.resilience import (
    BreakerState,
    BudgetExhaustedError,
    CircuitBreaker,
    CircuitOpenError,
    PermanentSourceError,
    RetryableSourceError,
    SourceGuard,
)

from .conftest import SECRET, FakeClock, fast_settings


def test_breaker_opens_after_threshold_and_resets_on_success(clock: FakeClock) -> None:
    breaker = CircuitBreaker("rates", clock, failure_threshold=3, reset_s=60)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    assert breaker.failures == 0
    for _ in range(3):
        breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpenError):
        breaker.check()
    clock.advance(60)
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    clock.advance(60)
    breaker.record_success()
    assert (breaker.state, breaker.failures) == (BreakerState.CLOSED, 0)


def test_concurrency_never_exceeds_batch_size(clock: FakeClock) -> None:
    guard = SourceGuard("products", fast_settings(batch_size=3), clock, budget=100)

    async def slow() -> int:
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return 1

    async def many() -> list[int]:
        return await asyncio.gather(*(guard.call(slow) for _ in range(20)))

    assert sum(asyncio.run(many())) == 20
    assert guard.max_in_flight == 3
    assert guard.attempts == 20


def test_rate_limiter_holds_under_concurrent_acquires(clock: FakeClock) -> None:
    guard = SourceGuard("rates", fast_settings(requests_per_second=4), clock, budget=100)

    async def grab() -> bool:
        await asyncio.gather(*(guard.limiter.acquire() for _ in range(4)))
        return guard.limiter.has_capacity()

    assert asyncio.run(grab()) is False


def test_budget_stops_requests_and_retries_spend_it(clock: FakeClock) -> None:
    guard = SourceGuard("rates", fast_settings(max_attempts=3), clock, budget=2)
    calls = 0

    async def failing() -> int:
        nonlocal calls
        calls += 1
        raise RetryableSourceError("rates", "server error HTTP 500")

    with pytest.raises(BudgetExhaustedError):
        asyncio.run(guard.call(failing))
    assert calls == 2
    assert guard.budget.remaining == 0


def test_a_source_disabled_mid_run_is_sent_nothing_more_and_spends_no_budget(clock: FakeClock) -> None:
    guard = SourceGuard("rates", fast_settings(batch_size=3), clock, budget=100)
    sent = 0

    async def rejected() -> int:
        nonlocal sent
        sent += 1
        await asyncio.sleep(0)
        raise PermanentSourceError("rates", "error-type invalid-key (HTTP 401)")

    async def many() -> list[int | BaseException]:
        return await asyncio.gather(*(guard.call(rejected) for _ in range(20)), return_exceptions=True)

    outcomes = asyncio.run(many())
    # Only the requests already in flight when the first 401 came back were sent.
    assert sent == guard.attempts == guard.budget.spent == 3
    assert sum(isinstance(outcome, CircuitOpenError) for outcome in outcomes) == 17
    assert guard.breaker.state is BreakerState.OPEN


@pytest.mark.parametrize(
    "text",
    [
        f"GET https://v6.exchangerate-api.com/v6/{SECRET}/latest/GBP",
        "GET https://v6.exchangerate-api.com/v6/another-key-42/history/GBP/2010/12/1",
        f"Authorization: Bearer {SECRET}",
        f"https://example.test/x?api_key={SECRET}&q=1",
    ],
)
def test_redaction_removes_keys(text: str) -> None:
    cleaned = redact(text, [SECRET])
    assert SECRET not in cleaned
    assert "another-key-42" not in cleaned
    assert "***" in cleaned
