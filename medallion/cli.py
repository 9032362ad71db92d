"""The `medallion` command: run one file, show the ledger, query the warehouse, check health, start the service."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from contextlib import suppress
from pathlib import Path
from typing import Any, cast

import duckdb

from medallion import reader, steps
from medallion.errors import BadInputError, MedallionError
from medallion.names import printable
from medallion.runs import RunMode, RunStatus, RunSummary
from medallion.settings import Settings, SettingsError, load_settings
from medallion.warehouse import Warehouse, sql


def main(argv: list[str] | None = None) -> int:
    # Prefect's first start with a new PREFECT_HOME reflects its own SQLite schema and warns about two indexes.
    warnings.filterwarnings("ignore", message="Skipped unsupported reflection of expression-based index")
    parser = argparse.ArgumentParser(prog="medallion", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="load one file into the warehouse (no Prefect server needed)")
    run.add_argument("path", type=Path)
    run.add_argument("--mode", default=RunMode.STANDARD.value, choices=[mode.value for mode in RunMode])
    shown = run.add_mutually_exclusive_group()
    shown.add_argument("--verbose", action="store_true", help="show Prefect's log lines (INFO and above) too")
    shown.add_argument("--log-level", choices=LOG_LEVELS, help="show Prefect's log lines at this level and above")
    commands.add_parser("status", help="show the file ledger (from its last snapshot while a run holds the warehouse)")
    query = commands.add_parser("query", help="run one read-only SQL query on the warehouse (or on its exports)")
    query.add_argument("sql")
    commands.add_parser("doctor", help="check settings, warehouse, Prefect API and enrichment sources")
    up = commands.add_parser("up", help="start the Prefect server, the served deployments and the watcher")
    up.add_argument("rest", nargs=argparse.REMAINDER)
    arguments = parser.parse_args(argv)

    if arguments.command == "doctor":
        return _doctor()
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"medallion: {error}", file=sys.stderr)
        return 2
    if arguments.command == "run":
        level = "INFO" if arguments.verbose else arguments.log_level
        return _run(arguments.path, RunMode(arguments.mode), settings, QUIET if level is None else LOG_LEVELS[level])
    if arguments.command == "status":
        return _status(settings)
    if arguments.command == "query":
        return _query(settings, arguments.sql)
    from deployments.service import main as service_main

    return service_main(arguments.rest)


LOG_LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING, "ERROR": logging.ERROR}
# Above every level: the run's summary (or its one error line) is all a run prints unless asked for more.
QUIET = logging.CRITICAL + 1


class _BelowLevelHidden(logging.Filter):
    """Lets through the records at `level` and above. A filter, not the handler's level: Prefect configures its
    logging again for every flow call, which resets handler levels but keeps filters."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.level


def _show_prefect_lines(level: int) -> None:
    """Show Prefect's console lines at `level` and above; the run's logs still reach its API whatever the level."""
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in logging.root.manager.loggerDict)]
    for handler in {handler for logger in loggers for handler in getattr(logger, "handlers", [])}:
        if isinstance(handler, PrefectConsoleHandler):
            for earlier in [each for each in handler.filters if isinstance(each, _BelowLevelHidden)]:
                handler.removeFilter(earlier)
            handler.addFilter(_BelowLevelHidden(level))


def _run(path: Path, mode: RunMode, settings: Settings, shown_level: int) -> int:
    try:
        reader.head_profile(path)
    except BadInputError as error:
        print(f"medallion: {error}", file=sys.stderr)
        with suppress(MedallionError, OSError, duckdb.Error), Warehouse(settings.pipeline) as warehouse:
            steps.record_refusal(warehouse, path, error, flow_run_id=None, started_at=sql.now())
        return 1
    except MedallionError as error:
        print(f"medallion: {error}", file=sys.stderr)
        return 1
    from flows.file_load import medallion_over

    _show_prefect_lines(shown_level)
    medallion = medallion_over(settings)
    try:
        # Prefect hands back the result of the state the flow returns (or raises its error).
        summary = cast(RunSummary, medallion(str(path), mode))
    except MedallionError as error:
        print(f"medallion: {error}", file=sys.stderr)
        return 1
    except Exception as error:
        print(printable(f"medallion: the run failed: {type(error).__name__}: {error}"), file=sys.stderr)
        return 1
    print(summary_text(summary))
    return 0


def summary_text(summary: RunSummary) -> str:
    """A short human summary of one flow run."""
    if summary.status is RunStatus.SKIPPED:
        return (
            f"{printable(summary.file_name)}: already loaded (content {summary.file_id[:12]}), nothing changed\n"
            f"warehouse: {summary.warehouse}"
        )
    assert summary.quality is not None and summary.gold is not None, "a loaded run has scores and gold"
    reasons = ", ".join(f"{reason} {count:,}" for reason, count in summary.rejected_by_reason.items())
    gold = summary.gold
    lines = [
        f"{printable(summary.file_name)}: loaded (content {summary.file_id[:12]})",
        f"  bronze     {summary.bronze_rows:>12,} rows",
        f"  silver     {summary.silver_rows:>12,} rows",
        f"  rejected   {summary.rejected_rows:>12,} rows" + (f" ({reasons})" if reasons else ""),
        f"  duplicates {summary.duplicate_rows:>12,} rows removed",
        f"  overlaps   {summary.overlap_rows:>12,} rows already in silver"
        + (f" ({_count(summary.changed_invoices, 'invoice')} came back changed)" if summary.changed_invoices else ""),
        f"  quality    {summary.quality.score:>12.1f} / 100"
        + ("  (below threshold)" if summary.below_threshold else ""),
        f"  enrichment {summary.enrichment_in_words()}",
        f"  gold       net revenue {gold.net_revenue}, {gold.orders} orders, {gold.customers} customers",
        f"warehouse: {summary.warehouse}",
    ]
    return "\n".join(lines)


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" + ("" if number == 1 else "s")


def _status(settings: Settings) -> int:
    from medallion.readers import ReadSource, ledger_rows

    try:
        answer = ledger_rows(settings, on_wait=_say)
    except MedallionError as error:
        print(f"medallion: {error}", file=sys.stderr)
        return 1
    if answer.source is not ReadSource.WAREHOUSE:
        print(answer.note)
    if answer.source is not ReadSource.NOTHING:
        print(ledger_text(answer.frame.rows(named=True)) if answer.frame.height else "the ledger is empty")
    return 0


def _query(settings: Settings, text: str) -> int:
    import polars as pl

    from medallion.readers import query

    try:
        answer = query(settings, text, on_wait=_say)
    except MedallionError as error:
        print(f"medallion: {error}", file=sys.stderr)
        return 1
    print(answer.note, file=sys.stderr)
    with pl.Config(tbl_rows=100, tbl_cols=30, fmt_str_lengths=60):
        print(answer.frame)
    return 0


def _doctor() -> int:
    from medallion.doctor import doctor_exit_code, doctor_text, health_checks, invalid_settings_check

    try:
        checks = health_checks(load_settings())
    except SettingsError as error:
        checks = [invalid_settings_check(error)]
    print(doctor_text(checks))
    return doctor_exit_code(checks)


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def ledger_text(rows: list[dict[str, Any]]) -> str:
    """The file ledger as a plain text table, newest first."""
    header = (
        f"{'file':<40} {'status':<10} {'bronze':>10} {'silver':>10} {'rejected':>9} {'dupes':>7}  {'finished':<19}  id"
    )
    lines = [header]
    for row in rows:
        name = printable(row["file_name"])
        name = name if len(name) <= 40 else name[:37] + "..."
        finished = row["finished_at"].strftime("%Y-%m-%d %H:%M:%S") if row["finished_at"] else "-"
        counts = [row[column] for column in ("bronze_rows", "silver_rows", "rejected_rows", "duplicate_rows")]
        bronze, silver_rows, rejected, duplicates = ("-" if value is None else f"{value:,}" for value in counts)
        lines.append(
            f"{name:<40} {row['status']:<10} {bronze:>10} {silver_rows:>10} {rejected:>9} {duplicates:>7}  "
            f"{finished:<19}  {row['file_id']}"
        )
        if row["error"]:
            lines.append(f"    error: {printable(row['error'])}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
