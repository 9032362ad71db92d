from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from medallion.settings import EnrichmentSettings, load_settings
from medallion.warehouse import Warehouse

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SECRET = "sk-test-0123456789abcdef"


def api_fixture(name: str) -> Any:
    return json.loads((FIXTURES / "api" / name).read_text(encoding="utf-8"))


class FakeClock:
    """Time that moves only when the code under test sleeps."""

    def __init__(self, start: datetime = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)) -> None:
        self.current = start
        self.elapsed = 0.0
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self.current

    def monotonic(self) -> float:
        return self.elapsed

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.elapsed += seconds
        self.current += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def fast_settings(**overrides: Any) -> EnrichmentSettings:
    values: dict[str, Any] = {
        "requests_per_second": 10_000.0,
        "max_attempts": 3,
        "backoff_initial_s": 1.0,
        "backoff_max_s": 8.0,
        "backoff_jitter_s": 0.5,
        "breaker_failure_threshold": 3,
        "breaker_reset_s": 60.0,
    }
    values.update(overrides)
    return EnrichmentSettings(**values)


SILVER_COLUMNS = (
    "file_id VARCHAR, row_number BIGINT, source_file VARCHAR, invoice_no VARCHAR, stock_code VARCHAR, "
    "description VARCHAR, quantity BIGINT, unit_price DOUBLE, customer_id VARCHAR, country VARCHAR, "
    "country_raw VARCHAR, invoice_ts TIMESTAMP, invoice_date DATE, line_amount DOUBLE, currency VARCHAR"
)


def silver_rows(rows: list[tuple[str, str | None, float, str, date]]) -> list[tuple[Any, ...]]:
    """(stock_code, description, line_amount, country_raw, invoice_date) -> full silver rows."""
    standard = {"EIRE": "Ireland", "RSA": "South Africa", "USA": "United States"}
    full = []
    for number, (code, description, amount, country_raw, day) in enumerate(rows, start=1):
        full.append(
            (
                "file-1",
                number,
                "sample.csv",
                f"5{number:05d}",
                code,
                description,
                1,
                amount,
                None,
                standard.get(country_raw, country_raw),
                country_raw,
                datetime(day.year, day.month, day.day, 10, 30),
                day,
                amount,
                "GBP",
            )
        )
    return full


def open_warehouse(path: Path) -> Warehouse:
    return Warehouse(load_settings(WAREHOUSE_PATH=str(path)).pipeline)


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to a real, empty warehouse."""
    with open_warehouse(tmp_path / "warehouse.duckdb") as held, held.connection() as connection:
        yield connection


def load_silver(connection: duckdb.DuckDBPyConnection, rows: list[tuple[str, str | None, float, str, date]]) -> None:
    """`silver_rows` of one file, "file-1", added to a warehouse: its ledger row (once) and silver's lines."""
    connection.execute(
        """INSERT INTO ops.files (file_id, file_name, status, file_key, currency)
           VALUES ('file-1', 'sample.csv', 'loaded', nextval('ops.file_keys'), 'GBP') ON CONFLICT DO NOTHING"""
    )
    connection.execute(f"CREATE OR REPLACE TEMP TABLE received ({SILVER_COLUMNS})")
    connection.executemany(
        "INSERT INTO received VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", silver_rows(rows)
    )
    connection.execute(
        """INSERT INTO silver.lines BY NAME
           SELECT f.file_key, r.* EXCLUDE (file_id, source_file, currency, invoice_date), false AS is_non_product
           FROM received r JOIN ops.files f USING (file_id)"""
    )


def load_warehouse_silver(path: Path, rows: list[tuple[str, str | None, float, str, date]]) -> None:
    """`load_silver` into the warehouse at `path`."""
    with open_warehouse(path) as held, held.connection() as connection:
        load_silver(connection, rows)
