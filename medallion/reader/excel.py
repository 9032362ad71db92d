"""Excel workbooks: the header and the rows of their first sheet, as text."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from medallion.errors import BadInputError


def workbook_header(path: Path) -> list[str]:
    """The column names of the workbook's first sheet, or BadInputError when it cannot be read."""
    try:
        return pl.read_excel(path, engine="calamine", infer_schema_length=0).columns
    except Exception as error:
        raise BadInputError(f"{path.name}: not a readable Excel workbook ({type(error).__name__})") from None


def workbook_rows(path: Path, file_name: str) -> pl.DataFrame:
    """Every data row of the workbook's first sheet, each cell as text."""
    frame = pl.read_excel(path, engine="calamine", infer_schema_length=0)
    if frame.height == 0:
        raise BadInputError(f"{file_name}: the workbook has a header but no data rows")
    return frame.select(pl.all().cast(pl.String))
