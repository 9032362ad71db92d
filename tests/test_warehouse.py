"""File-wide facts computed in a real DuckDB file: exact repeat lines, inconsistent invoices, batched reads."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
from test_silver import bronze

from medallion import warehouse
from medallion.reader import FileProfile


def profile(file_id: str = "a" * 64, name: str = "sales.csv") -> FileProfile:
    return FileProfile(
        path=Path(name),
        file_name=name,
        file_id=file_id,
        size_bytes=1,
        file_format="csv",
        compressed=False,
        encoding="utf-8",
        delimiter=",",
        layout="uci",
        source_columns=[],
        column_map={},
        index_column=None,
    )


def rows(*lines: tuple[str | None, ...]) -> pl.DataFrame:
    """Bronze batch rows as the reader yields them: no lineage columns yet."""
    return bronze(*lines).drop("file_id", "source_file")


def test_repeats_are_exact_lines_after_their_first_across_batches(tmp_path: Path) -> None:
    line = ("536365", "85123A", None, "6", "12/1/2010 8:26", "2.55", None, "France")
    near = ("536365", "85123A", None, "6", "12/1/2010 8:26", "2.55", None, "France ")
    other_file_line = rows(line)
    frame = rows(
        line,
        near,
        line,
        ("536366", "22633", "WARMER", "6", "12/1/2010 8:28", "1.85", "17850", "France"),
        line,
    )
    with warehouse.open_warehouse(tmp_path / "w.duckdb") as connection:
        warehouse.publish_bronze(
            connection,
            profile("b" * 64, "other.csv"),
            [other_file_line],
            flow_run_id=None,
            started_at=datetime(2026, 1, 1),
        )
        count, kept = warehouse.publish_bronze(
            connection,
            profile(),
            [frame.slice(0, 2), frame.slice(2, 3)],
            flow_run_id=None,
            started_at=datetime(2026, 1, 1),
        )
        context = warehouse.bronze_context(connection, "a" * 64)
        second_batch = warehouse.bronze_rows(connection, "a" * 64, 3, 4)
    assert (count, kept) == (5, None), "a file read in several batches is not handed on in memory"
    assert context.rows == 5
    assert context.duplicate_rows.to_list() == [3, 5], "NULLs compare equal; a trailing space is a different line"
    assert sorted(context.distinct_dates.to_list()) == ["12/1/2010 8:26", "12/1/2010 8:28"]
    assert second_batch["row_number"].to_list() == [3, 4]


def test_an_invoice_naming_two_customers_or_countries_is_inconsistent(tmp_path: Path) -> None:
    frame = rows(
        ("536365", "A", "X", "1", "12/1/2010 8:26", "1", "17850", "France"),
        ("536365", "B", "X", "1", "12/1/2010 8:26", "1", "17850.0", "France"),
        ("536366", "A", "X", "1", "12/1/2010 8:26", "1", "17850", "France"),
        ("536366", "B", "X", "1", "12/1/2010 8:26", "1", "12583", "France"),
        ("c536367", "A", "X", "-1", "12/1/2010 8:26", "1", "17850", "France"),
        ("C536367", "B", "X", "-1", "12/1/2010 8:26", "1", "17850", "Germany"),
    )
    with warehouse.open_warehouse(tmp_path / "w.duckdb") as connection:
        warehouse.publish_bronze(connection, profile(), [frame], flow_run_id=None, started_at=datetime(2026, 1, 1))
        context = warehouse.bronze_context(connection, "a" * 64)
    assert sorted(context.inconsistent_invoices.to_list()) == ["536366", "C536367"]
