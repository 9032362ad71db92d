"""Data quality measured on the rows as received (before cleaning), as counts and weighted percentages."""

from __future__ import annotations

import polars as pl
from pydantic import BaseModel

from medallion.reader import CANONICAL_COLUMNS

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


def quality_counts(typed: pl.LazyFrame, inconsistent_invoices: pl.Series) -> QualityCounts:
    """Completeness, validity, uniqueness and consistency counts of typed rows (duplicates included).

    `inconsistent_invoices` are the file's invoices that name more than one customer or country.
    """
    return counts_of(quality_summary(typed, inconsistent_invoices).collect())


def counts_of(summary: pl.DataFrame) -> QualityCounts:
    """QualityCounts from the one-row frame `quality_summary` gives."""
    row = summary.row(0, named=True)
    return QualityCounts(cells=row["rows"] * len(CANONICAL_COLUMNS), **row)


def quality_summary(typed: pl.LazyFrame, inconsistent_invoices: pl.Series) -> pl.LazyFrame:
    """One row of quality counts, lazily, so it can be collected together with the silver rows."""
    filled = pl.sum_horizontal(
        [
            (pl.col(column).is_not_null() & ~pl.col(column).str.strip_chars().is_in(["", "nan", "NaN", "NA"]))
            .cast(pl.Int64)
            .sum()
            for column in CANONICAL_COLUMNS
        ]
    )
    quantity = pl.col("quantity_typed")
    price = pl.col("unit_price_typed")
    valid = pl.col("reject_reason").is_null() & (quantity != 0) & ((price > 0) | (pl.col("is_bad_debt") & (price < 0)))
    sign_consistent = (
        pl.when(pl.col("is_cancellation"))
        .then(quantity < 0)
        .when(pl.col("is_bad_debt"))
        .then(quantity > 0)
        .otherwise(quantity > 0)
    )
    one_order = ~pl.col("invoice_no_clean").is_in(inconsistent_invoices.implode())
    checked = pl.col("reject_reason").is_null()
    return typed.select(
        pl.len().alias("rows"),
        filled.alias("filled_cells"),
        valid.fill_null(False).cast(pl.Int64).sum().alias("valid_rows"),
        (~pl.col("is_duplicate")).cast(pl.Int64).sum().alias("unique_rows"),
        checked.cast(pl.Int64).sum().alias("checked_rows"),
        (checked & sign_consistent & one_order).fill_null(False).cast(pl.Int64).sum().alias("consistent_rows"),
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
