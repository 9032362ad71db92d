"""The benchmark's data generator: exact row counts, the slice's layout, ids that grow with the copies."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from types import ModuleType

import polars as pl
import pytest
from conftest import load_script

from medallion.reader import profile_file


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    return load_script("generate_data")


@pytest.fixture(scope="module")
def model(generator: ModuleType) -> object:
    return generator.slice_model()


def _read(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, infer_schema=False, null_values=["NA"])


def test_row_count_and_layout_match_the_slice(generator: ModuleType, model: object, tmp_path: Path) -> None:
    target = tmp_path / "retail.csv"
    rows = generator.generate(target, 0.02, seed=7, model=model)

    lines = target.read_text(encoding="utf-8").splitlines()
    assert rows == round(0.02 * generator.REAL_ROWS) == len(lines) - 1
    assert lines[0] == generator.SLICE.open(encoding="utf-8").readline().rstrip("\n")
    layout = re.compile(
        r'^"\d+","[AC]?\d+","[^"]+",(?:"(?:[^"]|"")*"|NA),-?\d+,"\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2}",'
        r'-?[\d.]+(?:e-?\d+)?,(?:\d+|NA),"[^"]+"$'
    )
    assert [line for line in lines[1:] if not layout.match(line)] == []
    fields = list(csv.reader(lines[1:3]))
    assert [field[0] for field in fields] == ["1", "2"]
    assert profile_file(target).layout == "uci_with_index"


def test_one_multiple_looks_like_the_real_set(generator: ModuleType, model: object, tmp_path: Path) -> None:
    target = tmp_path / "retail.csv"
    generator.generate(target, 1.05, seed=7, model=model)
    everything = _read(target)

    dates = everything["InvoiceDate"]
    assert not dates.str.contains(r"^0|/0|\s0\d:").any()
    years = dates.str.extract(r"/(\d{4}) ", 1).cast(pl.Int32)
    assert years.min() == 2010 and years.max() >= 2012
    frame = everything.head(generator.REAL_ROWS)
    rows = frame.height
    # The slice over-represents dirt; the generator thins it back near the real shares (1.7 % and 1.0 %).
    cancellations = frame["InvoiceNo"].str.starts_with("C").sum() / rows
    duplicates = frame.select((~pl.struct(frame.columns[1:]).is_first_distinct()).sum()).item() / rows
    guests = frame["CustomerID"].null_count() / rows
    assert 0.014 < cancellations < 0.021
    assert 0.007 < duplicates < 0.013
    assert 0.22 < guests < 0.28
    assert 20_000 < frame["InvoiceNo"].n_unique() < 35_000
    # like a real invoice, each has one date, one customer and one country, and rarely the same product twice
    per_invoice = frame.group_by("InvoiceNo").agg(
        pl.col("InvoiceDate").n_unique().alias("dates"),
        pl.col("CustomerID").n_unique().alias("customers"),
        pl.col("Country").n_unique().alias("countries"),
    )
    assert per_invoice.select(pl.max_horizontal("dates", "customers", "countries").max()).item() == 1
    assert frame.select(pl.struct("InvoiceNo", "StockCode").n_unique()).item() > 0.95 * rows
    # and no invoice is another one again under a new number: same day and time, customer and lines
    lines = pl.concat_str("StockCode", "Quantity", "UnitPrice", separator="|")
    signatures = frame.group_by("InvoiceNo").agg(
        pl.col("InvoiceDate").first(),
        pl.col("CustomerID").first(),
        lines.sort().str.join(";").alias("lines"),
    )
    assert signatures.select(pl.struct("InvoiceDate", "CustomerID", "lines").is_duplicated().sum()).item() < 0.01 * (
        signatures.height
    )


def test_distinct_ids_grow_with_the_copies(generator: ModuleType, model: object, tmp_path: Path) -> None:
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    generator.generate(small, 0.01, seed=7, model=model)
    generator.generate(large, 0.05, seed=7, model=model)
    slice_frame = _read(generator.SLICE)

    small_frame, large_frame = _read(small), _read(large)
    for column in ("InvoiceNo", "StockCode", "CustomerID"):
        assert large_frame[column].n_unique() > small_frame[column].n_unique()
    # invoices in proportion to the real set's (25,900 per multiple), not to the slice's one or two lines each
    assert (
        abs(large_frame["InvoiceNo"].n_unique() - 0.05 * generator.REAL_INVOICES)
        < 0.15 * 0.05 * generator.REAL_INVOICES
    )
    assert (
        large_frame.height / large_frame["InvoiceNo"].n_unique()
        > 10 * slice_frame.height / slice_frame["InvoiceNo"].n_unique()
    )


def test_the_same_seed_writes_the_same_bytes(generator: ModuleType, model: object, tmp_path: Path) -> None:
    first, second, other = tmp_path / "first.csv", tmp_path / "second.csv", tmp_path / "other.csv"
    for path, seed in ((first, 3), (second, 3), (other, 4)):
        generator.generate(path, 0.03, seed=seed, model=model)

    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other.read_bytes()
