"""How silver reads a quantity or a unit price: with the decimal mark the file's own numbers show, and only within
bounds, so that a number is read as written or its row is rejected with a reason, never silently changed.

A value whose form shows its decimal mark is read as it shows it (`1.234,50` and `1,234.50` are both 1234.5). A
value whose form does not (`1,234` is 1234 where commas group thousands, 1.234 where they mark decimals) is read
with the mark the file's other quantities and unit prices show, and rejected as ambiguous where they show none or
both. The file's mark and the bounds reach the typed SQL in one DuckDB variable, which DuckDB folds to a constant
when it plans a statement: only the reading of the file's mark is left, and a number stays a function of its one
column, evaluated once per distinct value.
"""

from __future__ import annotations

import re
from enum import StrEnum

RULES_VARIABLE = "silver_number_rules"
_RULES = f"getvariable('{RULES_VARIABLE}')"
MAX_ABS_QUANTITY = f"{_RULES}.max_abs_quantity"
MAX_ABS_UNIT_PRICE = f"{_RULES}.max_abs_unit_price"


class DecimalMark(StrEnum):
    """What a file's quantities and unit prices show of their decimal mark."""

    POINT = "point"  # `2.55` or `1,234.50`: a comma groups thousands
    COMMA = "comma"  # `2,55` or `1.234,50`: a point groups thousands
    UNKNOWN = "unknown"  # neither: a point marks decimals, as CSV readers take it; a grouping comma is ambiguous
    MIXED = "mixed"  # both: each value is read as its own form shows, an ambiguous one is rejected


# One to three digits, a separator, three digits: a group of thousands as much as a decimal fraction. A leading
# zero (`0,125`) is no group of thousands.
AMBIGUOUS = r"[+-]?[1-9]\d{0,2}[.,]\d{3}"


def _forms(group: str, decimal: str) -> str:
    """Numbers that show their marks: thousands grouped by `group`, or a fraction after `decimal`, or both."""
    g, d = re.escape(group), re.escape(decimal)
    return rf"[+-]?(?:\d{{1,3}}(?:{g}\d{{3}})+(?:{d}\d*)?|\d+{d}\d*|{d}\d+)"


COMMA_FORMS = _forms(".", ",")
POINT_FORMS = _forms(",", ".")
# What silver drops from a number before reading it: currency symbols and spaces.
_NOISE = r"[£$€\s]"


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def number_sql(text: str) -> str:
    """The DOUBLE that `text` (a trimmed SQL text expression, missing values NULL) writes, read with the file's
    decimal mark; NULL where it writes no number or an ambiguous one. On a file whose mark is the point it is a
    plain cast once symbols, spaces and grouping commas are dropped."""
    kept = f"regexp_replace({text}, {_literal(_NOISE)}, '', 'g')"
    mixed = f"""CASE WHEN regexp_full_match({kept}, {_literal(AMBIGUOUS)}) THEN NULL
                 WHEN regexp_full_match({kept}, {_literal(COMMA_FORMS)})
                    THEN replace(replace({kept}, '.', ''), ',', '.')
                 ELSE replace({kept}, ',', '') END"""
    return f"""TRY_CAST(CASE {_RULES}.decimal_mark
            WHEN 'point' THEN regexp_replace({text}, '[£$€,\\s]', '', 'g')
            WHEN 'comma' THEN replace(regexp_replace({text}, '[£$€.\\s]', '', 'g'), ',', '.')
            WHEN 'unknown' THEN {kept}
            ELSE {mixed} END AS DOUBLE)"""


def ambiguous_sql(text: str) -> str:
    """Whether `text` (trimmed) has a form whose reading depends on the decimal mark."""
    return f"regexp_full_match(regexp_replace({text}, {_literal(_NOISE)}, '', 'g'), {_literal(AMBIGUOUS)})"


def number_rules_sql(source: str) -> str:
    """The statement setting the variable silver's typed SQL reads for one file: the decimal mark its quantities
    and unit prices show, and the bounds given as its two parameters, the largest quantity and the largest unit
    price in absolute value. `source` is an identifier or a parenthesised query of the caller's own making.

    Each kind of evidence stops at its first value; a cheap test leaves the regular expressions to the values with
    a comma or a second point, few in most files."""
    comma = _shows(source, COMMA_FORMS, "contains(v, ',') OR v LIKE '%.%.%'")
    point = _shows(source, POINT_FORMS, "contains(v, '.') OR contains(v, ',')")
    marks = (
        f"CASE WHEN comma AND point THEN '{DecimalMark.MIXED}' WHEN comma THEN '{DecimalMark.COMMA}' "
        f"WHEN point THEN '{DecimalMark.POINT}' ELSE '{DecimalMark.UNKNOWN}' END"
    )
    return f"""SET VARIABLE {RULES_VARIABLE} = (
        SELECT {{'decimal_mark': {marks}, 'max_abs_quantity': ?::BIGINT, 'max_abs_unit_price': ?::DOUBLE}}
        FROM (SELECT {comma} AS comma, {point} AS point))"""  # noqa: S608 - built from constants and `source`


def _shows(source: str, forms: str, candidate: str) -> str:
    number = "regexp_replace(v, '[£$€\\s\\x{0B}\\x{A0}]', '', 'g')"
    return f"""EXISTS (
            SELECT 1 FROM (SELECT quantity AS v FROM {source} UNION ALL SELECT unit_price FROM {source})
            WHERE ({candidate}) AND regexp_full_match({number}, {_literal(forms)})
                AND NOT regexp_full_match({number}, {_literal(AMBIGUOUS)}))"""  # noqa: S608 - see number_rules_sql
