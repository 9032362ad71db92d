"""What a data file is before it is loaded: its kind, identity, encoding, delimiter and column mapping."""

from __future__ import annotations

import csv
import io
import os
import stat
from pathlib import Path
from typing import NamedTuple

from pydantic import BaseModel

from medallion.errors import BadInputError, MedallionError
from medallion.file_kinds import SUFFIXES, FileFormat, kind_of
from medallion.reader.columns import column_mapping
from medallion.reader.content import ContentScan, file_digest, scan_content
from medallion.reader.encodings import LATIN1, UTF8, text_of
from medallion.reader.excel import workbook_layout

DELIMITERS = (",", ";", "\t", "|")


class FileChangedError(MedallionError):
    """The file changed while it was read: it is still being written, so a later run can load it whole."""

    retryable = True

    def __init__(self, file_name: str) -> None:
        super().__init__(f"{file_name}: the file changed while it was read; load it once it is complete")


class FileStamp(NamedTuple):
    """Which file a path named and its state when it was looked at: any write changes the size or the time."""

    device: int
    inode: int
    size: int
    modified_ns: int


class FileProfile(BaseModel):
    """What the reader learned about one file before loading it."""

    path: Path
    file_name: str
    file_id: str
    size_bytes: int
    file_format: FileFormat
    compressed: bool
    encoding: str
    delimiter: str
    layout: str
    source_columns: list[str]
    column_map: dict[str, str]
    index_column: str | None
    # The file as it was looked at before it was read; None for rows that come from no file on disk.
    stamp: FileStamp | None = None
    # Whether the content ends with a line break; None for a workbook, or a file known by its head only.
    ends_with_line_break: bool | None = None
    # A workbook's sheets whose rows are read, in order.
    sheets: list[str] = []


def ensure_unchanged(profile: FileProfile) -> None:
    """Raise FileChangedError unless the file is still as it was when `profile` looked at it, so every read of it
    since then read the same bytes."""
    if profile.stamp is None:
        return
    try:
        unchanged = _stamp(profile.path.lstat()) == profile.stamp
    except OSError:
        unchanged = False  # moved away or deleted
    if not unchanged:
        raise FileChangedError(profile.file_name)


def read_alike(head: FileProfile, whole: FileProfile) -> bool:
    """Whether a `head_profile` and the file's whole profile read the file the same way: same bytes, layout and
    encoding as DuckDB's reader takes it (a UTF-8 byte order mark is UTF-8 to it, and it refuses a file whose
    lines mix UTF-8 and Latin-1 as it refuses invalid UTF-8)."""

    def reading(profile: FileProfile) -> tuple[object, ...]:
        return (
            profile.size_bytes,
            profile.compressed,
            profile.delimiter,
            profile.source_columns,
            profile.column_map,
            profile.index_column,
            LATIN1 if profile.encoding == LATIN1 else UTF8,
        )

    return reading(head) == reading(whole)


def profile_file(path: Path) -> FileProfile:
    """Hash, size, encoding and header mapping of a file, or BadInputError saying what is wrong; FileChangedError
    when the file changed while it was hashed, so the hash would name no content the file ever had whole."""
    return _profile(path, whole_file=True)


def head_profile(path: Path) -> FileProfile:
    """The profile of a CSV file from its first bytes alone, for reading it while `profile_file` reads it through:
    `file_id` is empty and the encoding is what the head shows, which the whole file can still contradict (a
    strict UTF-8 reader then refuses it). An Excel workbook gets its whole profile. Raises the BadInputError
    `profile_file` would for what the head shows."""
    return _profile(path, whole_file=False)


def _profile(path: Path, *, whole_file: bool) -> FileProfile:
    stamp = _stamp_of(path)
    kind = kind_of(path.name)
    if kind is None:
        expected = ", ".join(sorted(SUFFIXES))
        raise BadInputError(f"{path.name}: unsupported file type (expected one of {expected})")
    file_format, compressed = kind
    if stamp.size == 0:
        raise BadInputError(f"{path.name}: file is empty")
    if file_format is FileFormat.XLSX:
        profile = _workbook_profile(path, stamp)
    else:
        scan = scan_content(path, compressed, whole=whole_file)
        profile = _text_profile(path, stamp, compressed, scan)
        if whole_file and scan.bytes_hashed != stamp.size:
            raise FileChangedError(path.name)
    ensure_unchanged(profile)
    return profile


# What a path that is no regular file is, by the file type bits of its status.
_SPECIAL_KINDS = {
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a named pipe",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a device",
    stat.S_IFBLK: "a device",
}


def _stamp_of(path: Path) -> FileStamp:
    """The stamp of a regular file; anything else is refused before it is opened, so a link never shows what it
    points at and a pipe never blocks the read."""
    try:
        status = path.lstat()
    except FileNotFoundError:
        raise BadInputError(f"{path}: no such file") from None
    if not stat.S_ISREG(status.st_mode):
        kind = _SPECIAL_KINDS.get(stat.S_IFMT(status.st_mode), "a special file")
        raise BadInputError(f"{path}: not a regular file ({kind}); only regular files are read")
    return _stamp(status)


def _stamp(status: os.stat_result) -> FileStamp:
    return FileStamp(status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)


def _text_profile(path: Path, stamp: FileStamp, compressed: bool, scan: ContentScan) -> FileProfile:
    text_head = text_of(scan.head, scan.encoding)
    if not text_head.strip():
        raise BadInputError(f"{path.name}: file is empty")
    lines = text_head.splitlines()
    delimiter = _delimiter_of(lines[0] if lines else "")
    # newline="" lets the csv module take a lone CR as the line end it is.
    header = next(csv.reader(io.StringIO(text_head, newline=""), delimiter=delimiter), [])
    mapping = column_mapping(header, path.name)
    if scan.complete and sum(1 for line in lines if line.strip()) <= 1:
        raise BadInputError(f"{path.name}: the file has a header but no data rows")
    return FileProfile(
        path=path,
        file_name=path.name,
        file_id=scan.file_id,
        size_bytes=stamp.size,
        file_format=FileFormat.CSV,
        compressed=compressed,
        encoding=scan.encoding,
        delimiter=delimiter,
        layout=mapping.layout,
        source_columns=header,
        column_map=mapping.column_map,
        index_column=mapping.index_column,
        stamp=stamp,
        ends_with_line_break=scan.ends_with_line_break,
    )


def _delimiter_of(first_line: str) -> str:
    counts = {delimiter: first_line.count(delimiter) for delimiter in DELIMITERS}
    return max(counts, key=lambda delimiter: counts[delimiter])


def _workbook_profile(path: Path, stamp: FileStamp) -> FileProfile:
    file_id = file_digest(path)
    layout = workbook_layout(path)
    return FileProfile(
        path=path,
        file_name=path.name,
        file_id=file_id,
        size_bytes=stamp.size,
        file_format=FileFormat.XLSX,
        compressed=False,
        encoding="xlsx",
        delimiter="",
        layout=layout.mapping.layout,
        source_columns=layout.header,
        column_map=layout.mapping.column_map,
        index_column=layout.mapping.index_column,
        stamp=stamp,
        sheets=layout.sheets,
    )
