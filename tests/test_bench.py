"""The benchmark's lower bound: it must do the work it claims (every row typed, gold built), or it bounds nothing."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import duckdb
import pytest

from medallion.gold import GOLD_SQL

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return _load("bench")


def test_the_lower_bound_types_every_row_and_builds_every_gold_table(bench: ModuleType, tmp_path: Path) -> None:
    generated = tmp_path / "retail.csv"
    rows = sys.modules["generate_data"].generate(generated, 0.02, seed=11)
    work = tmp_path / "work"
    work.mkdir()

    result = bench.bound_measurement(generated, work)

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


def test_the_lower_bound_finds_every_exact_repeat(bench: ModuleType, tmp_path: Path) -> None:
    generated = tmp_path / "retail.csv"
    sys.modules["generate_data"].generate(generated, 0.02, seed=11)
    work = tmp_path / "work"
    work.mkdir()

    result = bench.bound_measurement(generated, work)

    with duckdb.connect(str(work / "bound.duckdb"), read_only=True) as connection:
        expected = connection.execute(
            """SELECT count(*) - count(DISTINCT (InvoiceNo, StockCode, Description, Quantity, InvoiceDate,
                      UnitPrice, CustomerID, Country)) FROM bronze"""
        ).fetchone()
    assert expected is not None and result["repeats"] == expected[0] > 0
