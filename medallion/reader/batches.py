"""A file's rows as text frames under the canonical names: Polars' fast reader, the tolerant reader, Excel."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import polars as pl

from medallion.errors import BadInputError
from medallion.file_kinds import FileFormat
from medallion.reader.columns import CANONICAL_COLUMNS
from medallion.reader.excel import workbook_rows
from medallion.reader.profile import FileProfile


class TolerantParseNeeded(Exception):
    """The fast CSV reader gave up on this file; read it again with `tolerant=True`."""


def row_batches(
    profile: FileProfile, text_path: Path, batch_rows: int | None, *, tolerant: bool = False
) -> Iterator[pl.DataFrame]:
    """The file's rows in batches of at most `batch_rows` (all at once when None), row numbers continuing.

    `text_path` is the file as `readable_text` gives it. The fast reader raises TolerantParseNeeded, possibly after
    some batches, when a line does not fit the header.
    """
    if profile.file_format is FileFormat.XLSX:
        yield from _workbook_batches(profile)
        return
    frames = (
        _tolerant_batches(profile, text_path, batch_rows)
        if tolerant
        else _polars_batches(profile, text_path, batch_rows)
    )
    first = next(frames, None)
    if first is None:
        raise BadInputError(f"{profile.file_name}: the file has a header but no data rows")
    yield first
    yield from frames


def _workbook_batches(profile: FileProfile) -> Iterator[pl.DataFrame]:
    """Every sheet's rows in turn, each keeping its sheet, numbered on from the sheet before."""
    offset = 0
    for sheet, frame in workbook_rows(profile.path, profile.sheets, profile.source_columns):
        if frame.height == 0:
            continue
        yield _canonical(frame, profile, offset=offset).with_columns(pl.lit(sheet, pl.String).alias("source_sheet"))
        offset += frame.height
    if offset == 0:
        raise BadInputError(f"{profile.file_name}: the workbook has a header but no data rows")


def _polars_batches(profile: FileProfile, text_path: Path, batch_rows: int | None) -> Iterator[pl.DataFrame]:
    width = len(profile.source_columns)
    scan = pl.scan_csv(
        text_path,
        has_header=True,
        separator=profile.delimiter,
        quote_char='"',
        infer_schema=False,
        empty_string_is_null=False,
        new_columns=[f"c{position}" for position in range(width)],
        encoding="utf8",
        raise_if_empty=False,
    )
    names = {f"c{i}": name for i, name in enumerate(profile.source_columns)}
    offset = 0
    pending: pl.DataFrame | None = None
    last_field: str | None = None
    try:
        batches = scan.collect() if batch_rows is None else scan.collect_batches(chunk_size=batch_rows)
        for raw in [batches] if isinstance(batches, pl.DataFrame) else batches:
            if raw.width != width:
                raise TolerantParseNeeded
            if raw.height == 0:
                continue
            if pending is not None:
                yield pending
            pending = _canonical(raw.rename(names), profile, offset=offset)
            last_field = raw[raw.columns[-1]][-1]
            offset += raw.height
    except (pl.exceptions.ComputeError, pl.exceptions.SchemaError):
        # Polars ends lines at LF only: a line of the wrong width, or a header ending at a lone CR, is for the
        # tolerant reader.
        raise TolerantParseNeeded from None
    if pending is None:
        return
    if last_field in (None, "") and _ends_without_newline(text_path):
        pending = pending.with_columns(
            pl.when(pl.col("row_number") == offset)
            .then(pl.lit("too_few_fields"))
            .otherwise(pl.col("parse_error"))
            .alias("parse_error")
        )
    yield pending


def _ends_without_newline(text_path: Path) -> bool:
    """A file cut off inside its last record ends without a newline, its last fields missing."""
    with text_path.open("rb") as handle:
        handle.seek(max(0, text_path.stat().st_size - 1))
        return handle.read(1) not in (b"\n", b"\r")


def _tolerant_batches(profile: FileProfile, text_path: Path, batch_rows: int | None) -> Iterator[pl.DataFrame]:
    """Slow path for malformed CSV: every record is kept, rows with the wrong field count are marked, and so is a
    last record the text ends inside of."""
    width = len(profile.source_columns)
    records: list[list[str | None]] = []
    row_number = 0
    with text_path.open("r", encoding="utf-8-sig", newline="") as handle:
        reader = _Records(handle, profile)
        for fields in reader:
            if not fields:
                continue  # a blank line holds no record, as DuckDB's and Polars' readers agree
            if batch_rows is not None and len(records) >= batch_rows:
                # Flushed before the next record, so the last record is still at hand after the loop.
                yield _tolerant_frame(profile, records, row_number - len(records))
                records = []
            row_number += 1
            problem = None
            if len(fields) > width:
                problem = "too_many_fields"
            elif len(fields) < width:
                problem = "too_few_fields"
            padded: list[str | None] = list(fields[:width]) + [None] * (width - len(fields))
            records.append([*padded, problem])
    if row_number == 0:
        raise BadInputError(f"{profile.file_name}: the file has a header but no data rows")
    if reader.last_record_cut_in_quotes() and records[-1][-1] is None:
        records[-1][-1] = "too_few_fields"
    yield _tolerant_frame(profile, records, row_number - len(records))


class _Records:
    """The data records after the header, keeping the lines of the last one read.

    A record the csv module cannot read (a quote left open over more than its field size limit, say) is a
    BadInputError naming the line it starts on.
    """

    def __init__(self, handle: TextIO, profile: FileProfile) -> None:
        self._handle = handle
        self._profile = profile
        self._lines: list[str] = []  # the lines of the record being read, or of the last one read
        self._record_read = False

    def _next_line(self) -> Iterator[str]:
        for line in self._handle:
            if self._record_read:
                self._lines.clear()
                self._record_read = False
            self._lines.append(line)
            yield line

    def __iter__(self) -> Iterator[list[str]]:
        reader = csv.reader(self._next_line(), delimiter=self._profile.delimiter)
        start = 1
        try:
            next(reader, None)
            start = reader.line_num + 1
            for fields in reader:
                self._record_read = True
                yield fields
                start = reader.line_num + 1
        except csv.Error as error:
            raise BadInputError(
                f"{self._profile.file_name}: the record starting on line {start} is not readable CSV ({error})"
            ) from None

    def last_record_cut_in_quotes(self) -> bool:
        """Whether the text ended inside a quoted field of the last record, which the csv module reads as if the
        quote had been closed: the file was cut off there."""
        if not self._lines:
            return False
        strict = csv.reader(self._lines, delimiter=self._profile.delimiter, strict=True)
        try:
            for _ in strict:
                pass
        except csv.Error as error:
            return "unexpected end of data" in str(error)
        return False


def _tolerant_frame(profile: FileProfile, records: list[list[str | None]], offset: int) -> pl.DataFrame:
    names = [f"c{position}" for position in range(len(profile.source_columns))] + ["parse_error"]
    frame = pl.DataFrame(records, schema=dict.fromkeys(names, pl.String), orient="row")
    frame = frame.rename({f"c{i}": name for i, name in enumerate(profile.source_columns)})
    canonical = _canonical(frame.drop("parse_error"), profile, offset=offset)
    return canonical.with_columns(frame["parse_error"])


def _canonical(frame: pl.DataFrame, profile: FileProfile, offset: int = 0) -> pl.DataFrame:
    """Select the mapped columns under canonical names, numbering rows from `offset + 1`."""
    columns = [pl.col(source).alias(target) for source, target in profile.column_map.items()]
    index = pl.col(profile.index_column) if profile.index_column is not None else pl.lit(None, pl.String)
    canonical = frame.select(
        pl.int_range(offset + 1, offset + frame.height + 1, dtype=pl.Int64).alias("row_number"),
        index.alias("source_index"),
        *columns,
    ).select("row_number", "source_index", *CANONICAL_COLUMNS)
    return canonical.with_columns(pl.lit(None, pl.String).alias("parse_error"))
