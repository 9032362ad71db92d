"""Quality in the warehouse: a file's counts taken while its silver rows are published, and `ops.quality`."""

from __future__ import annotations

import duckdb

from medallion import quality, silver
from medallion import silver_overlaps as overlaps
from medallion.quality import QualityCounts, QualityScores
from medallion.warehouse.bronze import bronze_table
from medallion.warehouse.sql import first_row, now, scalar, transaction

_OUTSIDE_SILVER_TABLE = "file_outside_silver"
_COUNT_NAMES = ("rows", "cells", "filled_cells", "valid_rows", "unique_rows", "checked_rows", "consistent_rows")


def file_quality_counts(
    connection: duckdb.DuckDBPyConnection,
    file_id: str,
    key: int,
    date_formats: list[str],
    duplicate_rows: int,
    lines_table: str,
    rejected_table: str,
) -> QualityCounts:
    """The file's quality counts over every row as received: its silver rows read from `lines_table`, and only the
    rows silver left out (rejected rows in `rejected_table`, repeats and overlaps) typed again. Needs silver's
    per-file tables of repeats, inconsistent invoices and shared lines; the table names are the caller's
    constants."""
    outside_rows = scalar(
        connection,
        f"""CREATE OR REPLACE TEMP TABLE {_OUTSIDE_SILVER_TABLE} AS
            SELECT row_number FROM {silver.DUPLICATES_TABLE}
            UNION ALL SELECT row_number FROM {rejected_table} WHERE file_id = ?
            UNION ALL SELECT row_number FROM {overlaps.SHARED_LINES_TABLE} WHERE is_overlap""",  # noqa: S608
        [file_id],
    )
    rows = [
        first_row(
            connection,
            quality.silver_quality_sql(f"({silver.with_derived_columns(lines_table)})"),
            {"file_key": key},
        )
        or {}
    ]
    if outside_rows:
        # Typing rows again is the costly part of a small file's counts; a file whose rows are all in silver needs none.
        # The rows are found by row id (a row's number less one), faster than by comparing every row's number.
        outside = f"""(SELECT rowid + 1 AS row_number, * FROM {bronze_table(file_id)}
                       WHERE rowid IN (SELECT row_number - 1 FROM {_OUTSIDE_SILVER_TABLE}))"""  # noqa: S608
        rows.append(first_row(connection, quality.quality_sql(silver.typed_rows_sql(outside, date_formats))) or {})
    return quality.counts_of(rows, duplicate_rows)


def record_file_quality(
    connection: duckdb.DuckDBPyConnection,
    *,
    file_id: str,
    counts: QualityCounts,
    scores: QualityScores,
    threshold: float,
) -> None:
    """Store a file's measurement, replacing its previous one."""
    with transaction(connection):
        _replace_file_quality(connection, file_id, counts, scores, threshold)


def record_file_and_dataset_quality(
    connection: duckdb.DuckDBPyConnection,
    *,
    file_id: str,
    counts: QualityCounts,
    scores: QualityScores,
    threshold: float,
    weights: dict[str, float],
) -> QualityScores:
    """Store the file's measurement (replacing its previous one) and the whole dataset's measured with it, in one
    transaction; returns the dataset's scores."""
    with transaction(connection):
        _replace_file_quality(connection, file_id, counts, scores, threshold)
        return record_dataset_quality(connection, threshold=threshold, weights=weights)


def _replace_file_quality(
    connection: duckdb.DuckDBPyConnection, file_id: str, counts: QualityCounts, scores: QualityScores, threshold: float
) -> None:
    connection.execute("DELETE FROM ops.quality WHERE scope = 'file' AND file_id = ?", [file_id])
    insert_quality(connection, "file", file_id, counts, scores, threshold)


def record_dataset_quality(
    connection: duckdb.DuckDBPyConnection, *, threshold: float, weights: dict[str, float]
) -> QualityScores:
    """Score every file now in silver together and store it as a `dataset` measurement (one statement, or inside
    the caller's transaction); returns the scores."""
    counts = live_quality_counts(connection)
    scores = quality.quality_scores(counts, weights)
    insert_quality(connection, "dataset", None, counts, scores, threshold)
    return scores


def insert_quality(
    connection: duckdb.DuckDBPyConnection,
    scope: str,
    file_id: str | None,
    counts: QualityCounts,
    scores: QualityScores,
    threshold: float,
) -> None:
    """Add one measurement to `ops.quality`, inside the caller's transaction."""
    connection.execute(
        "INSERT INTO ops.quality VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            scope,
            file_id,
            now(),
            *(getattr(counts, name) for name in _COUNT_NAMES),
            scores.completeness,
            scores.validity,
            scores.uniqueness,
            scores.consistency,
            scores.score,
            threshold,
            scores.score >= threshold,
        ],
    )


def live_quality_counts(connection: duckdb.DuckDBPyConnection) -> QualityCounts:
    """The quality counts of every file whose rows are in silver now, added up."""
    row = first_row(
        connection,
        """SELECT count(*) AS files, coalesce(sum(q.rows), 0), coalesce(sum(q.cells), 0),
                  coalesce(sum(q.filled_cells), 0), coalesce(sum(q.valid_rows), 0), coalesce(sum(q.unique_rows), 0),
                  coalesce(sum(q.checked_rows), 0), coalesce(sum(q.consistent_rows), 0)
           FROM ops.quality q JOIN ops.files f USING (file_id)
           WHERE q.scope = 'file' AND f.status IN ('silver', 'loaded')""",
    )
    assert row is not None
    values = list(row.values())[1:]
    return QualityCounts(**dict(zip(_COUNT_NAMES, (int(value) for value in values), strict=True)))
