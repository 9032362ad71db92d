"""Gold's Parquet exports: written under temporary names while the run can still fail, renamed into place only once
the run's changes are committed, so the exports never show a file the warehouse does not hold."""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path
from typing import NamedTuple

import duckdb

from medallion.errors import unusable_path
from medallion.gold import GOLD_TABLES
from medallion.warehouse.sql import query_frame

# Identifiers from gold's own list of tables, never from input.
_SELECT_GOLD = {name: f"SELECT * FROM gold.{name}" for name in GOLD_TABLES}  # noqa: S608


class StagedExport(NamedTuple):
    temporary: Path
    target: Path


class StagedExports:
    """Gold tables written beside their exports under temporary names, waiting to be put in place or thrown away."""

    def __init__(self, staged: list[StagedExport]) -> None:
        self.staged = staged

    def publish(self) -> list[Path]:
        """Rename each temporary file over its export (atomic: same directory); returns the exports."""
        for export in self.staged:
            os.replace(export.temporary, export.target)
        return [export.target for export in self.staged]

    def discard(self) -> None:
        """Remove the temporary files; the exports stay as they were."""
        for export in self.staged:
            export.temporary.unlink(missing_ok=True)


def stage_gold_exports(connection: duckdb.DuckDBPyConnection, target_dir: Path) -> StagedExports:
    """Write every gold table the warehouse has to a temporary file beside `<target_dir>/<table>.parquet`.

    A directory the exports cannot be written to (read-only, a file...) is a configuration error naming
    GOLD_EXPORT_PATH; nothing is left behind on any failure.
    """
    present = {
        row[0]
        for row in connection.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'gold'").fetchall()
    }
    staged = StagedExports([])
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
        for name in (name for name in GOLD_TABLES if name in present):
            export = StagedExport(target_dir / f".{name}.{os.getpid()}.parquet.tmp", target_dir / f"{name}.parquet")
            staged.staged.append(export)
            query_frame(connection, _SELECT_GOLD[name]).write_parquet(export.temporary)
    except BaseException as error:
        with suppress(OSError):
            staged.discard()
        unusable = unusable_path("GOLD_EXPORT_PATH", target_dir, error)
        if unusable is not None:
            raise unusable from error
        raise
    return staged


def export_gold(connection: duckdb.DuckDBPyConnection, target_dir: Path) -> list[Path]:
    """Write each gold table to `<table>.parquet` now, through a temporary name and an atomic rename."""
    return stage_gold_exports(connection, target_dir).publish()
