"""Data quality measured on the rows as received (before cleaning), as counts and weighted percentages."""

from __future__ import annotations

from pydantic import BaseModel

from medallion.reader import CANONICAL_COLUMNS
from medallion.silver import INCONSISTENT_TABLE, TYPES_SQL

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


def quality_sql(typed: str) -> str:
    """One row of quality counts over `typed`, a query giving `silver.typed_rows_sql`'s columns: the rows as
    received, repeats included. `unique_rows` comes from the file's repeats, not from this query.
    """
    filled = " + ".join(
        f"count(*) FILTER (WHERE {column} IS NOT NULL AND t_{column} NOT IN ('', 'nan', 'NaN', 'NA'))"
        for column in CANONICAL_COLUMNS
    )
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


def counts_of(row: dict[str, int], duplicate_rows: int) -> QualityCounts:
    """QualityCounts from the row of `quality_sql` and the number of exact repeats in the file."""
    rows = int(row["rows"])
    return QualityCounts(
        rows=rows,
        cells=rows * len(CANONICAL_COLUMNS),
        filled_cells=int(row["filled_cells"]),
        valid_rows=int(row["valid_rows"]),
        unique_rows=rows - duplicate_rows,
        checked_rows=int(row["checked_rows"]),
        consistent_rows=int(row["consistent_rows"]),
    )


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
