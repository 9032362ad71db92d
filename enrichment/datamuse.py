"""Datamuse "means like": its response model, the client, and the live products source over the local rules."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from enrichment.live import Answers, LiveContext
from enrichment.lookup import Found, Lookup, Origin
from enrichment.products import DATAMUSE_SOURCE, ProductKey, ProductRecord, categorise, categorise_with_related
from enrichment.redaction import redact
from enrichment.resilience import RetryableSourceError, SourceGuard, check_response
from medallion.settings import EnrichmentSettings


class DatamuseWord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    word: str
    score: int | None = None
    tags: list[str] = Field(default_factory=list)


_DATAMUSE_BODY = TypeAdapter(list[DatamuseWord])


def parse_datamuse_response(response: httpx.Response, *, now: datetime) -> list[str]:
    """The one place where a Datamuse body becomes a list of related words (best first)."""
    check_response(DATAMUSE_SOURCE, response, secrets=(), now=now)
    url = redact(str(response.request.url))
    try:
        words = _DATAMUSE_BODY.validate_python(response.json())
    except (json.JSONDecodeError, UnicodeDecodeError, ValidationError):
        raise RetryableSourceError(DATAMUSE_SOURCE, f"malformed JSON from {url}") from None
    return [item.word for item in words]


class DatamuseApi:
    """Related terms of a head noun; keyless, with a per-run budget only."""

    name = "products"
    source = DATAMUSE_SOURCE

    def __init__(self, settings: EnrichmentSettings, *, max_words: int = 20) -> None:
        self.url = f"{settings.datamuse_base_url.rstrip('/')}/words"
        self.max_words = max_words
        self.per_run = settings.datamuse_requests_per_run
        self.ttl = settings.related_terms_ttl_s

    def budget(self, used_this_month: int) -> int:
        return self.per_run

    def cache_key(self, question: str) -> str:
        return question

    def ttl_s(self, question: str) -> int | None:
        return self.ttl

    def encode(self, answer: list[str]) -> object:
        return answer

    def decode(self, payload: Any, question: str) -> list[str]:
        return list(payload)

    async def ask(self, http: httpx.AsyncClient, guard: SourceGuard, question: str) -> list[str]:
        async def request() -> list[str]:
            response = await http.get(self.url, params={"ml": question, "max": self.max_words})
            return parse_datamuse_response(response, now=guard.clock.now())

        return await guard.call(request)


class LiveProducts:
    """Live twin: the local rules, then Datamuse's related terms for the head noun of a product they leave as other."""

    def __init__(self, live: LiveContext) -> None:
        self.live = live
        self.api = DatamuseApi(live.settings)

    def lookup(self, keys: Sequence[ProductKey]) -> Lookup[ProductRecord]:
        local = [categorise(key.stock_code, key.description) for key in keys]
        answers = self.live.answers(self.api, [record.head_term for record in local if record.head_term])
        return answers.lookup([self._found(record, answers) for record in local])

    def _found(self, record: ProductRecord, answers: Answers[str, list[str]]) -> Found[ProductRecord]:
        if record.head_term is None:
            return Found(record, Origin.OFFLINE)
        answer = answers.get(record.head_term)
        if answer is None:
            return Found(record, Origin.FALLBACK, self.live.retry_at)
        return Found(categorise_with_related(record, answer.value), answer.origin)
