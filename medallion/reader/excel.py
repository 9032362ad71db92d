"""Excel workbooks: every sheet with data, under the one header they share, each cell as text."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import polars as pl

from medallion.errors import BadInputError
from medallion.reader.columns import ColumnMapping, column_mapping


class WorkbookLayout(NamedTuple):
    header: list[str]
    mapping: ColumnMapping
    sheets: list[str]  # the sheets with data, in workbook order


def workbook_layout(path: Path) -> WorkbookLayout:
    """The header every sheet with data shares, its mapping and those sheets; empty sheets are skipped.

    Raises BadInputError when the workbook cannot be read, has no sheet with data, or a sheet with data has
    another header than the first (a notes sheet beside the months, say), naming the sheets.
    """
    sheets = {name: frame.columns for name, frame in _sheets(path, None).items() if frame.width > 0}
    if not sheets:
        raise BadInputError(f"{path.name}: the workbook has no sheet with data")
    first, *others = sheets
    header = sheets[first]
    mapping = column_mapping(header, f"{path.name} (sheet {first!r})")
    different = [name for name in others if sheets[name] != header]
    if different:
        names = ", ".join(repr(name) for name in different)
        found = ", ".join(repr(column) for column in sheets[different[0]][:12]) or "nothing"
        raise BadInputError(
            f"{path.name}: sheet(s) {names} have another header than sheet {first!r} ({different[0]!r} has {found}); "
            "every sheet with data must have the same columns"
        )
    return WorkbookLayout(header, mapping, list(sheets))


def workbook_rows(path: Path, sheets: list[str], header: list[str]) -> Iterator[tuple[str, pl.DataFrame]]:
    """Each named sheet's data rows, each cell as text, in workbook order; BadInputError when a sheet no longer
    has `header`."""
    for name, frame in _sheets(path, sheets).items():
        if frame.columns != header:
            raise BadInputError(f"{path.name}: sheet {name!r} no longer has the header it was profiled with")
        yield name, frame.select(pl.all().cast(pl.String))


def _sheets(path: Path, names: list[str] | None) -> dict[str, pl.DataFrame]:
    """The named sheets (every sheet when None) by name, an empty sheet as a frame without columns."""
    try:
        if names is None:
            return pl.read_excel(path, sheet_id=0, engine="calamine", infer_schema_length=0, raise_if_empty=False)
        return pl.read_excel(path, sheet_name=names, engine="calamine", infer_schema_length=0, raise_if_empty=False)
    except Exception as error:
        raise BadInputError(f"{path.name}: not a readable Excel workbook ({type(error).__name__})") from None
