"""How silver reads quantities and unit prices: a decimal comma as the number it is, an ambiguous number never
changed silently, and numbers that are not finite or past the bounds rejected, so gold stays finite."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import pytest
from test_silver import Transformed, bronze, transformed
from test_warehouse import warehouse_at

from medallion import gold, reader
from medallion.settings import PipelineSettings, SettingsError, load_settings
from medallion.warehouse import bronze as bronze_store
from medallion.warehouse import silver_store


def prices(*values: str, quantities: tuple[str, ...] = (), pipeline: PipelineSettings | None = None) -> Transformed:
    """One line per unit price (quantity 6 unless given), through silver as one file."""
    quantities = quantities or ("6",) * len(values)
    rows = bronze(
        *(
            (f"5363{n:02d}", "85123A", "HEART", quantity, "12/1/2010 8:26", price, "17850", "France")
            for n, (quantity, price) in enumerate(zip(quantities, values, strict=True))
        )
    )
    return transformed(rows) if pipeline is None else transformed(rows, pipeline=pipeline)


def read(split: Transformed) -> list[object]:
    """Each line's (quantity, unit price) as silver typed it, or its reject reason."""
    typed = {row["row_number"]: (row["quantity"], row["unit_price"]) for row in split.silver.iter_rows(named=True)}
    reasons = dict(split.rejected.select("row_number", "reason").iter_rows())
    return [typed.get(number, reasons.get(number)) for number in range(1, len(typed) + len(reasons) + 1)]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # the case: a file of decimal points with one German-style price
        (["2.55", "1.234,50"], [(6, 2.55), (6, 1234.5)]),
        # a decimal comma without grouping, and grouping by points with a decimal comma
        (["2.55", "1234,5", "1.234.567,89"], [(6, 2.55), (6, 1234.5), (6, 1234567.89)]),
        # a comma grouping thousands before a decimal point is read as before
        (["2.55", "1,234.50", "1,234,567"], [(6, 2.55), (6, 1234.5), (6, 1234567.0)]),
        # a leading zero is no group of thousands: 0,125 can only be a fraction
        (["2.55", "0,125"], [(6, 2.55), (6, 0.125)]),
    ],
)
def test_a_number_whose_form_shows_its_decimal_mark_is_read_as_that_number(
    values: list[str], expected: list[object]
) -> None:
    assert read(prices(*values, pipeline=load_settings(MAX_ABS_UNIT_PRICE=10_000_000).pipeline)) == expected


@pytest.mark.parametrize(
    ("values", "quantities", "expected"),
    [
        # the file's other prices write decimal points: a comma groups thousands
        (["2.55", "1,234"], ("6", "1,200"), [(6, 2.55), (1200, 1234.0)]),
        # the file's other prices write decimal commas: a comma marks decimals and a point groups thousands
        (["2,55", "1,234", "1.234"], ("6", "6", "1.200"), [(6, 2.55), (6, 1.234), (1200, 1234.0)]),
        # no price shows a mark: a point marks decimals, as every CSV reader takes it; a comma could be either
        (["2", "1.234", "1,234"], ("6", "6", "6"), [(6, 2.0), (6, 1.234), "ambiguous_unit_price"]),
        # prices show both marks: a number that could be either is rejected, the others are read as they show
        (
            ["2.55", "2,55", "1,234", "1.234"],
            ("6", "6", "6", "1,200"),
            [(6, 2.55), (6, 2.55), "ambiguous_unit_price", "ambiguous_quantity"],
        ),
    ],
)
def test_an_ambiguous_number_follows_the_files_own_numbers_or_is_rejected(
    values: list[str], quantities: tuple[str, ...], expected: list[object]
) -> None:
    assert read(prices(*values, quantities=quantities)) == expected


@pytest.mark.parametrize(
    ("quantity", "price", "expected"),
    [
        ("6", "1e308", "unit_price_out_of_range"),
        ("6", "-1e308", "unit_price_out_of_range"),
        ("6", "1000000.01", "unit_price_out_of_range"),
        ("6", "-1000000", (6, -1000000.0)),  # the bound itself is in range
        ("6", "inf", "bad_unit_price"),
        ("6", "-Infinity", "bad_unit_price"),
        ("6", "nAn", "bad_unit_price"),  # not one of the words for a missing value, yet no number
        ("6", "1e309", "bad_unit_price"),  # beyond a double: read as infinite
        ("10000000", "1", (10_000_000, 1.0)),
        ("-10000001", "1", "quantity_out_of_range"),
        ("1e19", "1", "quantity_out_of_range"),  # a whole number, beyond any integer column
        ("-9223372036854775808", "1", "quantity_out_of_range"),  # the smallest BIGINT, whose abs() overflows
        ("+nan", "1", "bad_quantity"),
    ],
)
def test_numbers_that_are_not_finite_or_past_the_bounds_are_rejected(
    quantity: str, price: str, expected: object
) -> None:
    split = prices("2.55", price, quantities=("6", quantity))
    assert read(split) == [(6, 2.55), expected]
    assert split.silver["line_amount"].is_finite().all()


def test_the_bounds_are_settings_and_rows_past_them_count_as_invalid() -> None:
    pipeline = load_settings(MAX_ABS_QUANTITY=100, MAX_ABS_UNIT_PRICE=10).pipeline
    split = prices("2.55", "10", "10.5", "2.55", quantities=("100", "6", "6", "-101"), pipeline=pipeline)
    assert read(split) == [(100, 2.55), (6, 10.0), "unit_price_out_of_range", "quantity_out_of_range"]
    assert (split.counts.rows, split.counts.checked_rows, split.counts.valid_rows) == (4, 2, 2)


@pytest.mark.parametrize("setting", ["MAX_ABS_QUANTITY", "MAX_ABS_UNIT_PRICE"])
@pytest.mark.parametrize("value", ["0", "-1", "inf", "1e13"])
def test_a_bound_is_positive_and_small_enough_to_keep_sums_finite(setting: str, value: str) -> None:
    with pytest.raises(SettingsError, match=setting):
        load_settings(**{setting: value})


HEADER = ",InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
HOSTILE_LINES = [
    ("6", "2.55"),
    ("6", "1e308"),
    ("6", "inf"),
    ("6", "nan"),
    ("6", "NaN "),
    ("6", "-1e308"),
    ("6", "-inf"),
    ("99999999999", "2.55"),
    ("-9223372036854775808", "1"),
    ("1e300", "1"),
    ("6", '"1.234,50"'),
    ("3", "1e6"),
    ("10000000", "1000000"),  # both at their bound: the largest line amount, 1e13, still finite
]


def test_gold_stays_finite_whatever_numbers_a_file_holds(tmp_path: Path) -> None:
    lines = [
        f"{n},5363{n:02d},85123A,HEART,{quantity},12/1/2010 8:26,{price},1785{n % 3},United Kingdom\n"
        for n, (quantity, price) in enumerate(HOSTILE_LINES, start=1)
    ]
    path = tmp_path / "hostile.csv"
    path.write_text(HEADER + "".join(lines))
    with warehouse_at(tmp_path / "w.duckdb") as connection:
        file_profile = reader.profile_file(path)
        bronze_rows = bronze_store.publish_bronze(
            connection, file_profile, None, flow_run_id=None, started_at=datetime(2026, 1, 1)
        )
        totals = silver_store.publish_silver(
            connection,
            file_profile.file_id,
            path.name,
            "GBP",
            date_formats=["%m/%d/%Y %H:%M"],
            date_order_source="test",
        )
        kpis = gold.publish_gold(connection, top_n=10, vip_percentile=0.8, low_value_percentile=0.2)
        doubles = connection.execute(
            """SELECT table_name, column_name FROM duckdb_columns()
               WHERE schema_name = 'gold' AND data_type = 'DOUBLE'"""
        ).fetchall()
        infinite = {
            f"{table}.{column}": connection.execute(
                f"SELECT count(*) FROM gold.{table} WHERE NOT isfinite({column})"  # noqa: S608 - from the catalog
            ).fetchall()[0][0]
            for table, column in doubles
        }
        decimal_comma = connection.execute(
            "SELECT unit_price FROM silver.transactions WHERE row_number = 11"
        ).fetchall()
    assert bronze_rows == len(HOSTILE_LINES)
    assert bronze_rows == totals.silver_rows + totals.rejected_rows + totals.duplicate_rows
    assert totals.rejected_by_reason == {
        "bad_unit_price": 4,
        "quantity_out_of_range": 3,
        "unit_price_out_of_range": 2,
    }
    assert decimal_comma == [(1234.5,)]
    assert infinite and not any(infinite.values())
    numbers = [value for value in kpis.values() if isinstance(value, float)]
    assert numbers and all(math.isfinite(value) for value in numbers)
    assert kpis["net_revenue"] == pytest.approx(6 * 2.55 + 6 * 1234.5 + 3e6 + 1e13)
