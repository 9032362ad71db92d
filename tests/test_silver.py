"""Silver transforms: tiny literal frames in, expected frames out."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from medallion.errors import BadInputError
from medallion.settings import DateOrder
from medallion.silver import DateParsing, date_parsing, parsed_dates, silver_split, typed_rows

NO_REPEATS = pl.Series("row_number", [], pl.Int64)
US_MINUTES = DateParsing(formats=["%m/%d/%Y %H:%M"], order=DateOrder.MONTH_FIRST, order_source="detected")


def typed(rows: pl.DataFrame, repeats: pl.Series = NO_REPEATS) -> pl.LazyFrame:
    """Typed rows of a bronze frame whose dates are written like the downloaded layout's."""
    return typed_rows(rows.lazy(), parsed_dates(rows["invoice_date"], US_MINUTES), repeats)


def bronze(*rows: tuple[str | None, ...]) -> pl.DataFrame:
    """Bronze rows from (invoice, stock, description, quantity, date, price, customer, country) tuples."""
    names = [
        "invoice_no",
        "stock_code",
        "description",
        "quantity",
        "invoice_date",
        "unit_price",
        "customer_id",
        "country",
    ]
    frame = pl.DataFrame([dict(zip(names, row, strict=True)) for row in rows], schema=dict.fromkeys(names, pl.String))
    return frame.select(
        pl.lit("f" * 64).alias("file_id"),
        pl.lit("sales.csv").alias("source_file"),
        pl.int_range(1, frame.height + 1, dtype=pl.Int64).alias("row_number"),
        pl.lit(None, pl.String).alias("source_index"),
        *names,
        pl.lit(None, pl.String).alias("parse_error"),
    )


@pytest.mark.parametrize(
    ("values", "ambiguous", "expected_formats", "expected_order", "expected_source"),
    [
        # the downloaded layout: US dates without zero padding; 31 in second place proves month-first
        (
            ["12/1/2010 8:26", "10/31/2011 10:42"],
            DateOrder.DAY_FIRST,
            ["%m/%d/%Y %H:%M"],
            DateOrder.MONTH_FIRST,
            "detected",
        ),
        # a European export: 13 in first place proves day-first
        (
            ["13/01/2011 09:00", "02/03/2011 10:00"],
            DateOrder.MONTH_FIRST,
            ["%d/%m/%Y %H:%M"],
            DateOrder.DAY_FIRST,
            "detected",
        ),
        # nothing above 12 anywhere: the setting decides, and says so
        (
            ["01/02/2011 09:00", "03/04/2011 10:00"],
            DateOrder.DAY_FIRST,
            ["%d/%m/%Y %H:%M"],
            DateOrder.DAY_FIRST,
            "AMBIGUOUS_DATE_ORDER setting",
        ),
        # ISO with seconds, and the T / fraction form polars and pandas write
        (
            ["2010-12-01 08:26:00", "2010-12-01T08:26:00.000000"],
            DateOrder.MONTH_FIRST,
            ["%Y-%m-%d %H:%M:%S"],
            None,
            "not needed",
        ),
        # dotted German dates with a two-digit year and no time
        (["24.12.10", "1.2.11"], DateOrder.MONTH_FIRST, ["%d.%m.%y"], DateOrder.DAY_FIRST, "detected"),
    ],
)
def test_date_parsing_detects_the_files_format(
    values: list[str],
    ambiguous: DateOrder,
    expected_formats: list[str],
    expected_order: DateOrder | None,
    expected_source: str,
) -> None:
    parsing = date_parsing(pl.Series(values), ambiguous)
    assert sorted(parsing.formats) == sorted(expected_formats)
    assert parsing.order == expected_order
    assert parsing.order_source == expected_source


def test_date_parsing_refuses_a_file_mixing_orders() -> None:
    with pytest.raises(BadInputError, match="mixed.csv: invoice dates mix day-first and month-first orders"):
        date_parsing(pl.Series(["13/01/2011 09:00", "01/13/2011 09:00"]), DateOrder.MONTH_FIRST, "mixed.csv")


def test_a_rare_contradicting_date_is_a_bad_value_not_a_reason_to_refuse_the_file() -> None:
    month_first = [f"{month}/{day}/2011 09:00" for month in range(1, 13) for day in range(13, 29)]
    parsing = date_parsing(pl.Series([*month_first, "25/12/2011 09:00", "45/45/2011 09:00"]), DateOrder.DAY_FIRST)
    assert parsing.order == DateOrder.MONTH_FIRST
    assert parsing.order_source == "detected; 1 contradicting dates rejected"


def test_typed_rows_derive_dates_amounts_and_flags() -> None:
    rows = bronze(
        (
            "536365",
            "85123A",
            "WHITE HANGING HEART T-LIGHT HOLDER",
            "6",
            "12/4/2010 8:26",
            "2.55",
            "17850.0",
            "United Kingdom",
        ),
        ("C536379", "D", "Discount", "-1", "12/1/2010 9:41", "27.50", "14527", "EIRE"),
        ("A563186", "B", "Adjust bad debt", "1", "8/12/2011 14:51", "-11062.06", "NA", "RSA"),
        ("536370", "POST", "POSTAGE", "3", "12/1/2010 8:45", "18", "", " USA "),
    )
    silver = silver_split(typed(rows)).silver
    expected = pl.DataFrame(
        {
            "invoice_no": ["536365", "C536379", "A563186", "536370"],
            "quantity": [6, -1, 1, 3],
            "line_amount": [15.30, -27.50, -11062.06, 54.0],
            "customer_id": ["17850", "14527", None, None],
            "country": ["United Kingdom", "Ireland", "South Africa", "United States"],
            "invoice_ts": [
                datetime(2010, 12, 4, 8, 26),
                datetime(2010, 12, 1, 9, 41),
                datetime(2011, 8, 12, 14, 51),
                datetime(2010, 12, 1, 8, 45),
            ],
            "invoice_date": [date(2010, 12, 4), date(2010, 12, 1), date(2011, 8, 12), date(2010, 12, 1)],
            "quarter": [4, 4, 3, 4],
            "day_of_week": [6, 3, 5, 3],
            "is_weekend": [True, False, False, False],
            "transaction_type": ["sale", "return", "adjustment", "sale"],
            "is_non_product": [False, True, True, True],
            "is_guest": [False, False, True, True],
        },
        schema_overrides={"quarter": pl.Int32, "day_of_week": pl.Int32, "invoice_ts": pl.Datetime("us")},
    )
    assert_frame_equal(silver.select(expected.columns), expected)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (("", "85123A", "X", "6", "12/1/2010 8:26", "2.55", "17850", "France"), "missing_invoice_no"),
        (("536365", "nan", "X", "6", "12/1/2010 8:26", "2.55", "17850", "France"), "missing_stock_code"),
        (("536365", "85123A", "X", "six", "12/1/2010 8:26", "2.55", "17850", "France"), "bad_quantity"),
        # a fractional quantity is not a count of items
        (("536365", "85123A", "X", "1.5", "12/1/2010 8:26", "2.55", "17850", "France"), "bad_quantity"),
        (("536365", "85123A", "X", "6", "12/1/2010 8:26", "two", "17850", "France"), "bad_unit_price"),
        (("536365", "85123A", "X", "6", "31/31/2010 8:26", "2.55", "17850", "France"), "bad_invoice_date"),
        (("536365", "85123A", "X", "6", "12/1/2010 8:26", "2.55", "17850", " "), "missing_country"),
    ],
)
def test_rows_that_cannot_be_typed_are_rejected_with_a_reason(row: tuple[str, ...], reason: str) -> None:
    good = ("536366", "22633", "HAND WARMER", "6", "12/1/2010 8:28", "1.85", "17850", "France")
    split = silver_split(typed(bronze(good, row)))
    assert split.silver["invoice_no"].to_list() == ["536366"]
    assert split.rejected.select("row_number", "reason").rows() == [(2, reason)]
    assert split.duplicate_rows == 0


def test_repeated_lines_are_removed_and_counted() -> None:
    line = ("536365", "85123A", "HEART", "6", "12/1/2010 8:26", "2.55", "17850", "France")
    other = ("536365", "85123A", "HEART", "6", "12/1/2010 8:26", "2.55", "17850", "Germany")
    repeats = pl.Series("row_number", [3, 4], pl.Int64)
    split = silver_split(typed(bronze(line, other, line, line), repeats))
    assert split.silver["row_number"].to_list() == [1, 2]
    assert split.duplicate_rows == 2
    assert split.rejected.height == 0


def test_a_malformed_row_is_rejected_even_when_its_fields_look_fine() -> None:
    rows = bronze(("536365", "85123A", "HEART", "6", "12/1/2010 8:26", "2.55", "17850", "France"))
    rows = rows.with_columns(pl.lit("too_many_fields").alias("parse_error"))
    split = silver_split(typed(rows))
    assert split.rejected["reason"].to_list() == ["malformed_row"]


def test_typed_rows_leave_the_input_frame_untouched() -> None:
    rows = bronze(("536365", "85123A", "HEART", "6", "12/1/2010 8:26", "2.55", "17850.0", "EIRE"))
    before = rows.clone()
    typed(rows).collect()
    assert_frame_equal(rows, before)
