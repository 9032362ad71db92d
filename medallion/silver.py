"""Bronze text rows to typed, cleaned silver rows: the rules as DuckDB SQL, no I/O.

The row transforms are SQL so DuckDB runs them where the rows are, on every core, without moving them through
Python; the decisions taken once per file (date formats, day/month order) are Python over a few rows of evidence
that SQL gathers from the file's distinct dates.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import BaseModel

from medallion.countries import COUNTRY_ALIASES
from medallion.errors import BadInputError
from medallion.reader import CANONICAL_COLUMNS
from medallion.settings import DateOrder
from medallion.silver_numbers import MAX_ABS_QUANTITY, MAX_ABS_UNIT_PRICE, ambiguous_sql, number_sql

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
_NON_PRODUCT = re.compile(NON_PRODUCT_PATTERN)


def is_non_product_code(stock_code: str) -> bool:
    """Postage, fees, adjustments, gift vouchers and the like: stock codes that are not goods."""
    code = stock_code.strip().upper()
    return code in NON_PRODUCT_CODES or _NON_PRODUCT.match(code) is not None


# Dates that contradict a file's evident day/month order are treated as bad values while they stay this rare.
CONTRADICTION_SHARE = 0.01


class DateParsing(BaseModel):
    """How one file writes its invoice dates: the strptime formats used and where the day/month order came from."""

    formats: list[str]
    order: DateOrder | None
    order_source: str


_DMY_SHAPE = re.compile(r"^(9{1,2})([/.\-])(9{1,2})\2(9{4}|9{2})(.*)$")
_YMD_SHAPE = re.compile(r"^(9{4})([/.\-])(9{1,2})\2(9{1,2})(.*)$")
_TIME_SHAPES = {
    "": "",
    " 9:99": " %H:%M",
    " 99:99": " %H:%M",
    " 9:99:99": " %H:%M:%S",
    " 99:99:99": " %H:%M:%S",
}


def date_evidence_sql(source: str) -> str:
    """Per shape of `source`'s distinct invoice date strings (digits as 9, surrounding whitespace stripped): how
    many read only day-first (first number above 12), only month-first (second above 12), and start D/M/Y at all.

    DuckDB computes it where the dates are; a file has few shapes, so the decision in `date_parsing` is small.
    `source` is an identifier or a parenthesised query of the caller's own making, never user text.
    """
    day_month = "regexp_extract(s, '^(\\d{1,2})[/.\\-](\\d{1,2})[/.\\-]\\d{2,4}', ['first', 'second'])"
    return f"""
    WITH received AS (SELECT DISTINCT invoice_date FROM {source} WHERE invoice_date IS NOT NULL),
    stripped AS (SELECT DISTINCT {_trimmed("invoice_date")} AS s FROM received),
    numbered AS (
        SELECT translate(s, '0123456789', '9999999999') AS digits,
               TRY_CAST(parts.first AS INTEGER) AS first, TRY_CAST(parts.second AS INTEGER) AS second
        FROM (SELECT s, {day_month} AS parts FROM stripped))
    SELECT regexp_replace(digits, '[ T](9{{1,2}}:99(?::99)?)(?:\\.9+)?Z?$', ' \\1') AS shape,
           count(*) FILTER (WHERE first > 12 AND second <= 12) AS day_first,
           count(*) FILTER (WHERE second > 12 AND first <= 12) AS month_first,
           count(first) AS numbered
    FROM numbered GROUP BY shape ORDER BY shape"""  # noqa: S608 - built from constants and the caller's identifier


def date_parsing(
    evidence: Iterable[tuple[str, int, int, int]], ambiguous_order: DateOrder, file_name: str = "file"
) -> DateParsing:
    """Decide a file's date formats from the rows of `date_evidence_sql`, never guessing the order."""
    rows = list(evidence)
    day_first = sum(row[1] for row in rows)
    month_first = sum(row[2] for row in rows)
    order: DateOrder | None = None
    order_source = "not needed"
    if any(row[3] for row in rows):
        # A value with both numbers above 12 is invalid in either order and proves nothing.
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
    for shape, *_ in rows:
        date_format = _format_of_shape(shape, order)
        if date_format is not None and date_format not in formats:
            formats.append(date_format)
    # Dates are read with the first format that fits, and DuckDB's %Y also takes a two-digit year ("12/13/10" as
    # the year 10): two-digit-year formats go first, since %y never fits a four-digit year.
    formats.sort(key=lambda date_format: "%Y" in date_format)
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


# Columns silver derives from its stored columns alone, computed when read (`with_derived_columns`, behind the
# silver views), so loading a file neither writes nor computes them; the line amount stays stored, since gold reads
# it on every run.
DERIVED_COLUMNS: dict[str, tuple[str, str]] = {
    "invoice_date": ("DATE", "invoice_ts::DATE"),
    "year": ("INTEGER", "year(invoice_ts)"),
    "month": ("INTEGER", "month(invoice_ts)"),
    "quarter": ("INTEGER", "quarter(invoice_ts)"),
    "day_of_week": ("INTEGER", "isodow(invoice_ts)"),
    "is_weekend": ("BOOLEAN", "isodow(invoice_ts) >= 6"),
    "transaction_type": (
        "VARCHAR",
        "CASE WHEN starts_with(invoice_no, 'C') THEN 'return' WHEN starts_with(invoice_no, 'A') THEN 'adjustment'"
        " ELSE 'sale' END",
    ),
    "is_cancellation": ("BOOLEAN", "starts_with(invoice_no, 'C')"),
    "is_bad_debt": ("BOOLEAN", "starts_with(invoice_no, 'A')"),
    "is_guest": ("BOOLEAN", "customer_id IS NULL"),
    "is_zero_price": ("BOOLEAN", "unit_price = 0"),
}


def with_derived_columns(table: str, names: Iterable[str] = DERIVED_COLUMNS) -> str:
    """A query of `table`'s stored silver columns followed by the DERIVED_COLUMNS in `names` (all by default).
    `table` is the caller's own identifier, never user text."""
    derived = ", ".join(f"CAST({DERIVED_COLUMNS[name][1]} AS {DERIVED_COLUMNS[name][0]}) AS {name}" for name in names)
    return f"SELECT *, {derived} FROM {table}"  # noqa: S608 - constants and the caller's identifier


DUPLICATES_TABLE = "file_duplicates"
INCONSISTENT_TABLE = "file_inconsistent_invoices"

# Leading and trailing whitespace: ASCII whitespace (tabs, newlines, vertical tab) and the no-break space; rarer
# Unicode spaces stay. A regular expression, not trim(x, characters): DuckDB evaluates it once per dictionary
# entry instead of once per row.
_SURROUNDING_WHITESPACE = r"^[\s\x{0B}\x{A0}]+|[\s\x{0B}\x{A0}]+$"


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _literals(values: Iterable[str]) -> str:
    return "(" + ", ".join(_literal(value) for value in sorted(values)) + ")"


MISSING_TEXT_SQL = _literals(MISSING_TEXT)


def _trimmed(column: str) -> str:
    return f"regexp_replace({column}, {_literal(_SURROUNDING_WHITESPACE)}, '', 'g')"


def _missing_is_null(trimmed: str) -> str:
    return f"CASE WHEN {trimmed} IN {MISSING_TEXT_SQL} THEN NULL ELSE {trimmed} END"


def invoice_number_sql(column: str) -> str:
    """A received invoice number as silver stores it: trimmed, in upper case, NULL when missing."""
    return f"upper({_missing_is_null(_trimmed(column))})"


def _customer_id_of(text: str) -> str:
    """A customer id written as float text (`17850.0`) becomes `17850`."""
    return f"regexp_replace({text}, '\\.0+$', '')"


def _country_of(raw: str) -> str:
    """The standard name of a country as written (`raw` is trimmed already), matched on its upper case."""
    cases = " ".join(f"WHEN {_literal(alias)} THEN {_literal(name)}" for alias, name in COUNTRY_ALIASES.items())
    return f"CASE upper({raw}) {cases} ELSE {raw} END"


def typed_rows_sql(source: str, date_formats: list[str]) -> str:
    """A query over `source` (row_number, source_index, the canonical text columns, parse_error) giving typed,
    derived and flag columns, `is_duplicate` and `reject_reason`.

    Invoice dates are read with `date_formats` (from `date_parsing`), the first that fits. It reads what the
    caller makes for the file first: the tables `file_duplicates` (row numbers of exact repeats of an earlier
    line) and `file_inconsistent_invoices` (for quality), and the variable of its number rules
    (`silver_numbers.number_rules_sql`). `source` is an identifier or a parenthesised query of the caller's own
    making, never user text.
    """
    trimmed = ",\n            ".join(f"{_trimmed('s.' + name)} AS t_{name}" for name in CANONICAL_COLUMNS)
    return f"""
    WITH trimmed AS (
        SELECT s.*,
            s.row_number IN (SELECT row_number FROM {DUPLICATES_TABLE}) AS is_duplicate,
            {trimmed}
        FROM {source} s
    ),
    cleaned AS (
        SELECT *,
            upper({_missing_is_null("t_invoice_no")}) AS invoice_no_clean,
            upper({_missing_is_null("t_stock_code")}) AS stock_code_clean,
            {_missing_is_null("t_description")} AS description_clean,
            {number_sql(_missing_is_null("t_quantity"))} AS quantity_float,
            {number_sql(_missing_is_null("t_unit_price"))} AS unit_price_typed,
            {_customer_id_of(_missing_is_null("t_customer_id"))} AS customer_id_clean,
            {_missing_is_null("t_country")} AS country_raw_clean,
            {_invoice_timestamp_sql(date_formats)} AS invoice_ts
        FROM trimmed
    ),
    typed AS (
        SELECT *,
            CASE WHEN quantity_float = round(quantity_float) THEN TRY_CAST(quantity_float AS BIGINT) END
                AS quantity_typed,
            {_country_of("country_raw_clean")} AS country_clean,
            starts_with(invoice_no_clean, 'C') AS is_cancellation,
            starts_with(invoice_no_clean, 'A') AS is_bad_debt
        FROM cleaned
    )
    SELECT *,
        CASE WHEN parse_error IS NOT NULL THEN 'malformed_row'
             WHEN invoice_no_clean IS NULL THEN 'missing_invoice_no'
             WHEN stock_code_clean IS NULL THEN 'missing_stock_code'
             WHEN quantity_float IS NULL AND {ambiguous_sql("t_quantity")} THEN 'ambiguous_quantity'
             WHEN NOT coalesce(isfinite(quantity_float) AND quantity_float = round(quantity_float), false)
                THEN 'bad_quantity'
             WHEN quantity_typed IS NULL OR quantity_typed NOT BETWEEN -{MAX_ABS_QUANTITY} AND {MAX_ABS_QUANTITY}
                THEN 'quantity_out_of_range'
             WHEN unit_price_typed IS NULL AND {ambiguous_sql("t_unit_price")} THEN 'ambiguous_unit_price'
             WHEN unit_price_typed IS NULL OR NOT isfinite(unit_price_typed) THEN 'bad_unit_price'
             WHEN unit_price_typed NOT BETWEEN -{MAX_ABS_UNIT_PRICE} AND {MAX_ABS_UNIT_PRICE}
                THEN 'unit_price_out_of_range'
             WHEN invoice_ts IS NULL THEN 'bad_invoice_date'
             WHEN country_clean IS NULL THEN 'missing_country'
        END AS reject_reason,
        round_even(quantity_typed * unit_price_typed, 2) AS line_amount,
        stock_code_clean IN {_literals(NON_PRODUCT_CODES)}
            OR regexp_matches(stock_code_clean, {_literal(NON_PRODUCT_PATTERN)}) AS is_non_product
    FROM typed"""  # noqa: S608 - built from this module's constants and the caller's identifiers only


def _invoice_timestamp_sql(date_formats: list[str]) -> str:
    """The invoice date read with the file's formats, after turning ISO's `T` into a space and dropping
    fractions of a second and a trailing `Z`. A year before 1000 is a bad date: DuckDB's %Y also reads one to
    three digits (`1/2/201` as the year 201)."""
    if not date_formats:
        return "NULL::TIMESTAMP"
    normalised = (
        "regexp_replace(regexp_replace(t_invoice_date, '^(\\d{4}-\\d{1,2}-\\d{1,2})T', '\\1 '), "
        "'(\\d{1,2}:\\d{2}(?::\\d{2})?)(?:\\.\\d+)?Z?$', '\\1')"
    )
    formats = "[" + ", ".join(_literal(date_format) for date_format in date_formats) + "]"
    parsed = f"try_strptime({normalised}, {formats})"
    return f"CASE WHEN {parsed} >= TIMESTAMP '1000-01-01' THEN {parsed} END"


# `reject_reason IS NULL` as a conjunction: DuckDB then checks each part on the column's dictionary, where a
# CASE would evaluate every cleaning expression row by row. Within the bounds, a line amount and any sum of them
# stay finite (a NaN is outside any bounds).
TYPES_SQL = f"""parse_error IS NULL AND invoice_no_clean IS NOT NULL AND stock_code_clean IS NOT NULL
        AND quantity_typed IS NOT NULL AND quantity_typed BETWEEN -{MAX_ABS_QUANTITY} AND {MAX_ABS_QUANTITY}
        AND unit_price_typed IS NOT NULL AND unit_price_typed BETWEEN -{MAX_ABS_UNIT_PRICE} AND {MAX_ABS_UNIT_PRICE}
        AND invoice_ts IS NOT NULL AND country_clean IS NOT NULL"""


def silver_rows_sql(source: str, date_formats: list[str]) -> str:
    """Silver rows of `source` (see `typed_rows_sql`): neither rejected nor a repeat, under silver's names, with
    the stored columns only (the table derives DERIVED_COLUMNS)."""
    return f"""
    SELECT row_number,
        invoice_no_clean AS invoice_no,
        stock_code_clean AS stock_code,
        description_clean AS description,
        quantity_typed AS quantity,
        unit_price_typed AS unit_price,
        line_amount,
        customer_id_clean AS customer_id,
        country_clean AS country,
        country_raw_clean AS country_raw,
        invoice_ts,
        is_non_product
    FROM ({typed_rows_sql(source, date_formats)})
    WHERE {TYPES_SQL} AND NOT is_duplicate"""  # noqa: S608 - see typed_rows_sql


def rejected_rows_sql(source: str, date_formats: list[str]) -> str:
    """Rejected rows of `source` with their reason and their text as received; repeats go to neither side."""
    return f"""
    SELECT row_number, reject_reason AS reason, {", ".join(CANONICAL_COLUMNS)}
    FROM ({typed_rows_sql(source, date_formats)})
    WHERE NOT ({TYPES_SQL}) AND NOT is_duplicate"""  # noqa: S608 - see typed_rows_sql


_CONTENT = ", ".join(CANONICAL_COLUMNS)
_S_CONTENT = ", ".join(f"s.{column}" for column in CANONICAL_COLUMNS)


def duplicates_sql(source: str) -> str:
    """Row numbers of `source`'s exact repeats of an earlier line (every canonical column equal as received).

    Lines are first grouped by a hash, so only lines whose hash repeats are compared column by column.
    """
    return f"""
    WITH hashed AS (SELECT row_number, hash({_CONTENT}) AS line_hash FROM {source}),
    repeated AS (SELECT line_hash FROM hashed GROUP BY line_hash HAVING count(*) > 1),
    candidates AS (
        SELECT s.row_number, {_S_CONTENT}
        FROM {source} s SEMI JOIN repeated r ON hash({_S_CONTENT}) = r.line_hash)
    SELECT row_number FROM candidates
    QUALIFY row_number() OVER (PARTITION BY {_CONTENT} ORDER BY row_number) > 1"""  # noqa: S608 - see typed_rows_sql


def inconsistent_invoices_sql(source: str) -> str:
    """Invoices of `source` that name more than one customer or more than one country: an invoice is one order.

    The rows are first cut to their distinct combinations as received, and only those are cleaned. Rows without
    an invoice number are left out by the HAVING clause, not a WHERE clause, which DuckDB would push down into the
    scan to clean every row. "More than one" is a smallest value unlike the largest."""
    invoice = invoice_number_sql("invoice_no")
    customer = _customer_id_of(_missing_is_null(_trimmed("customer_id")))
    country = f"upper({_missing_is_null(_trimmed('country'))})"
    return f"""
    WITH combinations AS (SELECT DISTINCT invoice_no, customer_id, country FROM {source})
    SELECT {invoice} AS invoice_no FROM combinations
    GROUP BY 1
    HAVING count({invoice}) > 0
        AND (min(coalesce({customer}, '')) <> max(coalesce({customer}, ''))
             OR min(coalesce({country}, '')) <> max(coalesce({country}, '')))"""  # noqa: S608
