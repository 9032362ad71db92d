"""Telling UTF-8 text from Latin-1 text, line by line, and turning either into UTF-8.

A file is UTF-8 when every line is; Latin-1 when no line holds valid UTF-8 beyond ASCII; and mixed when some lines
are each (a UTF-8 export with lines pasted from a Latin-1 one): such a file is decoded line by line, never whole
as Latin-1, which would garble its UTF-8 lines.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator

UTF8 = "utf-8"
UTF8_BOM = "utf-8-sig"
LATIN1 = "latin-1"
MIXED = "utf-8+latin-1"

# A line break byte is ASCII in both encodings, so bytes split at one never cut a character.
LINE_BREAKS = re.compile(rb"[\r\n]")
# A multi-byte UTF-8 character; in Latin-1 text such a pair of bytes is rare ("Ã©").
_UTF8_CHARACTER = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
# A line longer than this is judged in pieces, so a file without line breaks cannot fill memory.
_PENDING_LIMIT = 8 * 2**20


def _last_break_end(data: bytes) -> int:
    """The offset just past the last line break in `data`, 0 when it has none."""
    return max(data.rfind(b"\n"), data.rfind(b"\r")) + 1


class EncodingSniffer:
    """Fed a file's content in order, tells which of UTF8, LATIN1 or MIXED its lines are in."""

    def __init__(self) -> None:
        self._pending: list[bytes] = []  # the unfinished last line, kept only when it is not ASCII
        self._pending_bytes = 0
        self._utf8_text = False  # some line holds non-ASCII text that is valid UTF-8
        self._latin1_text = False  # some line is not valid UTF-8

    def feed(self, chunk: bytes) -> None:
        if self._utf8_text and self._latin1_text:
            return
        if not self._pending and chunk.isascii():
            return
        cut = _last_break_end(chunk)
        if cut == 0:
            self._pending.append(chunk)
            self._pending_bytes += len(chunk)
            if self._pending_bytes > _PENDING_LIMIT:
                self._keep_pending(self._judge(b"".join(self._pending), final=False))
            return
        self._judge(b"".join([*self._pending, chunk[:cut]]), final=True)
        self._keep_pending(chunk[cut:])

    def encoding(self, *, final: bool, bom: bool) -> str:
        """The encoding of what was fed; without `final`, a character cut at the end is no error."""
        self._judge(b"".join(self._pending), final=final)
        self._keep_pending(b"")
        if self._latin1_text:
            return MIXED if self._utf8_text else LATIN1
        return UTF8_BOM if bom else UTF8

    def _keep_pending(self, rest: bytes) -> None:
        # An ASCII start of a line cannot change whether the line is valid UTF-8.
        self._pending = [] if rest.isascii() else [rest]
        self._pending_bytes = len(rest) if self._pending else 0

    def _judge(self, block: bytes, *, final: bool) -> bytes:
        """Notes which kind of lines `block` holds; returns a character cut at its end when not `final`."""
        if block.isascii():
            return b""
        if not self._latin1_text:
            try:
                text, used = codecs.utf_8_decode(block, "strict", final)
            except UnicodeDecodeError:
                self._latin1_text = True
            else:
                self._utf8_text = self._utf8_text or not text.isascii()
                return block[used:]
        # Once a line is Latin-1, the only question left is whether another is UTF-8 beyond ASCII.
        self._utf8_text = self._utf8_text or _holds_utf8_line(block)
        return b""


def _holds_utf8_line(block: bytes) -> bool:
    """Whether some line of `block` is valid UTF-8 holding a multi-byte character."""
    # Invalid bytes decode to escapes that encode back to ASCII bytes; a real multi-byte character does not. This
    # checks a Latin-1 block at C speed, leaving the line by line search to blocks that hold such a character.
    try:
        block.decode(UTF8, "surrogateescape").encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        pass
    else:
        return False
    checked = 0
    for character in _UTF8_CHARACTER.finditer(block):
        if character.start() < checked:
            continue
        start = max(block.rfind(b"\n", 0, character.start()), block.rfind(b"\r", 0, character.start())) + 1
        found = LINE_BREAKS.search(block, character.end())
        checked = found.start() if found else len(block)
        try:
            block[start:checked].decode(UTF8)
        except UnicodeDecodeError:
            continue
        return True
    return False


def _line_as_utf8(line: bytes) -> bytes:
    try:
        line.decode(UTF8)
    except UnicodeDecodeError:
        return line.decode(LATIN1).encode(UTF8)
    return line


def _lines_as_utf8(block: bytes) -> bytes:
    """`block` with each of its lines that is not valid UTF-8 read as Latin-1, in UTF-8."""
    try:
        block.decode(UTF8)
    except UnicodeDecodeError:
        return b"".join(_line_as_utf8(line) for line in block.splitlines(keepends=True))
    return block


def mixed_as_utf8(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """A MIXED file's content in UTF-8, each line decoded as what it is; a byte order mark is dropped."""
    pending: list[bytes] = []
    first = True
    for chunk in chunks:
        cut = _last_break_end(chunk)
        if cut == 0:
            pending.append(chunk)
            continue
        block = _lines_as_utf8(b"".join([*pending, chunk[:cut]]))
        yield block.removeprefix(codecs.BOM_UTF8) if first else block
        first = False
        pending = [chunk[cut:]]
    block = _lines_as_utf8(b"".join(pending))
    yield block.removeprefix(codecs.BOM_UTF8) if first else block


def text_of(data: bytes, encoding: str) -> str:
    """`data` decoded as a profile's `encoding` says; a character cut at its end becomes a replacement."""
    if encoding == MIXED:
        return b"".join(mixed_as_utf8([data])).decode(UTF8, errors="replace")
    return data.decode(encoding, errors="replace")
