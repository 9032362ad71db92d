"""The benchmark's lower bound: it must do the work it claims (every row typed, gold built), or it bounds nothing."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import duckdb
import pytest
from conftest import load_script

from medallion.gold import GOLD_SQL


class Bound(NamedTuple):
    generated: Path
    rows: int
    work: Path
    result: dict[str, Any]


@pytest.fixture(scope="module")
def bound(tmp_path_factory: pytest.TempPathFactory) -> Bound:
    """The lower bound measured once on a small generated file."""
    bench: ModuleType = load_script("bench")
    folder = tmp_path_factory.mktemp("bound")
    generated = folder / "retail.csv"
    rows = sys.modules["generate_data"].generate(generated, 0.02, seed=11)
    work = folder / "work"
    work.mkdir()
    return Bound(generated, rows, work, bench.bound_measurement(generated, work))


def test_the_lower_bound_types_every_row_and_builds_every_gold_table(bound: Bound) -> None:
    generated, rows, work, result = bound

    assert result["rows"] == rows
    assert result["typed_rows"] == rows  # a date format that fits no row would make the bound cheap and wrong
    assert result["digest"] == hashlib.sha256(generated.read_bytes()).hexdigest()
    assert set(result["parts"]) == {"bronze", "hash", "repeats", "silver", "gold"}
    with duckdb.connect(str(work / "bound.duckdb"), read_only=True) as connection:
        gold = {
            row[0]
            for row in connection.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'gold'"
            ).fetchall()
        }
        kpi_rows = connection.execute("SELECT rows FROM gold.kpis").fetchone()
    assert gold == set(GOLD_SQL)
    assert kpi_rows is not None and 0 < kpi_rows[0] <= rows


def test_the_lower_bound_finds_every_exact_repeat(bound: Bound) -> None:
    work, result = bound.work, bound.result

    with duckdb.connect(str(work / "bound.duckdb"), read_only=True) as connection:
        expected = connection.execute(
            """SELECT count(*) - count(DISTINCT (InvoiceNo, StockCode, Description, Quantity, InvoiceDate,
                      UnitPrice, CustomerID, Country)) FROM bronze"""
        ).fetchone()
    assert expected is not None and result["repeats"] == expected[0] > 0
