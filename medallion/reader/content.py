"""A data file's content as it streams from disk: its hash, its head and its encoding, refusing what is not text."""

from __future__ import annotations

import codecs
import hashlib
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from medallion.errors import BadInputError
from medallion.reader.encodings import LINE_BREAKS, EncodingSniffer

HEAD_BYTES = 64 * 1024
CHUNK_BYTES = 1024 * 1024
# A first line longer than this is no CSV header; the bound keeps such a file from filling memory.
MAX_HEADER_BYTES = 16 * 1024 * 1024
_GZIP_OR_ZLIB = 47  # wbits: a gzip header, checked, with the largest window


@dataclass(frozen=True)
class ContentScan:
    """What one pass over a file's content found."""

    file_id: str  # SHA-256 of the file's bytes; "" when only the head was read
    bytes_hashed: int  # how many of the file's bytes the hash covers
    encoding: str
    head: bytes  # the first HEAD_BYTES of content, and at least its whole first line
    complete: bool  # whether `head` is all of the content
    ends_with_line_break: bool | None  # whether the content's last byte ends a line; None when the head is not all


class _Inflater:
    """A gzip file's content through every member (concatenated gzip files are one valid gzip file, which DuckDB
    and Python's gzip module read whole), in pieces of at most CHUNK_BYTES however well the data compresses."""

    def __init__(self, file_name: str) -> None:
        self._file_name = file_name
        self._member = zlib.decompressobj(wbits=_GZIP_OR_ZLIB)

    def pieces(self, data: bytes) -> Iterator[bytes]:
        while data:
            if self._member.eof:
                self._member = zlib.decompressobj(wbits=_GZIP_OR_ZLIB)
            try:
                piece = self._member.decompress(data, CHUNK_BYTES)
            except zlib.error:
                raise BadInputError(f"{self._file_name}: not a valid gzip file") from None
            if piece:
                yield piece
            data = self._member.unused_data if self._member.eof else self._member.unconsumed_tail

    def rest(self) -> bytes:
        """The last content; raises BadInputError when the compressed data stops before its end."""
        piece = self._member.flush()
        if not self._member.eof:
            raise BadInputError(f"{self._file_name}: truncated gzip file (its compressed data stops before the end)")
        return piece


def content_chunks(
    path: Path, compressed: bool, *, read_bytes: int = CHUNK_BYTES, on_read: Callable[[bytes], None] | None = None
) -> Generator[bytes, None, None]:
    """The file's content (decompressed when `compressed`) in chunks, handing each block of bytes read to
    `on_read`."""
    inflater = _Inflater(path.name) if compressed else None
    with path.open("rb") as handle:
        while data := handle.read(read_bytes):
            if on_read is not None:
                on_read(data)
            if inflater is None:
                yield data
            else:
                yield from inflater.pieces(data)
    if inflater is not None and (rest := inflater.rest()):
        yield rest


def file_digest(path: Path) -> str:
    """SHA-256 of the file's bytes."""
    digest = hashlib.sha256()
    for _ in content_chunks(path, False, on_read=digest.update):
        pass
    return digest.hexdigest()


class _Hash:
    """SHA-256 of the bytes read and their count."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.bytes = 0

    def update(self, data: bytes) -> None:
        self.digest.update(data)
        self.bytes += len(data)


class _Head:
    """The first HEAD_BYTES of content, extended to the end of the first line, so a wide header is whole."""

    def __init__(self, file_name: str) -> None:
        self._file_name = file_name
        self._first_line_end: int | None = None
        self.data = bytearray()
        self.done = False

    def take(self, chunk: bytes) -> None:
        if self.done:
            return
        searched = len(self.data)
        self.data += chunk
        if self._first_line_end is None:
            line_break = LINE_BREAKS.search(self.data, searched)
            if line_break is None:
                if len(self.data) > MAX_HEADER_BYTES:
                    mebibytes = MAX_HEADER_BYTES // 2**20
                    raise BadInputError(f"{self._file_name}: no line break in the first {mebibytes} MiB; not a CSV")
                return
            self._first_line_end = line_break.end()
        limit = max(HEAD_BYTES, self._first_line_end)
        if len(self.data) >= limit:
            del self.data[limit:]
            self.done = True


def scan_content(path: Path, compressed: bool, *, whole: bool) -> ContentScan:
    """Hash, encoding and head of the file in one pass; without `whole`, the head alone and what it shows.

    Raises BadInputError for a NUL byte anywhere read (naming its line), an invalid or truncated gzip file, or a
    first line too long to be a header.
    """
    hashed = _Hash() if whole else None
    sniffer = EncodingSniffer()
    head = _Head(path.name)
    offset = 0
    complete = True
    last_byte = b""
    read_bytes = CHUNK_BYTES if whole else HEAD_BYTES
    chunks = content_chunks(path, compressed, read_bytes=read_bytes, on_read=hashed.update if hashed else None)
    with closing(chunks):
        for chunk in chunks:
            if (nul := chunk.find(b"\x00")) >= 0:
                raise _binary_content(path, compressed, offset + nul)
            head.take(chunk)
            offset += len(chunk)
            last_byte = chunk[-1:] or last_byte
            if whole:
                sniffer.feed(chunk)
            elif head.done:
                complete = False
                break
    if not whole:
        sniffer.feed(bytes(head.data))
    complete = complete and offset == len(head.data)
    bom = head.data.startswith(codecs.BOM_UTF8)
    return ContentScan(
        file_id=hashed.digest.hexdigest() if hashed is not None else "",
        bytes_hashed=hashed.bytes if hashed is not None else 0,
        encoding=sniffer.encoding(final=whole or complete, bom=bom),
        head=bytes(head.data),
        complete=complete,
        ends_with_line_break=last_byte in (b"\n", b"\r") if whole or complete else None,
    )


def _binary_content(path: Path, compressed: bool, offset: int) -> BadInputError:
    """The refusal of a file with a NUL byte at content `offset`: no text file holds one, wherever it is."""
    with closing(content_chunks(path, compressed)) as chunks:
        line = _line_number(chunks, offset)
    # On the first line the file is no text at all; further on, the line shows where a text file went wrong.
    where = "" if line == 1 else f" (a NUL byte on line {line})"
    return BadInputError(f"{path.name}: binary content, not a text CSV file{where}")


def _line_number(chunks: Iterable[bytes], offset: int) -> int:
    """The 1-based line holding content `offset`, a line ending at CR LF, a lone CR or LF."""
    line, seen, after_cr = 1, 0, False
    for chunk in chunks:
        part = chunk[: offset - seen]
        line += part.count(b"\n") + part.count(b"\r") - part.count(b"\r\n")
        if after_cr and part.startswith(b"\n"):
            line -= 1
        after_cr = part.endswith(b"\r")
        seen += len(part)
        if seen >= offset:
            break
    return line
