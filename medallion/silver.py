"""Bronze text rows to typed, cleaned silver rows: pure Polars, no I/O."""

from __future__ import annotations

import re

import polars as pl
from pydantic import BaseModel

from medallion.errors import BadInputError
from medallion.reader import CANONICAL_COLUMNS
from medallion.settings import DateOrder

MISSING_TEXT = ("", "nan", "NaN", "NAN", "NA", "N/A", "null", "NULL", "None")

NON_PRODUCT_CODES = frozenset(
    {
        "POST",
        "DOT",
        "M",
        "D",
        "C2",
        "C3",
        "S",
        "B",
        "CRUK",
        "PADS",
        "BANK CHARGES",
        "AMAZONFEE",
        "ADJUST",
        "ADJUST2",
        "TEST001",
        "TEST002",
    }
)
NON_PRODUCT_PATTERN = r"^(?:GIFT_\d{4}_\d+|DCGS.*)$"


def is_non_product_code(stock_code: str) -> bool:
    """Postage, fees, adjustments, gift vouchers and the like: stock codes that are not goods."""
    code = stock_code.strip().upper()
    return code in NON_PRODUCT_CODES or re.match(NON_PRODUCT_PATTERN, code) is not None

COUNTRY_ALIASES: dict[str, str] = {
    "EIRE": "Ireland",
    "RSA": "South Africa",
    "USA": "United States",
    "U.S.A.": "United States",
    "US": "United States",
    "UK": "United Kingdom",
    "U.K.": "United Kingdom",
    "GREAT BRITAIN": "United Kingdom",
}

# Dates that contradict a file's evident day/month order are treated as bad values while they stay this rare.
CONTRADICTION_SHARE = 0.01

REJECT_REASONS = (
    "malformed_row",
    "missing_invoice_no",
    "missing_stock_code",
    "bad_quantity",
    "bad_unit_price",
    "bad_invoice_date",
    "missing_country",
)

# The columns a silver split carries; file_id, source_file and currency are constants added when it is published.
SILVER_COLUMNS: tuple[str, ...] = (
    "row_number",
    "invoice_no",
    "stock_code",
    "description",
    "quantity",
    "unit_price",
    "line_amount",
    "customer_id",
    "country",
    "country_raw",
    "invoice_ts",
    "invoice_date",
    "year",
    "month",
    "quarter",
    "day_of_week",
    "is_weekend",
    "transaction_type",
    "is_cancellation",
    "is_bad_debt",
    "is_non_product",
    "is_guest",
    "is_zero_price",
)
REJECTED_COLUMNS: tuple[str, ...] = ("row_number", "reason", *CANONICAL_COLUMNS)


class DateParsing(BaseModel):
    """How one file writes its invoice dates: the strptime formats used and where the day/month order came from."""

    formats: list[str]
    order: DateOrder | None
    order_source: str


class SilverSplit(BaseModel, arbitrary_types_allowed=True):
    silver: pl.DataFrame
    rejected: pl.DataFrame
    duplicate_rows: int


_DMY_SHAPE = re.compile(r"^(9{1,2})([/.\-])(9{1,2})\2(9{4}|9{2})(.*)$")
_YMD_SHAPE = re.compile(r"^(9{4})([/.\-])(9{1,2})\2(9{1,2})(.*)$")
_TIME_SHAPES = {
    "": "",
    " 9:99": " %H:%M",
    " 99:99": " %H:%M",
    " 9:99:99": " %H:%M:%S",
    " 99:99:99": " %H:%M:%S",
}


def date_parsing(dates: pl.Series, ambiguous_order: DateOrder, file_name: str = "file") -> DateParsing:
    """Decide a file's date formats from the shapes of its distinct date strings, never guessing the order."""
    distinct = dates.drop_nulls().str.strip_chars().unique()
    shapes = distinct.str.replace_all(r"\d", "9").str.replace(r"[ T](9{1,2}:99(?::99)?)(?:\.9+)?Z?$", " $1").unique()
    first = distinct.str.extract(r"^(\d{1,2})[/.\-]\d{1,2}[/.\-]\d{2,4}", 1).cast(pl.Int32, strict=False)
    second = distinct.str.extract(r"^\d{1,2}[/.\-](\d{1,2})[/.\-]\d{2,4}", 1).cast(pl.Int32, strict=False)
    order: DateOrder | None = None
    order_source = "not needed"
    if first.drop_nulls().len():
        # A value with both numbers above 12 is invalid in either order and proves nothing.
        day_first = int(((first > 12) & (second <= 12)).sum())
        month_first = int(((second > 12) & (first <= 12)).sum())
        if day_first and month_first:
            if min(day_first, month_first) > CONTRADICTION_SHARE * max(day_first, month_first):
                raise BadInputError(
                    f"{file_name}: invoice dates mix day-first and month-first orders "
                    f"({day_first} distinct dates read only day-first, {month_first} only month-first)"
                )
            order = DateOrder.DAY_FIRST if day_first > month_first else DateOrder.MONTH_FIRST
            order_source = f"detected; {min(day_first, month_first)} contradicting dates rejected"
        elif day_first:
            order, order_source = DateOrder.DAY_FIRST, "detected"
        elif month_first:
            order, order_source = DateOrder.MONTH_FIRST, "detected"
        else:
            order, order_source = ambiguous_order, "AMBIGUOUS_DATE_ORDER setting"
    formats: list[str] = []
    for shape in shapes.to_list():
        date_format = _format_of_shape(shape, order)
        if date_format is not None and date_format not in formats:
            formats.append(date_format)
    return DateParsing(formats=formats, order=order, order_source=order_source)


def _format_of_shape(shape: str, order: DateOrder | None) -> str | None:
    ymd = _YMD_SHAPE.match(shape)
    if ymd:
        _, separator, _, _, rest = ymd.groups()
        time = _TIME_SHAPES.get(rest.replace("T", " "))
        return None if time is None else f"%Y{separator}%m{separator}%d{time}"
    dmy = _DMY_SHAPE.match(shape)
    if dmy and order is not None:
        _, separator, _, year, rest = dmy.groups()
        time = _TIME_SHAPES.get(rest)
        if time is None:
            return None
        year_format = "%Y" if len(year) == 4 else "%y"
        day_month = ("%d", "%m") if order is DateOrder.DAY_FIRST else ("%m", "%d")
        return f"{day_month[0]}{separator}{day_month[1]}{separator}{year_format}{time}"
    return None


def _text(name: str) -> pl.Expr:
    value = pl.col(name).str.strip_chars()
    return pl.when(value.is_in(MISSING_TEXT)).then(None).otherwise(value)


def _invoice_timestamp(parsing: DateParsing) -> pl.Expr:
    normalised = (
        pl.col("invoice_date")
        .str.strip_chars()
        .str.replace(r"^(\d{4}-\d{1,2}-\d{1,2})T", "$1 ")
        .str.replace(r"(\d{1,2}:\d{2}(?::\d{2})?)(?:\.\d+)?Z?$", "$1")
    )
    if not parsing.formats:
        return pl.lit(None, pl.Datetime("us"))
    parsed = [normalised.str.to_datetime(fmt, strict=False, time_unit="us") for fmt in parsing.formats]
    return pl.coalesce(parsed) if len(parsed) > 1 else parsed[0]


def _number(name: str) -> pl.Expr:
    return _text(name).str.replace_all(r"[£$€,\s]", "")


def parsed_dates(distinct_dates: pl.Series, parsing: DateParsing) -> pl.DataFrame:
    """Each distinct date string of a file with its timestamp (null when it fits none of the file's formats).

    Files repeat the same invoice time on many lines, so each string is parsed once.
    """
    distinct = distinct_dates.drop_nulls().unique().alias("invoice_date").to_frame()
    return distinct.with_columns(_invoice_timestamp(parsing).alias("invoice_ts"))


def typed_rows(bronze: pl.LazyFrame, dates: pl.DataFrame, duplicate_rows: pl.Series) -> pl.LazyFrame:
    """Bronze rows with typed, derived and flag columns, plus `is_duplicate` and `reject_reason`.

    `dates` maps the file's date strings to timestamps (`parsed_dates`); `duplicate_rows` are the row numbers,
    across the whole file, of exact repeats of an earlier line.
    """
    quantity_text = _number("quantity")
    quantity_float = quantity_text.cast(pl.Float64, strict=False)
    quantity = pl.when(quantity_float == quantity_float.round(0)).then(quantity_float.cast(pl.Int64, strict=False))
    invoice_no = _text("invoice_no").str.to_uppercase()
    stock_code = _text("stock_code").str.to_uppercase()
    country_raw = _text("country")
    typed = bronze.with_columns(
        pl.col("row_number").is_in(duplicate_rows.implode()).alias("is_duplicate"),
        invoice_no.alias("invoice_no_clean"),
        stock_code.alias("stock_code_clean"),
        _text("description").alias("description_clean"),
        quantity.alias("quantity_typed"),
        _number("unit_price").cast(pl.Float64, strict=False).alias("unit_price_typed"),
        _text("customer_id").str.replace(r"\.0+$", "").alias("customer_id_clean"),
        country_raw.alias("country_raw_clean"),
        country_raw.str.to_uppercase()
        .replace_strict(COUNTRY_ALIASES, default=country_raw, return_dtype=pl.String)
        .alias("country_clean"),
        pl.col("invoice_date")
        .replace_strict(dates["invoice_date"], dates["invoice_ts"], default=None, return_dtype=pl.Datetime("us"))
        .alias("invoice_ts"),
    )
    reason = (
        pl.when(pl.col("parse_error").is_not_null())
        .then(pl.lit("malformed_row"))
        .when(pl.col("invoice_no_clean").is_null())
        .then(pl.lit("missing_invoice_no"))
        .when(pl.col("stock_code_clean").is_null())
        .then(pl.lit("missing_stock_code"))
        .when(pl.col("quantity_typed").is_null())
        .then(pl.lit("bad_quantity"))
        .when(pl.col("unit_price_typed").is_null() | pl.col("unit_price_typed").is_infinite())
        .then(pl.lit("bad_unit_price"))
        .when(pl.col("invoice_ts").is_null())
        .then(pl.lit("bad_invoice_date"))
        .when(pl.col("country_clean").is_null())
        .then(pl.lit("missing_country"))
        .otherwise(None)
    )
    ts = pl.col("invoice_ts")
    return typed.with_columns(
        reason.alias("reject_reason"),
        (pl.col("quantity_typed") * pl.col("unit_price_typed")).round(2).alias("line_amount"),
        ts.dt.date().alias("invoice_day"),
        ts.dt.year().cast(pl.Int32).alias("year"),
        ts.dt.month().cast(pl.Int32).alias("month"),
        ts.dt.quarter().cast(pl.Int32).alias("quarter"),
        ts.dt.weekday().cast(pl.Int32).alias("day_of_week"),
        (ts.dt.weekday() >= 6).alias("is_weekend"),
        pl.col("invoice_no_clean").str.starts_with("C").alias("is_cancellation"),
        pl.col("invoice_no_clean").str.starts_with("A").alias("is_bad_debt"),
        (
            pl.col("stock_code_clean").is_in(NON_PRODUCT_CODES)
            | pl.col("stock_code_clean").str.contains(NON_PRODUCT_PATTERN)
        ).alias("is_non_product"),
        pl.col("customer_id_clean").is_null().alias("is_guest"),
        (pl.col("unit_price_typed") == 0).alias("is_zero_price"),
    )


def silver_frames(typed: pl.LazyFrame) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Silver rows, and rejected rows with their reason; exact repeats go to neither."""
    kept = typed.filter(~pl.col("is_duplicate"))
    silver = kept.filter(pl.col("reject_reason").is_null()).select(
        "row_number",
        pl.col("invoice_no_clean").alias("invoice_no"),
        pl.col("stock_code_clean").alias("stock_code"),
        pl.col("description_clean").alias("description"),
        pl.col("quantity_typed").alias("quantity"),
        pl.col("unit_price_typed").alias("unit_price"),
        "line_amount",
        pl.col("customer_id_clean").alias("customer_id"),
        pl.col("country_clean").alias("country"),
        pl.col("country_raw_clean").alias("country_raw"),
        "invoice_ts",
        pl.col("invoice_day").alias("invoice_date"),
        "year",
        "month",
        "quarter",
        "day_of_week",
        "is_weekend",
        pl.when(pl.col("is_cancellation"))
        .then(pl.lit("return"))
        .when(pl.col("is_bad_debt"))
        .then(pl.lit("adjustment"))
        .otherwise(pl.lit("sale"))
        .alias("transaction_type"),
        "is_cancellation",
        "is_bad_debt",
        "is_non_product",
        "is_guest",
        "is_zero_price",
    )
    rejected = kept.filter(pl.col("reject_reason").is_not_null()).select(
        "row_number", pl.col("reject_reason").alias("reason"), *CANONICAL_COLUMNS
    )
    return silver, rejected


def silver_split(typed: pl.LazyFrame) -> SilverSplit:
    """Silver rows, rejected rows and the count of exact repeats, collected together."""
    silver, rejected = silver_frames(typed)
    repeats = typed.select(pl.col("is_duplicate").sum())
    silver_rows, rejected_rows, repeat_count = pl.collect_all([silver, rejected, repeats])
    return SilverSplit(silver=silver_rows, rejected=rejected_rows, duplicate_rows=int(repeat_count.item()))
