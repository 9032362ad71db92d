"""Load the real data set month by month through `medallion run`, then rebuild silver and gold from bronze as the
weekly reprocessing does, and check that the two warehouses hold the same silver and gold.

Usage: python scripts/verify_monthly.py PATH/online_retail_uci.parquet [--workdir DIR] [--layout uci|retail_ii]
                                        [--overlap-rows 2000]

Each calendar month of invoice dates becomes a file of its own in the chosen layout (verify_real_data.py's), loaded
in date order by a whole `medallion run` process with offline enrichment, so gold moves by each month's rows.
Then an overlapping export comes: a file of the first rows of 2011-11 again, whose every row must be an overlap
(or a repeat within it) and change nothing. A copy of that warehouse is then rebuilt from bronze (`rebuild_silver`,
then gold from the whole of silver). Every gold table and silver's lines are compared both ways with EXCEPT ALL
(only `kpis.refreshed_at` left out), the ledger's rows are reconciled per file, and the totals are checked against
verify_real_data.py's independent computation. Prints what it finds; exits non-zero on any difference.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from verify_real_data import expected_figures, mismatches, write_frame  # noqa: E402

MEDALLION = Path(sys.executable).with_name("medallion")


def write_months(parquet: Path, folder: Path, layout: str) -> list[Path]:
    """One CSV per calendar month of invoice dates, named so that their names sort in date order."""
    frame = pl.read_parquet(parquet)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for (month,), rows in sorted(frame.group_by(pl.col("InvoiceDate").dt.strftime("%Y-%m")), key=lambda g: g[0]):
        path = folder / f"online_retail_{month}.csv"
        write_frame(rows.sort("InvoiceDate", maintain_order=True), path, layout)
        paths.append(path)
    return paths


def write_overlap(parquet: Path, target: Path, layout: str, rows: int) -> Path:
    """The first `rows` rows of 2011-11 again, as an export of "the last days" that another file had."""
    frame = pl.read_parquet(parquet).filter(pl.col("InvoiceDate").dt.strftime("%Y-%m") == "2011-11")
    write_frame(frame.sort("InvoiceDate", maintain_order=True).head(rows), target, layout)
    return target


def run_environment(workdir: Path, warehouse: Path) -> dict[str, str]:
    return {
        **{key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")},
        "PREFECT_HOME": str(workdir / "prefect"),
        "WAREHOUSE_PATH": str(warehouse),
        "GOLD_EXPORT_PATH": str(workdir / f"gold_{warehouse.stem}"),
        "STAGING_PATH": str(workdir / "staging"),
        "ENABLE_EXTERNAL_ENRICHMENT": "false",
    }


def timed_run(label: str, command: list[str], workdir: Path, warehouse: Path) -> bool:
    """Run `command` on the warehouse `warehouse`, print its exit and seconds under `label` (and its output when it
    fails); whether it succeeded."""
    started = time.perf_counter()
    run = subprocess.run(
        command, env=run_environment(workdir, warehouse), cwd=ROOT, text=True, capture_output=True, check=False
    )
    print(f"  {label}: exit {run.returncode} in {time.perf_counter() - started:.1f} s")
    if run.returncode != 0:
        print(run.stdout[-3000:], run.stderr[-3000:], file=sys.stderr)
    return run.returncode == 0


def load_months(paths: list[Path], workdir: Path, warehouse: Path) -> bool:
    return all(timed_run(path.name, [str(MEDALLION), "run", str(path)], workdir, warehouse) for path in paths)


REBUILD = """
import sys
from prefect import flow
from medallion import steps
from medallion.settings import load_settings
from medallion.warehouse import Warehouse

@flow(name="verify-monthly-rebuild")
def rebuild() -> None:
    pipeline = load_settings().pipeline
    with Warehouse(pipeline) as warehouse:
        print(steps.rebuild_silver(warehouse, pipeline))
        print(steps.load_gold(warehouse, pipeline))

rebuild()
"""


def rebuild(workdir: Path, warehouse: Path) -> bool:
    """Silver rebuilt from bronze and gold from the whole of silver, the weekly reprocessing's steps, in a process
    of their own on the warehouse `warehouse`."""
    return timed_run("rebuilt from bronze", [sys.executable, "-c", REBUILD], workdir, warehouse)


def compared_tables(connection: duckdb.DuckDBPyConnection) -> list[tuple[str, int, int, int]]:
    """Per table: its rows in the monthly warehouse, and the rows only it has and only the rebuilt one has."""
    from medallion.gold import GOLD_TABLES

    tables = [*(f"gold.{name}" for name in GOLD_TABLES), "silver.lines"]
    found = []
    for table in tables:
        columns = "* EXCLUDE (refreshed_at)" if table == "gold.kpis" else "*"
        # Table names from the code's own list, never from input.
        monthly = f"SELECT {columns} FROM monthly.{table}"  # noqa: S608
        rebuilt = f"SELECT {columns} FROM rebuilt.{table}"  # noqa: S608
        rows = connection.execute(f"SELECT count(*) FROM monthly.{table}").fetchone()  # noqa: S608
        only_monthly = connection.execute(f"SELECT count(*) FROM ({monthly} EXCEPT ALL {rebuilt})").fetchone()  # noqa: S608
        only_rebuilt = connection.execute(f"SELECT count(*) FROM ({rebuilt} EXCEPT ALL {monthly})").fetchone()  # noqa: S608
        assert rows and only_monthly and only_rebuilt
        found.append((table, int(rows[0]), int(only_monthly[0]), int(only_rebuilt[0])))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parquet", type=Path)
    parser.add_argument("--layout", choices=["uci", "retail_ii"], default="uci")
    parser.add_argument("--workdir", type=Path, default=ROOT / "data" / "verify" / "monthly")
    parser.add_argument("--overlap-rows", type=int, default=2000)
    arguments = parser.parse_args()
    workdir = arguments.workdir.resolve()
    shutil.rmtree(workdir, ignore_errors=True)
    paths = write_months(arguments.parquet, workdir / "months", arguments.layout)
    overlap = write_overlap(
        arguments.parquet, workdir / "online_retail_2011-11_again.csv", arguments.layout, arguments.overlap_rows
    )
    print(f"{len(paths)} monthly files of the real set ({arguments.layout} layout), then {overlap.name}, one run each:")
    monthly, rebuilt = workdir / "monthly.duckdb", workdir / "rebuilt.duckdb"
    if not load_months([*paths, overlap], workdir, monthly):
        return 1
    shutil.copyfile(monthly, rebuilt)
    if not rebuild(workdir, rebuilt):
        return 1

    failures = 0
    with duckdb.connect() as connection:
        connection.execute(f"ATTACH '{monthly}' AS monthly (READ_ONLY)")
        connection.execute(f"ATTACH '{rebuilt}' AS rebuilt (READ_ONLY)")
        print("monthly warehouse against the rebuild from bronze (rows only in one of them, both ways):")
        for table, rows, only_monthly, only_rebuilt in compared_tables(connection):
            same = only_monthly == only_rebuilt == 0
            failures += not same
            print(f"  {table:<26} {rows:>9,} rows  {only_monthly} / {only_rebuilt}  {'same' if same else 'DIFFERENT'}")
        ledger = connection.execute(
            """SELECT count(*), sum(bronze_rows), sum(silver_rows), sum(rejected_rows), sum(duplicate_rows),
                      sum(overlap_rows),
                      count(*) FILTER (WHERE bronze_rows <> silver_rows + rejected_rows + duplicate_rows
                                                          + overlap_rows)
               FROM monthly.ops.files WHERE status = 'loaded' AND file_name <> ?""",
            [overlap.name],
        ).fetchone()
        again = connection.execute(
            """SELECT bronze_rows, silver_rows, rejected_rows, duplicate_rows, overlap_rows FROM monthly.ops.files
               WHERE status = 'loaded' AND file_name = ?""",
            [overlap.name],
        ).fetchone()
        kpis = connection.execute(
            "SELECT net_revenue, gross_revenue, orders, customers FROM monthly.gold.kpis"
        ).fetchone()
        countries = connection.execute("SELECT count(*) FROM monthly.gold.sales_by_country").fetchone()
    assert ledger and kpis and countries and again
    print(
        f"{overlap.name}: {again[0]:,} bronze = {again[1]:,} silver + {again[2]:,} rejected + {again[3]:,} "
        f"duplicates + {again[4]:,} overlaps"
    )
    failures += again[0] != arguments.overlap_rows or again[1] != 0 or again[3] + again[4] != again[0]
    files, bronze, silver, rejected, duplicates, overlaps, unbalanced = ledger
    failures += files != len(paths) or unbalanced != 0
    print(
        f"ledger: {files} files loaded; {bronze:,} bronze = {silver:,} silver + {rejected:,} rejected + "
        f"{duplicates:,} duplicates + {overlaps:,} overlaps; files that do not add up: {unbalanced}"
    )
    actual = {
        "bronze_rows": bronze,
        "duplicate_rows": duplicates,
        "net_revenue": kpis[0],
        "gross_revenue": kpis[1],
        "orders": kpis[2],
        "customers": kpis[3],
        "countries": countries[0],
    }
    failures += mismatches(actual, expected_figures(arguments.parquet))
    print("all the same" if not failures else f"{failures} differences")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
