"""A persistent DuckDB cache of live answers with a TTL per source, and the monthly request ledger."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from enrichment.redaction import redact

SCHEMA_SQL = (
    "CREATE SCHEMA IF NOT EXISTS enrichment",
    """CREATE TABLE IF NOT EXISTS enrichment.api_cache (
        source VARCHAR NOT NULL,
        cache_key VARCHAR NOT NULL,
        payload VARCHAR NOT NULL,
        fetched_at TIMESTAMP NOT NULL,
        expires_at TIMESTAMP,
        PRIMARY KEY (source, cache_key)
    )""",
    """CREATE TABLE IF NOT EXISTS enrichment.api_usage (
        source VARCHAR NOT NULL,
        month VARCHAR NOT NULL,
        requests BIGINT NOT NULL,
        PRIMARY KEY (source, month)
    )""",
)


def naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


class ApiCache:
    """Answers keyed by (source, key); `ttl_s=None` means the answer never expires (rates of a past date)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, secrets: tuple[str, ...] = ()) -> None:
        self.con = con
        self.secrets = secrets
        for statement in SCHEMA_SQL:
            con.execute(statement)

    def get(self, source: str, key: str, now: datetime) -> Any | None:
        row = self.con.execute(
            "SELECT payload FROM enrichment.api_cache WHERE source = ? AND cache_key = ? "
            "AND (expires_at IS NULL OR expires_at > ?)",
            [source, key, naive_utc(now)],
        ).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, source: str, key: str, payload: Any, now: datetime, ttl_s: int | None) -> None:
        text = redact(json.dumps(payload, default=str, sort_keys=True), self.secrets)
        fetched = naive_utc(now)
        expires = None if ttl_s is None else fetched + timedelta(seconds=ttl_s)
        self.con.execute(
            "INSERT OR REPLACE INTO enrichment.api_cache VALUES (?, ?, ?, ?, ?)",
            [source, redact(key, self.secrets), text, fetched, expires],
        )

    def requests_this_month(self, source: str, now: datetime) -> int:
        row = self.con.execute(
            "SELECT requests FROM enrichment.api_usage WHERE source = ? AND month = ?",
            [source, now.strftime("%Y-%m")],
        ).fetchone()
        return int(row[0]) if row else 0

    def add_requests(self, source: str, now: datetime, count: int) -> None:
        if count <= 0:
            return
        self.con.execute(
            "INSERT INTO enrichment.api_usage VALUES (?, ?, ?) ON CONFLICT (source, month) "
            "DO UPDATE SET requests = requests + EXCLUDED.requests",
            [source, now.strftime("%Y-%m"), count],
        )
