"""Data quality measured on the rows as received (before cleaning), as counts and weighted percentages."""

from __future__ import annotations

from pydantic import BaseModel

from medallion.reader import CANONICAL_COLUMNS
from medallion.silver import INCONSISTENT_TABLE, MISSING_TEXT_SQL, TYPES_SQL

DIMENSIONS = ("completeness", "validity", "uniqueness", "consistency")


class QualityCounts(BaseModel):
    """Counts behind the quality percentages; counts add up across files, percentages do not."""

    rows: int
    cells: int
    filled_cells: int
    valid_rows: int
    unique_rows: int
    checked_rows: int
    consistent_rows: int

    def __add__(self, other: QualityCounts) -> QualityCounts:
        return QualityCounts(**{name: getattr(self, name) + getattr(other, name) for name in type(self).model_fields})


class QualityScores(BaseModel):
    completeness: float
    validity: float
    uniqueness: float
    consistency: float
    score: float


# A cell is filled when silver would not read it as missing: present, and not blank or a word for nothing.
FILLED_SQL = "{column} IS NOT NULL AND t_{column} NOT IN " + MISSING_TEXT_SQL

# Columns a silver row has filled by definition: it is typed, so none of them was missing.
REQUIRED_COLUMNS = ("invoice_no", "stock_code", "quantity", "invoice_date", "unit_price", "country")
# The rest may be missing in silver, where missing reads as NULL: silver_quality_sql counts them.
OPTIONAL_COLUMNS = ("description", "customer_id")
if set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS) != set(CANONICAL_COLUMNS):
    raise RuntimeError("quality: required and optional columns must be the canonical columns")


def quality_sql(typed: str) -> str:
    """One row of quality counts over `typed`, a query giving `silver.typed_rows_sql`'s columns: the rows as
    received, repeats included. `unique_rows` comes from the file's repeats, not from this query.

    A typed row is consistent when its sign fits its kind (a return takes goods back) and its invoice is one order:
    the invoices in `INCONSISTENT_TABLE` name more than one customer or country in the file, or are invoices silver
    had already that the file brought back with other lines (`silver_overlaps`).
    """
    filled = " + ".join(f"count(*) FILTER (WHERE {FILLED_SQL.format(column=column)})" for column in CANONICAL_COLUMNS)
    return f"""
    SELECT count(*) AS rows,
        {filled} AS filled_cells,
        count(*) FILTER (WHERE {TYPES_SQL} AND quantity_typed <> 0
                         AND (unit_price_typed > 0 OR (is_bad_debt AND unit_price_typed < 0))) AS valid_rows,
        count(*) FILTER (WHERE {TYPES_SQL}) AS checked_rows,
        count(*) FILTER (WHERE {TYPES_SQL}
                         AND CASE WHEN is_cancellation THEN quantity_typed < 0 ELSE quantity_typed > 0 END
                         AND invoice_no_clean NOT IN (SELECT invoice_no FROM {INCONSISTENT_TABLE}))
            AS consistent_rows
    FROM ({typed})"""  # noqa: S608 - built from constants and the caller's query only


def silver_quality_sql(silver_table: str) -> str:
    """`quality_sql`'s row for one file's rows already in `silver_table` (the file's key is `$file_key`), read from
    their typed columns instead of typing them again: each of them types, and has its required columns filled.
    """
    return f"""
    SELECT count(*) AS rows,
        {len(REQUIRED_COLUMNS)} * count(*) + {" + ".join(f"count({column})" for column in OPTIONAL_COLUMNS)}
            AS filled_cells,
        count(*) FILTER (WHERE quantity <> 0 AND (unit_price > 0 OR (is_bad_debt AND unit_price < 0))) AS valid_rows,
        count(*) AS checked_rows,
        count(*) FILTER (WHERE CASE WHEN is_cancellation THEN quantity < 0 ELSE quantity > 0 END
                         AND invoice_no NOT IN (SELECT invoice_no FROM {INCONSISTENT_TABLE})) AS consistent_rows
    FROM {silver_table} WHERE file_key = $file_key"""  # noqa: S608 - built from constants and the caller's identifier


def counts_of(rows: list[dict[str, int]], duplicate_rows: int) -> QualityCounts:
    """QualityCounts from rows of `quality_sql` or `silver_quality_sql` covering the file's rows between them,
    and the number of exact repeats in the file."""
    total = {name: sum(int(row[name]) for row in rows) for name in _SUMMED}
    return QualityCounts(
        rows=total["rows"],
        cells=total["rows"] * len(CANONICAL_COLUMNS),
        filled_cells=total["filled_cells"],
        valid_rows=total["valid_rows"],
        unique_rows=total["rows"] - duplicate_rows,
        checked_rows=total["checked_rows"],
        consistent_rows=total["consistent_rows"],
    )


_SUMMED = ("rows", "filled_cells", "valid_rows", "checked_rows", "consistent_rows")


def quality_scores(counts: QualityCounts, weights: dict[str, float]) -> QualityScores:
    """Percentages per dimension and their weighted overall score."""

    def percent(part: int, whole: int) -> float:
        return round(100.0 * part / whole, 2) if whole else 100.0

    dimensions = {
        "completeness": percent(counts.filled_cells, counts.cells),
        "validity": percent(counts.valid_rows, counts.rows),
        "uniqueness": percent(counts.unique_rows, counts.rows),
        "consistency": percent(counts.consistent_rows, counts.checked_rows),
    }
    total_weight = sum(weights[name] for name in DIMENSIONS)
    score = round(sum(dimensions[name] * weights[name] for name in DIMENSIONS) / total_weight, 2)
    return QualityScores(score=score, **dimensions)
