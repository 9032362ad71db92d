"""Recognise a retail file's layout and read its rows as text under the canonical column names."""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import re
import shutil
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel

from medallion.errors import BadInputError

CANONICAL_COLUMNS: tuple[str, ...] = (
    "invoice_no",
    "stock_code",
    "description",
    "quantity",
    "invoice_date",
    "unit_price",
    "customer_id",
    "country",
)
REQUIRED_COLUMNS: tuple[str, ...] = CANONICAL_COLUMNS

# Header spellings seen in the wild, compared after lower-casing and dropping spaces, dots, dashes, underscores.
HEADER_ALIASES: dict[str, str] = {
    "invoiceno": "invoice_no",
    "invoice": "invoice_no",
    "invoicenumber": "invoice_no",
    "invoiceid": "invoice_no",
    "stockcode": "stock_code",
    "productcode": "stock_code",
    "sku": "stock_code",
    "description": "description",
    "productdescription": "description",
    "quantity": "quantity",
    "qty": "quantity",
    "invoicedate": "invoice_date",
    "invoicedatetime": "invoice_date",
    "unitprice": "unit_price",
    "price": "unit_price",
    "customerid": "customer_id",
    "customer": "customer_id",
    "customerno": "customer_id",
    "country": "country",
}
EXPECTED_HEADERS: dict[str, str] = {
    "invoice_no": "InvoiceNo or Invoice",
    "stock_code": "StockCode",
    "description": "Description",
    "quantity": "Quantity",
    "invoice_date": "InvoiceDate",
    "unit_price": "UnitPrice or Price",
    "customer_id": "CustomerID or Customer ID",
    "country": "Country",
}
INDEX_HEADERS = frozenset({"", "unnamed0", "index", "rowid", "row"})
SUPPORTED_SUFFIXES = (".csv", ".csv.gz", ".txt", ".txt.gz", ".xlsx")
HEAD_BYTES = 64 * 1024
CHUNK_BYTES = 1024 * 1024


class FileProfile(BaseModel):
    """What the reader learned about one file before loading it."""

    path: Path
    file_name: str
    file_id: str
    size_bytes: int
    file_format: str
    compressed: bool
    encoding: str
    delimiter: str
    layout: str
    source_columns: list[str]
    column_map: dict[str, str]
    index_column: str | None


def read_alike(head: FileProfile, whole: FileProfile) -> bool:
    """Whether a `head_profile` and the file's whole profile read the file the same way: same bytes, layout and
    encoding as DuckDB's reader takes it (a UTF-8 byte order mark is UTF-8 to it)."""

    def reading(profile: FileProfile) -> tuple[object, ...]:
        return (
            profile.size_bytes,
            profile.compressed,
            profile.delimiter,
            profile.source_columns,
            profile.column_map,
            profile.index_column,
            "latin-1" if profile.encoding == "latin-1" else "utf-8",
        )

    return reading(head) == reading(whole)


def unchanged(path: Path, modified_ns: int, profile: FileProfile) -> bool:
    """Whether the file still has the size and modification time it had when it was profiled."""
    try:
        status = path.stat()
    except OSError:
        return False
    return status.st_size == profile.size_bytes and status.st_mtime_ns == modified_ns


def file_format_of(path: Path) -> tuple[str, bool]:
    name = path.name.lower()
    for suffix in SUPPORTED_SUFFIXES:
        if name.endswith(suffix):
            return ("xlsx" if suffix == ".xlsx" else "csv"), suffix.endswith(".gz")
    raise BadInputError(f"{path.name}: unsupported file type (expected one of {', '.join(SUPPORTED_SUFFIXES)})")


def profile_file(path: Path) -> FileProfile:
    """Hash, size, encoding and header mapping of a file, or BadInputError saying what is wrong."""
    return _profile(path, whole_file=True)


def head_profile(path: Path) -> FileProfile:
    """The profile of a CSV file from its first bytes alone, for reading it while `profile_file` reads it through:
    `file_id` is empty and the encoding is what the head shows, which the whole file can still contradict (a
    strict UTF-8 reader then refuses it). An Excel workbook gets its whole profile. Raises the BadInputError
    `profile_file` would for what the head shows."""
    return _profile(path, whole_file=False)


def _profile(path: Path, *, whole_file: bool) -> FileProfile:
    if not path.exists():
        raise BadInputError(f"{path}: no such file")
    if not path.is_file():
        raise BadInputError(f"{path}: not a regular file")
    file_format, compressed = file_format_of(path)
    size = path.stat().st_size
    if size == 0:
        raise BadInputError(f"{path.name}: file is empty")
    if file_format == "xlsx":
        return _profile_excel(path, size)
    file_id, encoding, head = _hash_and_sniff(path, compressed, whole=whole_file)
    text_head = head.decode(encoding, errors="replace")
    if not text_head.strip():
        raise BadInputError(f"{path.name}: file is empty")
    delimiter = _delimiter_of(text_head)
    header = next(csv.reader(io.StringIO(text_head), delimiter=delimiter), [])
    column_map, index_column, layout = map_columns(header, path.name)
    whole_file_read = len(head) < HEAD_BYTES
    if whole_file_read and sum(1 for line in text_head.splitlines() if line.strip()) <= 1:
        raise BadInputError(f"{path.name}: the file has a header but no data rows")
    return FileProfile(
        path=path,
        file_name=path.name,
        file_id=file_id,
        size_bytes=size,
        file_format="csv",
        compressed=compressed,
        encoding=encoding,
        delimiter=delimiter,
        layout=layout,
        source_columns=header,
        column_map=column_map,
        index_column=index_column,
    )


def map_columns(header: list[str], file_name: str) -> tuple[dict[str, str], str | None, str]:
    """Map source header names to canonical names; the leading unnamed column is the source index."""
    column_map: dict[str, str] = {}
    index_column: str | None = None
    for position, name in enumerate(header):
        key = re.sub(r"[\s._\-]", "", name.strip().lstrip("\ufeff")).lower()
        canonical = HEADER_ALIASES.get(key)
        if canonical is not None and canonical not in column_map.values():
            column_map[name] = canonical
        elif position == 0 and key in INDEX_HEADERS:
            index_column = name
    missing = [column for column in REQUIRED_COLUMNS if column not in column_map.values()]
    if missing:
        wanted = ", ".join(EXPECTED_HEADERS[column] for column in missing)
        found = ", ".join(repr(name) for name in header[:12]) or "nothing"
        raise BadInputError(f"{file_name}: missing column(s) {wanted}; the header has {found}")
    names = {re.sub(r"[\s._\-]", "", name).lower() for name in column_map}
    if "invoice" in names or "price" in names or "customer" in names:
        layout = "online_retail_ii"
    elif {"invoiceno", "unitprice", "customerid"} <= names:
        layout = "uci_with_index" if index_column is not None else "uci"
    else:
        layout = "custom"
    return column_map, index_column, layout


def _hash_and_sniff(path: Path, compressed: bool, *, whole: bool = True) -> tuple[str, str, bytes]:
    """SHA-256 of the file's bytes, the text encoding of its content and its first bytes, in one pass. Without
    `whole`, only the first HEAD_BYTES of content are read: no hash (""), and the encoding those bytes show."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    inflater = zlib.decompressobj(wbits=47) if compressed else None
    utf8 = True
    head = b""
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES if whole else HEAD_BYTES):
            if whole:
                digest.update(chunk)
            if inflater is not None:
                try:
                    chunk, inflater = _inflated(inflater, chunk)
                except zlib.error:
                    raise BadInputError(f"{path.name}: not a valid gzip file") from None
            if len(head) < HEAD_BYTES:
                head += chunk[: HEAD_BYTES - len(head)]
                if b"\x00" in head:
                    raise BadInputError(f"{path.name}: binary content, not a text CSV file")
            if not whole:
                chunk = chunk[:HEAD_BYTES]
            # ASCII is UTF-8: a chunk of it needs no decoding unless a character is still open from the last one.
            if utf8 and not (chunk.isascii() and not decoder.getstate()[0]):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    utf8 = False
            if not whole and len(head) >= HEAD_BYTES:
                break
    if utf8 and (whole or len(head) < HEAD_BYTES):  # a character cut at the end of a head is no error
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8 = False
    if head.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif utf8:
        encoding = "utf-8"
    else:
        encoding = "latin-1"
    return digest.hexdigest() if whole else "", encoding, head


def _inflated(inflater: Any, chunk: bytes) -> tuple[bytes, Any]:
    """`chunk` of a gzip file decompressed, through every member it reaches (concatenated gzip files are one valid
    gzip file, which DuckDB and Python's gzip module read whole); returns the decompressor for the next chunk."""
    content = inflater.decompress(chunk)
    while inflater.eof and inflater.unused_data:
        rest = inflater.unused_data
        inflater = zlib.decompressobj(wbits=47)
        content += inflater.decompress(rest)
    return content, inflater


def _delimiter_of(text_head: str) -> str:
    first_line = text_head.splitlines()[0] if text_head.splitlines() else ""
    counts = {delimiter: first_line.count(delimiter) for delimiter in (",", ";", "\t", "|")}
    return max(counts, key=lambda delimiter: counts[delimiter])


def _profile_excel(path: Path, size: int) -> FileProfile:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    try:
        header = pl.read_excel(path, engine="calamine", infer_schema_length=0).columns
    except Exception as error:
        raise BadInputError(f"{path.name}: not a readable Excel workbook ({type(error).__name__})") from None
    column_map, index_column, layout = map_columns(header, path.name)
    return FileProfile(
        path=path,
        file_name=path.name,
        file_id=digest.hexdigest(),
        size_bytes=size,
        file_format="xlsx",
        compressed=False,
        encoding="xlsx",
        delimiter="",
        layout=layout,
        source_columns=header,
        column_map=column_map,
        index_column=index_column,
    )


def plain_utf8_copy(profile: FileProfile, staging_dir: Path) -> Path:
    """The file as plain UTF-8 text: the original when it already is, else a transcoded copy in staging."""
    if profile.encoding == "utf-8" and not profile.compressed:
        return profile.path
    staging_dir.mkdir(parents=True, exist_ok=True)
    target = staging_dir / f"{profile.file_id}.csv"
    opener = gzip.open if profile.compressed else open
    with opener(profile.path, "rb") as source, target.open("wb") as sink:  # type: ignore[operator]
        if profile.encoding == "utf-8":
            shutil.copyfileobj(source, sink, CHUNK_BYTES)
        else:
            reader = codecs.getreader(profile.encoding)(source)
            while text := reader.read(CHUNK_BYTES):
                sink.write(text.encode("utf-8"))
    return target


class TolerantParseNeeded(Exception):
    """The fast CSV reader gave up on this file; read it again with `tolerant=True`."""


@contextmanager
def readable_text(profile: FileProfile, staging_dir: Path) -> Iterator[Path]:
    """A plain UTF-8 path for the file while the block runs; a transcoded copy is removed afterwards."""
    text_path = profile.path if profile.file_format == "xlsx" else plain_utf8_copy(profile, staging_dir)
    try:
        yield text_path
    finally:
        if text_path != profile.path:
            text_path.unlink(missing_ok=True)


def raw_rows(profile: FileProfile, staging_dir: Path) -> pl.DataFrame:
    """Every data row of the file as text, under canonical names, with its 1-based row number."""
    with readable_text(profile, staging_dir) as text_path:
        try:
            batches = list(row_batches(profile, text_path, batch_rows=None))
        except TolerantParseNeeded:
            batches = list(row_batches(profile, text_path, batch_rows=None, tolerant=True))
    return pl.concat(batches, how="vertical")


def row_batches(
    profile: FileProfile, text_path: Path, batch_rows: int | None, *, tolerant: bool = False
) -> Iterator[pl.DataFrame]:
    """The file's rows in batches of at most `batch_rows` (all at once when None), row numbers continuing.

    The fast reader raises TolerantParseNeeded, possibly after some batches, when a line does not fit the header.
    """
    if profile.file_format == "xlsx":
        yield _canonical(_excel_frame(profile), profile)
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
    except pl.exceptions.ComputeError:
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
    """Slow path for malformed CSV: every record is kept, rows with the wrong field count are marked."""
    width = len(profile.source_columns)
    records: list[list[str | None]] = []
    row_number = 0
    with text_path.open("r", encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=profile.delimiter)
        next(reader, None)
        for fields in reader:
            row_number += 1
            problem = None
            if len(fields) > width:
                problem = "too_many_fields"
            elif len(fields) < width:
                problem = "too_few_fields"
            padded: list[str | None] = list(fields[:width]) + [None] * (width - len(fields))
            records.append([*padded, problem])
            if batch_rows is not None and len(records) >= batch_rows:
                yield _tolerant_frame(profile, records, row_number - len(records))
                records = []
    if row_number == 0:
        raise BadInputError(f"{profile.file_name}: the file has a header but no data rows")
    if records:
        yield _tolerant_frame(profile, records, row_number - len(records))


def _tolerant_frame(profile: FileProfile, records: list[list[str | None]], offset: int) -> pl.DataFrame:
    names = [f"c{position}" for position in range(len(profile.source_columns))] + ["parse_error"]
    frame = pl.DataFrame(records, schema=dict.fromkeys(names, pl.String), orient="row")
    frame = frame.rename({f"c{i}": name for i, name in enumerate(profile.source_columns)})
    canonical = _canonical(frame.drop("parse_error"), profile, offset=offset)
    return canonical.with_columns(frame["parse_error"])


def _excel_frame(profile: FileProfile) -> pl.DataFrame:
    frame = pl.read_excel(profile.path, engine="calamine", infer_schema_length=0)
    if frame.height == 0:
        raise BadInputError(f"{profile.file_name}: the workbook has a header but no data rows")
    return frame.select(pl.all().cast(pl.String))


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
