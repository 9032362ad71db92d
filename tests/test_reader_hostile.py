"""Hostile files at the reader: line endings, widths, compression, links and special files, encodings, NUL bytes.

Each file either reads with every record whole or is refused with one BadInputError (never retried) that says
what is wrong and shows nothing of what a link points at.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest
from conftest import UCI_HEADER, write_csv
from hypothesis import given
from hypothesis import strategies as st
from test_reader import ROW, ROW_2, canonical_rows

from medallion import reader
from medallion.errors import BadInputError
from medallion.reader.encodings import LATIN1, MIXED, UTF8, EncodingSniffer, mixed_as_utf8

CAFE_ROW = ROW.replace("WHITE", "CAFÉ")
CAFE_ROW_2 = ROW_2.replace("HAND", "CAFÉ")


def many_rows(count: int) -> list[str]:
    """Rows that differ from one another, so gzip cannot shrink them to nothing."""
    return [ROW.replace("536365", str(536365 + number)).replace(",6,", f",{number % 97},") for number in range(count)]


@pytest.mark.parametrize(
    "content",
    [
        "\r".join([UCI_HEADER, ROW, ROW_2]) + "\r",  # classic Mac OS line endings
        UCI_HEADER + "\r" + ROW + "\n" + ROW_2 + "\r\n",  # a header ending at a lone CR, then LF and CR LF
        "\r".join([UCI_HEADER, ROW, ROW_2]),  # no line end after the last record
    ],
)
def test_lone_cr_line_endings_end_lines(tmp_path: Path, content: str) -> None:
    path = tmp_path / "mac.csv"
    path.write_bytes(content.encode())
    rows = canonical_rows(path, tmp_path)
    assert rows["invoice_no"].to_list() == ["536365", "536366"]
    assert rows["country"].to_list() == ["United Kingdom", "United Kingdom"]
    assert rows["parse_error"].to_list() == [None, None]


def test_a_header_wider_than_the_head_is_read_whole(tmp_path: Path) -> None:
    notes = [f"note_{number:05d}" for number in range(8000)]  # about 90 KB of header before the retail columns
    path = write_csv(
        tmp_path / "wide.csv", "," * len(notes) + ROW, "," * len(notes) + ROW_2, header=",".join([*notes, UCI_HEADER])
    )
    for profile in (reader.head_profile(path), reader.profile_file(path)):
        assert len(profile.source_columns) == len(notes) + 8
        assert (profile.layout, profile.column_map["Country"]) == ("uci", "country")
    assert canonical_rows(path, tmp_path)["invoice_no"].to_list() == ["536365", "536366"]


def test_a_first_line_too_long_for_a_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "one_line.csv"
    path.write_bytes(b"x" * (17 * 2**20))
    with pytest.raises(BadInputError, match=r"^one_line\.csv: no line break in the first 16 MiB; not a CSV$"):
        reader.head_profile(path)


@pytest.mark.parametrize("rows", [3, 30_000], ids=["within_the_head", "past_the_head"])
def test_a_truncated_gzip_file_is_refused_as_truncated_and_never_retried(tmp_path: Path, rows: int) -> None:
    whole = gzip.compress(("\n".join([UCI_HEADER, *many_rows(rows)]) + "\n").encode())
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(whole[: len(whole) * 2 // 3])
    with pytest.raises(BadInputError) as raised:
        reader.profile_file(path)
    assert str(raised.value) == "cut.csv.gz: truncated gzip file (its compressed data stops before the end)"
    assert raised.value.retryable is False


def test_a_gzip_file_cut_after_it_was_profiled_is_refused_by_the_staged_copy(tmp_path: Path) -> None:
    path = tmp_path / "shrinking.csv.gz"
    whole = gzip.compress(("\n".join([UCI_HEADER, *many_rows(1000)]) + "\n").encode())
    path.write_bytes(whole)
    profile = reader.profile_file(path)
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(BadInputError, match="truncated gzip file"), reader.readable_text(profile, tmp_path / "s"):
        pass
    assert list((tmp_path / "s").iterdir()) == [], "no partial copy is left behind"


def _special_files(tmp_path: Path) -> list[tuple[Path, str]]:
    secret = tmp_path / "elsewhere" / "passwd"
    secret.parent.mkdir()
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    link = tmp_path / "passwd.csv"
    link.symlink_to(secret)
    good = write_csv(tmp_path / "elsewhere" / "sales.csv", ROW)
    link_to_csv = tmp_path / "sales.csv"
    link_to_csv.symlink_to(good)
    pipe = tmp_path / "pipe.csv"
    os.mkfifo(pipe)
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    return [
        (link, "a symbolic link"),
        (link_to_csv, "a symbolic link"),
        (pipe, "a named pipe"),
        (folder, "a directory"),
        (Path("/dev/null"), "a device"),
    ]


def test_links_and_special_files_are_refused_without_reading_them(tmp_path: Path) -> None:
    for path, kind in _special_files(tmp_path):
        for profile in (reader.head_profile, reader.profile_file):
            with pytest.raises(BadInputError) as raised:
                profile(path)  # a named pipe would block here if it were opened
            assert str(raised.value) == f"{path}: not a regular file ({kind}); only regular files are read"
            assert raised.value.retryable is False


def test_a_utf8_file_with_a_latin1_line_is_decoded_line_by_line(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_bytes(f"{UCI_HEADER}\n{CAFE_ROW}\n".encode() + f"{CAFE_ROW_2}\n".encode("latin-1"))
    profile = reader.profile_file(path)
    rows = canonical_rows(path, tmp_path)
    assert profile.encoding == MIXED
    assert rows["description"].to_list() == ["CAFÉ HANGING HEART T-LIGHT HOLDER", "CAFÉ WARMER UNION JACK"]


def test_a_byte_order_mark_and_a_latin1_line_decode_line_by_line(tmp_path: Path) -> None:
    path = tmp_path / "bom_mixed.csv"
    path.write_bytes(f"\ufeff{UCI_HEADER}\n{CAFE_ROW}\n".encode() + f"{CAFE_ROW_2}\n".encode("latin-1"))
    profile = reader.profile_file(path)
    rows = canonical_rows(path, tmp_path)
    assert (profile.encoding, profile.layout) == (MIXED, "uci")
    assert rows["invoice_no"].to_list() == ["536365", "536366"]
    assert rows["description"].to_list() == ["CAFÉ HANGING HEART T-LIGHT HOLDER", "CAFÉ WARMER UNION JACK"]


def test_a_latin1_file_whose_bytes_look_like_utf8_in_places_stays_latin1(tmp_path: Path) -> None:
    # "Ã©" is valid UTF-8 as bytes, but its line also holds a byte that is not: the line, and the file, are Latin-1.
    path = write_csv(tmp_path / "latin1.csv", ROW.replace("WHITE", "Ã© CAFÉ"), ROW_2, encoding="latin-1")
    profile = reader.profile_file(path)
    assert profile.encoding == LATIN1
    assert canonical_rows(path, tmp_path)["description"][0] == "Ã© CAFÉ HANGING HEART T-LIGHT HOLDER"


NUL_ROW = ROW.replace("536365", "5\x00")


@pytest.mark.parametrize(
    ("line", "name"),
    [(3, "nul.csv"), (1502, "nul.csv"), (1502, "nul.csv.gz")],
    ids=["near_the_top", "past_the_head", "past_the_head_compressed"],
)
def test_a_nul_byte_refuses_the_file_naming_its_line_wherever_it_is(tmp_path: Path, line: int, name: str) -> None:
    rows = [ROW] * 2000  # about 180 KB, more than the head
    rows[line - 2] = NUL_ROW
    content = ("\r\n".join([UCI_HEADER, *rows]) + "\r\n").encode()
    path = tmp_path / name
    path.write_bytes(gzip.compress(content) if name.endswith(".gz") else content)
    with pytest.raises(BadInputError) as raised:
        reader.profile_file(path)
    assert str(raised.value) == f"{name}: binary content, not a text CSV file (a NUL byte on line {line})"
    assert raised.value.retryable is False


def test_a_record_the_csv_module_cannot_read_is_refused_naming_its_line(tmp_path: Path) -> None:
    # A quote opened on line 2 and never closed makes the rest of the file one field, past the csv module's limit.
    path = write_csv(tmp_path / "open_quote.csv", ROW.replace("WHITE", '"WHITE'), *many_rows(3000))
    with pytest.raises(BadInputError) as raised:
        canonical_rows(path, tmp_path)
    assert str(raised.value) == (
        "open_quote.csv: the record starting on line 2 is not readable CSV (field larger than field limit (131072))"
    )


LINE_TEXTS = st.lists(st.text(alphabet=st.sampled_from('aZ, "é€Ã©É\x85'), max_size=12), min_size=1, max_size=12)


def _mixed_content(texts: list[str], latin1: list[bool], endings: list[str]) -> bytes:
    content = b""
    for number, text in enumerate(texts):
        encoding = LATIN1 if latin1[number % len(latin1)] and not text.isascii() else UTF8
        encoded = text.encode(encoding, errors="replace")
        content += encoded + endings[number % len(endings)].encode()
    return content


@given(
    texts=LINE_TEXTS,
    latin1=st.lists(st.booleans(), min_size=1, max_size=5),
    endings=st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=1, max_size=3),
    chunk=st.integers(min_value=1, max_value=9),
)
def test_how_the_content_is_chunked_changes_neither_the_verdict_nor_the_text(
    texts: list[str], latin1: list[bool], endings: list[str], chunk: int
) -> None:
    content = _mixed_content(texts, latin1, endings)
    whole = EncodingSniffer()
    whole.feed(content)
    pieces = [content[start : start + chunk] for start in range(0, len(content), chunk)]
    chunked = EncodingSniffer()
    for piece in pieces:
        chunked.feed(piece)
    verdict = whole.encoding(final=True, bom=False)
    assert chunked.encoding(final=True, bom=False) == verdict
    assert b"".join(mixed_as_utf8(pieces)) == b"".join(mixed_as_utf8([content]))
    if verdict != MIXED:
        decoded = content.decode(verdict)
        assert b"".join(mixed_as_utf8([content])) == decoded.encode(UTF8)


def test_a_utf8_character_cut_at_the_end_of_the_head_is_no_error() -> None:
    sniffer = EncodingSniffer()
    sniffer.feed(UCI_HEADER.encode() + b"\n" + "CAFÉ".encode()[:-1])
    assert sniffer.encoding(final=False, bom=False) == UTF8
