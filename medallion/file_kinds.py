"""The one list of file kinds the service reads, shared by the reader, the watcher and the file lifecycle."""

from __future__ import annotations

from enum import StrEnum


class FileFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"


# Longest first, so `.csv.gz` is matched before a shorter suffix could be.
SUFFIXES: dict[str, tuple[FileFormat, bool]] = {
    ".csv.gz": (FileFormat.CSV, True),
    ".tsv.gz": (FileFormat.CSV, True),
    ".txt.gz": (FileFormat.CSV, True),
    ".xlsx": (FileFormat.XLSX, False),
    ".csv": (FileFormat.CSV, False),
    ".tsv": (FileFormat.CSV, False),
    ".txt": (FileFormat.CSV, False),
}
# Names that are never data: hidden files, office lock files, partial downloads and the service's own sidecars.
IGNORED_PREFIXES = (".", "~$")
IGNORED_SUFFIXES = (".part", ".tmp", ".crdownload", ".partial", ".swp", ".error.json")


def kind_of(name: str) -> tuple[FileFormat, bool] | None:
    """The format of a file by its name and whether it is gzip-compressed, or None for a kind not read."""
    lowered = name.lower()
    for suffix, kind in SUFFIXES.items():
        if lowered.endswith(suffix) and len(lowered) > len(suffix):
            return kind
    return None


def suffix_of(name: str) -> str:
    """The readable suffix a name ends with (`.csv.gz`), or its last suffix when it has none of them."""
    lowered = name.lower()
    for suffix in SUFFIXES:
        if lowered.endswith(suffix) and len(lowered) > len(suffix):
            return name[-len(suffix) :]
    stem, dot, last = name.rpartition(".")
    return dot + last if stem else ""


def is_data_file_name(name: str) -> bool:
    """Whether the watcher and the lifecycle take a file of this name as one to load."""
    lowered = name.lower()
    if lowered.startswith(IGNORED_PREFIXES) or lowered.endswith(IGNORED_SUFFIXES):
        return False
    return kind_of(name) is not None
