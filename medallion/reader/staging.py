"""A CSV file as plain UTF-8 text on disk, which every reader takes: the original, or a decoded copy in staging."""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from medallion.file_kinds import FileFormat
from medallion.reader.content import content_chunks
from medallion.reader.encodings import MIXED, UTF8, mixed_as_utf8
from medallion.reader.profile import FileProfile


@contextmanager
def readable_text(profile: FileProfile, staging_dir: Path) -> Iterator[Path]:
    """A plain UTF-8 path for the file while the block runs; a decoded copy is removed afterwards."""
    text_path = profile.path if profile.file_format is FileFormat.XLSX else _plain_utf8_copy(profile, staging_dir)
    try:
        yield text_path
    finally:
        if text_path != profile.path:
            text_path.unlink(missing_ok=True)


def _plain_utf8_copy(profile: FileProfile, staging_dir: Path) -> Path:
    """The file as plain UTF-8 text: the original when it already is, else a decoded copy in staging."""
    if profile.encoding == UTF8 and not profile.compressed:
        return profile.path
    staging_dir.mkdir(parents=True, exist_ok=True)
    target = staging_dir / f"{profile.file_id}.csv"
    chunks = content_chunks(profile.path, profile.compressed)
    try:
        with target.open("wb") as sink:
            for block in _utf8_blocks(chunks, profile.encoding):
                sink.write(block)
    except BaseException:
        target.unlink(missing_ok=True)  # a file found bad half way leaves no partial copy behind
        raise
    return target


def _utf8_blocks(chunks: Iterable[bytes], encoding: str) -> Iterator[bytes]:
    if encoding == UTF8:
        yield from chunks
    elif encoding == MIXED:
        yield from mixed_as_utf8(chunks)
    else:
        decoder = codecs.getincrementaldecoder(encoding)()
        for chunk in chunks:
            yield decoder.decode(chunk).encode(UTF8)
        yield decoder.decode(b"", final=True).encode(UTF8)
