"""Silver transforms: tiny literal frames in, through the silver SQL in DuckDB, expected frames out."""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from pydantic import BaseModel, ConfigDict

from medallion import quality, silver, silver_numbers
from medallion.errors import BadInputError
from medallion.reader import CANONICAL_COLUMNS
from medallion.settings import DateOrder, PipelineSettings
from medallion.warehouse.schema import LINES_VIEW, migrate

US_MINUTES = ["%m/%d/%Y %H:%M"]
DEFAULT_PIPELINE = PipelineSettings()


class Transformed(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    silver: pl.DataFrame
    rejected: pl.DataFrame
    duplicate_rows: int
    counts: quality.QualityCounts


def transformed(
    rows: pl.DataFrame, date_formats: list[str] = US_MINUTES, pipeline: PipelineSettings = DEFAULT_PIPELINE
) -> Transformed:
    """Silver, rejected rows, repeats and quality counts of a bronze frame, as the warehouse computes them."""
    connection = duckdb.connect()
    connection.register("bronze_rows", rows)
    connection.execute(
        silver_numbers.number_rules_sql("bronze_rows"), [pipeline.max_abs_quantity, pipeline.max_abs_unit_price]
    )
    connection.execute(f"CREATE TEMP TABLE {silver.DUPLICATES_TABLE} AS {silver.duplicates_sql('bronze_rows')}")
    connection.execute(
        f"CREATE TEMP TABLE {silver.INCONSISTENT_TABLE} AS {silver.inconsistent_invoices_sql('bronze_rows')}"
    )
    repeats = connection.execute(f"SELECT count(*) FROM {silver.DUPLICATES_TABLE}").fetchall()[0][0]  # noqa: S608
    summary = connection.sql(quality.quality_sql(silver.typed_rows_sql("bronze_rows", date_formats))).pl()
    migrate(connection)  # silver's own table, and the view deriving some columns
    connection.execute(
        f"""INSERT INTO silver.lines BY NAME
            SELECT 1 AS file_key, * FROM ({silver.silver_rows_sql("bronze_rows", date_formats)})"""  # noqa: S608
    )
    return Transformed(
        silver=connection.sql(f"SELECT * EXCLUDE (file_key) FROM {LINES_VIEW} ORDER BY row_number").pl(),  # noqa: S608
        rejected=connection.sql(silver.rejected_rows_sql("bronze_rows", date_formats) + " ORDER BY row_number").pl(),
        duplicate_rows=repeats,
        counts=quality.counts_of([summary.row(0, named=True)], repeats),
    )


def date_parsing(dates: pl.Series, ambiguous: DateOrder, file_name: str = "file") -> silver.DateParsing:
    """The file's date formats from its date strings, through the evidence SQL the warehouse runs."""
    connection = duckdb.connect()
    connection.register("dates", pl.DataFrame({"invoice_date": dates.cast(pl.String)}))
    evidence = connection.execute(silver.date_evidence_sql("dates")).fetchall()
    return silver.date_parsing(evidence, ambiguous, file_name)


def with_dates(*dates: str) -> Transformed:
    """One line per invoice date, read with the formats detected from the dates (month first when ambiguous)."""
    rows = bronze(
        *((f"53636{5 + n}", "85123A", "HEART", "6", day, "2.55", "17850", "France") for n, day in enumerate(dates))
    )
    return transformed(rows, date_parsing(rows["invoice_date"], DateOrder.MONTH_FIRST).formats)


def bronze(*rows: tuple[str | None, ...]) -> pl.DataFrame:
    """Bronze rows from (invoice, stock, description, quantity, date, price, customer, country) tuples."""
    names = list(CANONICAL_COLUMNS)
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
    silver_rows = transformed(rows).silver
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
    assert_frame_equal(silver_rows.select(expected.columns), expected)


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
    split = transformed(bronze(good, row))
    assert split.silver["invoice_no"].to_list() == ["536366"]
    assert split.rejected.select("row_number", "reason").rows() == [(2, reason)]
    assert split.duplicate_rows == 0


def test_repeated_lines_are_removed_and_counted() -> None:
    line = ("536365", "85123A", "HEART", "6", "12/1/2010 8:26", "2.55", "17850", "France")
    other = ("536365", "85123A", "HEART", "6", "12/1/2010 8:26", "2.55", "17850", "Germany")
    split = transformed(bronze(line, other, line, line))
    assert split.silver["row_number"].to_list() == [1, 2]
    assert split.duplicate_rows == 2
    assert split.rejected.height == 0


def test_a_malformed_row_is_rejected_even_when_its_fields_look_fine() -> None:
    rows = bronze(("536365", "85123A", "HEART", "6", "12/1/2010 8:26", "2.55", "17850", "France"))
    rows = rows.with_columns(pl.lit("too_many_fields").alias("parse_error"))
    split = transformed(rows)
    assert split.rejected["reason"].to_list() == ["malformed_row"]


def test_text_is_trimmed_of_any_whitespace_and_amounts_of_their_symbols() -> None:
    rows = bronze(("\t536365\u00a0", " 85123a ", "HEART\n", " 1,200 ", " 12/1/2010 8:26 ", "£2.50", "17850.00", "uk"))
    row = transformed(rows).silver.row(0, named=True)
    assert (row["invoice_no"], row["stock_code"], row["description"]) == ("536365", "85123A", "HEART")
    assert (row["quantity"], row["unit_price"], row["line_amount"]) == (1200, 2.5, 3000.0)
    assert (row["customer_id"], row["country"], row["country_raw"]) == ("17850", "United Kingdom", "uk")
    assert row["invoice_ts"] == datetime(2010, 12, 1, 8, 26)


def test_iso_dates_with_a_t_and_fractions_read_with_the_detected_format() -> None:
    assert with_dates("2010-12-01T08:26:00.000000", "2010-12-01 08:28:00").silver["invoice_ts"].to_list() == [
        datetime(2010, 12, 1, 8, 26),
        datetime(2010, 12, 1, 8, 28),
    ]


def test_a_file_mixing_four_and_two_digit_years_reads_each_with_its_own_year() -> None:
    assert with_dates("1/2/2010 8:26", "12/13/10 8:26").silver["invoice_ts"].to_list() == [
        datetime(2010, 1, 2, 8, 26),
        datetime(2010, 12, 13, 8, 26),
    ], "DuckDB's %Y alone would read 12/13/10 as the year 10"


def test_a_year_of_fewer_than_four_digits_is_a_bad_date_not_an_ancient_one() -> None:
    result = with_dates("1/2/2010 8:26", "1/2/201 8:26")
    assert result.silver["invoice_ts"].to_list() == [datetime(2010, 1, 2, 8, 26)]
    assert result.rejected.select("row_number", "reason").rows() == [(2, "bad_invoice_date")]
