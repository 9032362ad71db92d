"""Recognise a retail file's layout and read its rows as text under the canonical column names.

`profile` says what a file is (kind, identity, encoding, columns), `content` streams its bytes (hash, head, gzip),
`encodings` tells UTF-8 from Latin-1 line by line, `staging` gives every reader plain UTF-8 text, `batches` reads
the rows (Polars, the tolerant reader, Excel through `excel`), `columns` maps the header onto the canonical names.
"""

from medallion.reader.batches import TolerantParseNeeded, row_batches
from medallion.reader.columns import CANONICAL_COLUMNS
from medallion.reader.profile import (
    FileChangedError,
    FileProfile,
    FileStamp,
    ensure_unchanged,
    head_profile,
    profile_file,
    read_alike,
)
from medallion.reader.staging import readable_text

__all__ = [
    "CANONICAL_COLUMNS",
    "FileChangedError",
    "FileProfile",
    "FileStamp",
    "TolerantParseNeeded",
    "ensure_unchanged",
    "head_profile",
    "profile_file",
    "read_alike",
    "readable_text",
    "row_batches",
]
