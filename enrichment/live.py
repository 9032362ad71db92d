"""Asking a live API through the cache: cached answers first, the rest concurrently under one SourceGuard."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

import httpx

from enrichment.cache import ApiCache
from enrichment.lookup import Found, Lookup, Origin
from enrichment.resilience import Clock, SourceError, SourceGuard
from medallion.settings import EnrichmentSettings

Q = TypeVar("Q")
Q_contra = TypeVar("Q_contra", contravariant=True)
A = TypeVar("A")
R = TypeVar("R")
T = TypeVar("T")


class LiveApi(Protocol[Q_contra, A]):
    """One external API as the live sources use it: how to ask one question, and how the cache keeps the answer."""

    # The dimension it serves ("rates"), which names its guard in log lines.
    name: str
    # The name of its answers in enrichment.api_cache and of its requests in enrichment.api_usage.
    source: str

    def budget(self, used_this_month: int) -> int:
        """Requests this run may send, given those the month has already spent."""
        ...

    def cache_key(self, question: Q_contra) -> str: ...

    def ttl_s(self, question: Q_contra) -> int | None:
        """How long a cached answer stays fresh; None: forever."""
        ...

    def encode(self, answer: A) -> object: ...

    def decode(self, payload: Any, question: Q_contra) -> A: ...

    async def ask(self, http: httpx.AsyncClient, guard: SourceGuard, question: Q_contra) -> A:
        """The answer, or a SourceError with a redacted message."""
        ...


@dataclass(frozen=True)
class Answer(Generic[A]):
    value: A
    origin: Origin


@dataclass(frozen=True)
class Answers(Generic[Q, A]):
    """The answers a live API gave (or the cache kept) for a run's questions, and what asking cost."""

    answers: dict[Q, Answer[A]] = field(default_factory=dict)
    requests: int = 0
    retries: int = 0
    breaker: str | None = None

    def get(self, question: Q) -> Answer[A] | None:
        """The answer to `question`, or None when the API failed for it."""
        return self.answers.get(question)

    def lookup(self, found: list[Found[R]]) -> Lookup[R]:
        return Lookup(found, requests=self.requests, retries=self.retries, breaker=self.breaker)


@dataclass(frozen=True)
class LiveContext:
    """What the live sources of one run share: settings, the cache, the clock, the run's moment, the transport."""

    settings: EnrichmentSettings
    cache: ApiCache
    clock: Clock
    # Naive UTC, as the warehouse stores timestamps.
    now: datetime
    transport: httpx.AsyncBaseTransport | None = None

    @property
    def retry_at(self) -> datetime:
        """When a key the live API failed for is looked up again."""
        return self.now + timedelta(seconds=self.settings.failed_lookup_retry_s)

    def expiry(self, ttl_s: int) -> datetime:
        return self.now + timedelta(seconds=ttl_s)

    def answers(self, api: LiveApi[Q, A], questions: Iterable[Q]) -> Answers[Q, A]:
        """Answer each distinct question from the cache, else from the API; new answers are cached."""
        unique = list(dict.fromkeys(questions))
        found: dict[Q, Answer[A]] = {}
        for question in unique:
            payload = self.cache.get(api.source, api.cache_key(question), self.now)
            if payload is not None:
                found[question] = Answer(api.decode(payload, question), Origin.CACHED)
        missing = [question for question in unique if question not in found]
        if not missing:
            return Answers(found)
        budget = api.budget(self.cache.requests_this_month(api.source, self.now))
        guard = SourceGuard(api.name, self.settings, self.clock, budget=budget, secrets=self.settings.secrets())
        fetched = run_async(lambda: self._ask_all(api, guard, missing))
        self.cache.add_requests(api.source, self.now, guard.attempts)
        for question, answer in fetched.items():
            self.cache.put(api.source, api.cache_key(question), api.encode(answer), self.now, api.ttl_s(question))
            found[question] = Answer(answer, Origin.LIVE)
        return Answers(found, requests=guard.attempts, retries=guard.retries, breaker=guard.breaker.state.value)

    async def _ask_all(self, api: LiveApi[Q, A], guard: SourceGuard, questions: Sequence[Q]) -> dict[Q, A]:
        timeout = httpx.Timeout(self.settings.http_timeout_s)
        async with httpx.AsyncClient(transport=self.transport, timeout=timeout, follow_redirects=True) as http:

            async def one(question: Q) -> tuple[Q, A | SourceError]:
                try:
                    return question, await api.ask(http, guard, question)
                except SourceError as error:
                    return question, error

            pairs = await asyncio.gather(*(one(question) for question in questions))
        return {question: answer for question, answer in pairs if not isinstance(answer, SourceError)}


def run_async(coroutine_factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion, also when the caller already runs an event loop in this thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine_factory())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(coroutine_factory())).result()
