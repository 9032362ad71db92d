"""Properties of the reader and of silver's numbers, over inputs Hypothesis makes up.

Any rows written as CSV, whatever the delimiter, line ending or quoting, read back as the same records with the
same text; and whatever text a quantity or a unit price holds, silver never types a line amount that is not finite.
"""

from __future__ import annotations

import csv
import io
import math
import tempfile
from pathlib import Path
from typing import Literal

import polars as pl
from conftest import UCI_HEADER
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_reader import raw_rows
from test_silver_numbers import prices

from medallion import reader
from medallion.reader.columns import CANONICAL_COLUMNS

HEADER = UCI_HEADER.split(",")
FIELDS = [name for name in CANONICAL_COLUMNS if name not in ("row_number", "source_index", "parse_error")]

# Text a field may hold: letters, digits, punctuation, accents, every delimiter and quote, but no line break.
field_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="\ufeff")
    | st.sampled_from([",", ";", "\t", "|", '"', "'", " "]),
    min_size=1,
    max_size=12,
).filter(lambda text: text == text.strip())
row = st.lists(field_text, min_size=len(HEADER), max_size=len(HEADER))
Quoting = Literal[0, 1]  # csv.QUOTE_MINIMAL, csv.QUOTE_ALL


def written(rows: list[list[str]], delimiter: str, newline: str, quoting: Quoting) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator=newline, quoting=quoting).writerows([HEADER, *rows])
    return buffer.getvalue().encode()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(row, min_size=1, max_size=8),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
)
def test_rows_written_as_csv_read_back_with_the_same_fields(
    rows: list[list[str]], delimiter: str, newline: str, quoting: Quoting
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sales.csv"
        path.write_bytes(written(rows, delimiter, newline, quoting))
        read = raw_rows(reader.profile_file(path), Path(folder) / "staging")
    assert read["row_number"].to_list() == list(range(1, len(rows) + 1))
    assert read["parse_error"].to_list() == [None] * len(rows)
    assert [list(record) for record in read.select(FIELDS).iter_rows()] == rows


number_text = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda value: f"{value:,.2f}"),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["inf", "-inf", "nan", "NaN", "Infinity", "1e308", "-1e308", "1.7976931348623157e308", "1,234"]),
    st.from_regex(r"\A[£$€ ]?[+-]?[0-9.,]{1,25}(e[+-]?[0-9]{1,4})?\Z"),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pairs=st.lists(st.tuples(number_text, number_text), min_size=1, max_size=6))
def test_silver_never_types_an_amount_that_is_not_finite(pairs: list[tuple[str, str]]) -> None:
    quantities, unit_prices = zip(*pairs, strict=True)
    split = prices(*unit_prices, quantities=quantities)
    amounts = split.silver.select(
        (pl.col("quantity").cast(pl.Float64) * pl.col("unit_price").cast(pl.Float64)).alias("amount"), "line_amount"
    )
    for amount, line_amount in amounts.iter_rows():
        assert math.isfinite(amount) and math.isfinite(float(line_amount)), split.silver
    assert split.silver.height + split.rejected.height == len(pairs)
