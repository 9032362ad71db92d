"""Bronze keeps every record of a file and nothing else: one malformed line in a file of many batches is kept and
marked.

Each loaded file is checked through silver: its bronze rows are its silver rows, rejected rows and repeats.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_csv
from test_reader import ROW

from medallion.settings import Settings, load_settings
from medallion.steps import BronzeReport, SilverReport, load_bronze, load_silver
from medallion.warehouse import Warehouse


def numbered_rows(count: int, start: int = 0) -> list[str]:
    """Rows with their own invoice numbers, so none repeats another."""
    return [ROW.replace("536365", str(536365 + number)) for number in range(start, start + count)]


def balanced_silver(warehouse: Warehouse, settings: Settings, report: BronzeReport) -> SilverReport:
    """Load the file's silver rows and check that bronze = silver + rejected + duplicates, in the tables too."""
    silver = load_silver(warehouse, report.file_id, settings.pipeline)
    with warehouse.connection() as connection:
        counts = connection.execute(
            """SELECT (SELECT count(*) FROM bronze.transactions WHERE file_id = $id),
                      (SELECT count(*) FROM silver.transactions WHERE file_id = $id),
                      (SELECT count(*) FROM silver.rejected WHERE file_id = $id)""",
            {"id": report.file_id},
        ).fetchone()
    assert counts == (report.bronze_rows, silver.silver_rows, silver.rejected_rows)
    assert silver.bronze_rows == silver.silver_rows + silver.rejected_rows + silver.duplicate_rows
    return silver


# --- One malformed line in a file of many batches -----------------------------------------------------------------


@pytest.mark.parametrize("line", [3, 9000], ids=["in_the_first_batch", "many_batches_in"])
def test_a_line_with_a_field_too_many_is_kept_and_marked_in_a_file_of_many_batches(
    tmp_path: Path, warehouse: Warehouse, line: int
) -> None:
    settings = load_settings(BATCH_ROWS=1000)
    rows = numbered_rows(10_000)
    rows[line - 1] += ",surplus"
    path = write_csv(tmp_path / "raw" / "one_bad_line.csv", *rows)
    report = load_bronze(warehouse, path, settings.pipeline)
    with warehouse.connection() as connection:
        marked = connection.execute(
            "SELECT row_number, parse_error FROM bronze.transactions WHERE parse_error IS NOT NULL"
        ).fetchall()
    assert (report.bronze_rows, marked) == (10_000, [(line, "too_many_fields")])
    silver = balanced_silver(warehouse, settings, report)
    assert silver.rejected_by_reason == {"malformed_row": 1}
