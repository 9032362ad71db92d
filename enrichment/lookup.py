"""The contract every enrichment source keeps: `lookup(keys)` answers each key with one record and its origin."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Generic, Protocol, TypeVar

from pydantic import BaseModel

K_contra = TypeVar("K_contra", contravariant=True)
R = TypeVar("R")


class Origin(StrEnum):
    """Where the record of one key came from."""

    LIVE = "live"
    CACHED = "cached"
    OFFLINE = "offline"
    # The live source failed for this key and the offline twin answered; the key is retried live later.
    FALLBACK = "fallback"


@dataclass(frozen=True)
class Found(Generic[R]):
    """The record of one key, where it came from, and when the dimension's row for it expires (None: never)."""

    record: R
    origin: Origin
    expires_at: datetime | None = None


class LookupCounts(BaseModel):
    """Lookups of one dimension in a run, by where the answer came from, and the HTTP requests they cost."""

    live: int = 0
    cached: int = 0
    offline: int = 0
    failed: int = 0
    requests: int = 0
    retries: int = 0

    @property
    def answered(self) -> int:
        return self.live + self.cached + self.offline

    def in_words(self) -> str:
        """E.g. "3 live, 2 cached, 1 failed (6 requests, 2 retries)", or "none"."""
        parts = [
            f"{count} {label}"
            for label, count in (
                ("live", self.live),
                ("cached", self.cached),
                ("offline", self.offline),
                ("failed", self.failed),
            )
            if count
        ]
        words = ", ".join(parts) or "none"
        if self.requests:
            words += f" ({self.requests} requests, {self.retries} retries)"
        return words


@dataclass(frozen=True)
class Lookup(Generic[R]):
    """What a source answered for a list of keys, in the keys' order, and what asking a live API cost."""

    found: list[Found[R]]
    requests: int = 0
    retries: int = 0
    # The live API's breaker state ("closed", "open", "half_open") when it was asked this run.
    breaker: str | None = field(default=None)

    def counts(self) -> LookupCounts:
        origins = Counter(found.origin for found in self.found)
        return LookupCounts(
            live=origins[Origin.LIVE],
            cached=origins[Origin.CACHED],
            offline=origins[Origin.OFFLINE] + origins[Origin.FALLBACK],
            failed=origins[Origin.FALLBACK],
            requests=self.requests,
            retries=self.retries,
        )


def offline_lookup(records: Sequence[R]) -> Lookup[R]:
    """The lookup of an offline twin: every record answered locally, none expiring."""
    return Lookup([Found(record, Origin.OFFLINE) for record in records])


class Source(Protocol[K_contra, R]):
    """One dimension's source: an offline twin or a live API behind the same call."""

    def lookup(self, keys: Sequence[K_contra]) -> Lookup[R]:
        """One found record per key, in the keys' order; never raises for a key it cannot answer."""
        ...
