"""The `medallion` command: run one file, show the ledger, start the service."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from medallion import reader
from medallion.errors import MedallionError
from medallion.runs import RunMode, RunStatus, RunSummary
from medallion.settings import Settings, SettingsError, load_settings
from medallion.warehouse import Warehouse, ledger


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medallion", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="load one file into the warehouse (no Prefect server needed)")
    run.add_argument("path", type=Path)
    run.add_argument("--mode", default=RunMode.STANDARD.value, choices=[mode.value for mode in RunMode])
    commands.add_parser("status", help="show the file ledger")
    up = commands.add_parser("up", help="start the Prefect server, the served deployments and the watcher")
    up.add_argument("rest", nargs=argparse.REMAINDER)
    arguments = parser.parse_args(argv)

    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"medallion: {error}", file=sys.stderr)
        return 2
    if arguments.command == "run":
        return _run(arguments.path, RunMode(arguments.mode), settings)
    if arguments.command == "status":
        return _status(settings)
    from deployments.service import main as service_main

    return service_main(arguments.rest)


def _run(path: Path, mode: RunMode, settings: Settings) -> int:
    try:
        reader.head_profile(path)
    except MedallionError as error:
        print(f"medallion: {error}", file=sys.stderr)
        return 1
    from prefect import flow

    from flows.file_load import load_file

    # A flow of its own around `load_file`, so the run uses the settings built here rather than building them again.
    @flow(name="medallion", log_prints=False)
    def medallion(path: str, mode: RunMode) -> RunSummary:
        return load_file(path, settings, mode=mode)

    try:
        summary = medallion(str(path), mode)
    except MedallionError as error:
        print(f"medallion: {error}", file=sys.stderr)
        return 1
    except Exception as error:
        print(f"medallion: the run failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(summary_text(summary))
    return 0


def summary_text(summary: RunSummary) -> str:
    """A short human summary of one flow run."""
    if summary.status is RunStatus.SKIPPED:
        return (
            f"{summary.file_name}: already loaded (content {summary.file_id[:12]}), nothing changed\n"
            f"warehouse: {summary.warehouse}"
        )
    assert summary.quality is not None and summary.gold is not None, "a loaded run has scores and gold"
    reasons = ", ".join(f"{reason} {count:,}" for reason, count in summary.rejected_by_reason.items())
    gold = summary.gold
    lines = [
        f"{summary.file_name}: loaded (content {summary.file_id[:12]})",
        f"  bronze     {summary.bronze_rows:>12,} rows",
        f"  silver     {summary.silver_rows:>12,} rows",
        f"  rejected   {summary.rejected_rows:>12,} rows" + (f" ({reasons})" if reasons else ""),
        f"  duplicates {summary.duplicate_rows:>12,} rows removed",
        f"  quality    {summary.quality.score:>12.1f} / 100"
        + ("  (below threshold)" if summary.below_threshold else ""),
        f"  gold       net revenue {gold.net_revenue}, {gold.orders} orders, {gold.customers} customers",
        f"warehouse: {summary.warehouse}",
    ]
    return "\n".join(lines)


def _status(settings: Settings) -> int:
    if not settings.pipeline.warehouse_path.exists():
        print(f"no warehouse yet at {settings.pipeline.warehouse_path}")
        return 0
    with Warehouse(settings.pipeline, read_only=True) as warehouse, warehouse.connection() as connection:
        files = ledger.file_ledger(connection)
    print(ledger_text(files.rows(named=True)) if files.height else "the ledger is empty")
    return 0


def ledger_text(rows: list[dict[str, Any]]) -> str:
    """The file ledger as a plain text table, newest first."""
    header = (
        f"{'file':<40} {'status':<10} {'bronze':>10} {'silver':>10} {'rejected':>9} {'dupes':>7}  {'finished':<19}  id"
    )
    lines = [header]
    for row in rows:
        name = row["file_name"] if len(row["file_name"]) <= 40 else row["file_name"][:37] + "..."
        finished = row["finished_at"].strftime("%Y-%m-%d %H:%M:%S") if row["finished_at"] else "-"
        counts = [row[column] for column in ("bronze_rows", "silver_rows", "rejected_rows", "duplicate_rows")]
        bronze, silver_rows, rejected, duplicates = ("-" if value is None else f"{value:,}" for value in counts)
        lines.append(
            f"{name:<40} {row['status']:<10} {bronze:>10} {silver_rows:>10} {rejected:>9} {duplicates:>7}  "
            f"{finished:<19}  {row['file_id']}"
        )
        if row["error"]:
            lines.append(f"    error: {row['error']}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
