"""Load the full real data set through the medallion flow and check it against an independent computation.

Usage: python scripts/verify_real_data.py PATH/online_retail_uci.parquet [--layout uci|retail_ii] [--workdir DIR]

Writes the parquet as a CSV in the chosen layout (the UCI one, or Online Retail II's column names with ISO dates
and float customer ids), runs `medallion run` on it in a fresh warehouse, then recomputes reconciliation and gold
figures from the parquet with Polars alone and prints both side by side. Exits non-zero on any mismatch.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl

RETAIL_II_NAMES = {"InvoiceNo": "Invoice", "UnitPrice": "Price", "CustomerID": "Customer ID"}
COUNTRY_NAMES = {"EIRE": "Ireland", "RSA": "South Africa", "USA": "United States"}
LAYOUT = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]


def write_layout(parquet: Path, target: Path, layout: str) -> None:
    write_frame(pl.read_parquet(parquet), target, layout)


def write_frame(frame: pl.DataFrame, target: Path, layout: str) -> None:
    """Rows of the real set as a CSV in the layout: `nan` descriptions missing, dates as the layout writes them."""
    frame = frame.with_columns(
        pl.when(pl.col("Description") == "nan").then(None).otherwise(pl.col("Description")).alias("Description")
    )
    if layout == "retail_ii":
        frame = frame.with_columns(pl.col("InvoiceDate").dt.strftime("%Y-%m-%d %H:%M:%S")).rename(RETAIL_II_NAMES)
    else:
        frame = frame.with_columns(pl.col("InvoiceDate").dt.strftime("%-m/%-d/%Y %-H:%M"))
    frame.write_csv(target)


def expected_figures(parquet: Path) -> dict[str, float | int]:
    raw = pl.read_parquet(parquet).with_columns(
        pl.when(pl.col("Description") == "nan").then(None).otherwise(pl.col("Description")).alias("Description"),
        pl.col("InvoiceDate").dt.truncate("1m"),
    )
    unique = raw.unique(subset=LAYOUT, keep="first")
    lines = unique.filter(~pl.col("InvoiceNo").str.starts_with("A")).with_columns(
        (pl.col("Quantity") * pl.col("UnitPrice")).round(2).alias("amount"),
        pl.col("Country").replace(COUNTRY_NAMES),
    )
    sales = lines.filter(~pl.col("InvoiceNo").str.starts_with("C"))
    return {
        "bronze_rows": raw.height,
        "duplicate_rows": raw.height - unique.height,
        "net_revenue": round(lines["amount"].sum(), 2),
        "gross_revenue": round(sales["amount"].sum(), 2),
        "orders": sales["InvoiceNo"].n_unique(),
        "customers": lines["CustomerID"].drop_nulls().n_unique(),
        "countries": lines["Country"].n_unique(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parquet", type=Path)
    parser.add_argument("--layout", choices=["uci", "retail_ii"], default="uci")
    parser.add_argument("--workdir", type=Path, default=Path("data/verify"))
    arguments = parser.parse_args()
    workdir = arguments.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    source = workdir / f"online_retail_{arguments.layout}.csv"
    write_layout(arguments.parquet, source, arguments.layout)
    warehouse = workdir / f"{arguments.layout}.duckdb"
    warehouse.unlink(missing_ok=True)
    environment = {
        **os.environ,
        "WAREHOUSE_PATH": str(warehouse),
        "GOLD_EXPORT_PATH": str(workdir / f"gold_{arguments.layout}"),
        "STAGING_PATH": str(workdir / "staging"),
    }
    started = time.perf_counter()
    run = subprocess.run(
        [str(Path(sys.executable).with_name("medallion")), "run", str(source)],
        env=environment,
        text=True,
        capture_output=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    print(run.stdout)
    if run.returncode != 0:
        print(run.stderr[-3000:], file=sys.stderr)
        return run.returncode
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        ledger = connection.execute(
            "SELECT bronze_rows, silver_rows, rejected_rows, duplicate_rows, layout FROM ops.files"
        ).fetchall()[0]
        kpis = connection.execute("SELECT net_revenue, gross_revenue, orders, customers FROM gold.kpis").fetchall()[0]
        countries = connection.execute("SELECT count(*) FROM gold.sales_by_country").fetchall()[0][0]
    bronze, silver, rejected, duplicates, layout = ledger
    actual = {
        "bronze_rows": bronze,
        "duplicate_rows": duplicates,
        "net_revenue": kpis[0],
        "gross_revenue": kpis[1],
        "orders": kpis[2],
        "customers": kpis[3],
        "countries": countries,
    }
    expected = expected_figures(arguments.parquet)
    print(f"layout detected: {layout}; flow wall time {elapsed:.1f} s (including Prefect start)")
    print(
        f"reconciliation: {bronze:,} bronze = {silver:,} silver + {rejected:,} rejected + {duplicates:,} duplicates"
        f" -> {'holds' if bronze == silver + rejected + duplicates else 'BROKEN'}"
    )
    failures = mismatches(actual, expected)
    return 1 if failures or bronze != silver + rejected + duplicates else 0


def mismatches(actual: dict[str, object], expected: dict[str, float | int]) -> int:
    """Print each figure of the warehouse beside the independent one; returns how many differ (by a cent or more)."""
    failures = 0
    for name, value in expected.items():
        matches = abs(float(str(actual[name])) - float(value)) < 0.011
        failures += not matches
        print(
            f"  {name:<15} warehouse {actual[name]!s:>14}  independent {value!s:>14}  {'ok' if matches else 'MISMATCH'}"
        )
    return failures


if __name__ == "__main__":
    raise SystemExit(main())
