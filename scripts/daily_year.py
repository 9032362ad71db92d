"""A year of daily drops: one day's file into a warehouse that took the real set a day at a time, against the same
file into an empty warehouse, as whole `medallion run` processes (offline enrichment, every gold table).

The real UCI set is cut into one file per invoice day in the downloaded layout (305 days). All but the last day are
loaded into a warehouse in batches of 50, as a burst of drops would be (the service's batch flow, in a process of
its own); the warehouse is cached under data/bench/scale per version of the core code. Then the last day's file
goes by `medallion run` into a copy of it and into an empty warehouse, interleaved, and the medians are printed.
Figures only: nothing here asserts.

    .venv/bin/python scripts/daily_year.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import scale  # noqa: E402

DAYS = scale.WORK / "days"
BATCH_FILES = 50


def day_files(parquet: Path) -> list[Path]:
    """One file per invoice day of the real set, in the downloaded layout, in date order."""
    if not DAYS.is_dir() or not any(DAYS.glob("*.csv")):
        rows = scale.real_rows(parquet).with_columns(pl.col("InvoiceDate").dt.date().alias("day"))
        for (day,), part in rows.group_by("day", maintain_order=True):
            scale.write_downloaded_layout(part.drop("day"), DAYS / f"online_retail_{day}.csv")
    return sorted(DAYS.glob("online_retail_*.csv"))


def year_warehouse(days: list[Path]) -> tuple[Path, float]:
    """The warehouse holding `days`, loaded in batches; cached per version of the core code. Returns the
    warehouse and the seconds the batches took (0 when cached)."""
    target = scale.WORK / "warehouses" / f"daily-{len(days)}-{scale.code_key()}.duckdb"
    if target.exists():
        return target, 0.0
    started = time.perf_counter()
    with scale.scratch("daily-build") as folder:
        raw = folder / "raw"
        raw.mkdir()
        for number in range(0, len(days), BATCH_FILES):
            batch = [shutil.copy(day, raw / day.name) for day in days[number : number + BATCH_FILES]]
            environment = scale.run_environment(folder) | {
                "RAW_DATA_PATH": str(raw),
                "PROCESSED_PATH": str(folder / "processed"),
                "PREFECT_LOGGING_LEVEL": "WARNING",
            }
            completed = subprocess.run(
                [sys.executable, __file__, "--child-batch", *map(str, batch)],
                cwd=ROOT,
                env=environment,
                capture_output=True,
                text=True,
            )
            if completed.returncode != 0:
                raise RuntimeError(f"a batch of daily files failed:\n{completed.stdout}{completed.stderr}")
        target.parent.mkdir(parents=True, exist_ok=True)
        for older in target.parent.glob("daily-*.duckdb"):
            older.unlink()
        shutil.move(folder / "warehouse.duckdb", target)
    return target, time.perf_counter() - started


def child_batch(paths: list[str]) -> None:
    """Load `paths` as one batch run of the service's file flow, in this process."""
    from deployments.reporting import BatchRun
    from flows.service import medallion_file

    batch = medallion_file(paths=paths, return_state=True).result(raise_on_failure=True)
    if not isinstance(batch, BatchRun):
        raise SystemExit(f"not a batch run: {batch!r}")
    failed = [item.file_name for item in batch.files if item.failure]
    if failed:
        raise SystemExit(f"files not loaded: {failed}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child-batch", nargs="+", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child_batch:
        child_batch(arguments.child_batch)
        return
    days = day_files(scale.PARQUET)
    held, drop = days[:-1], days[-1]
    scale.warm_prefect_home()
    warehouse, build_s = year_warehouse(held)
    if build_s:
        print(f"loaded {len(held)} daily files in batches of {BATCH_FILES} in {build_s:.0f} s", flush=True)
    into_year, into_empty = [], []
    for _ in range(arguments.repeats):
        into_year.append(scale.month_into(drop, warehouse))
        into_empty.append(scale.month_into(drop, None))
    year, empty = statistics.median(into_year), statistics.median(into_empty)
    rows = len(drop.read_text().splitlines()) - 1
    print(
        f"{drop.name} ({rows:,} rows) into a warehouse of {len(held)} daily files "
        f"({warehouse.stat().st_size / 2**20:.0f} MiB): {year:.2f} s; into an empty one: {empty:.2f} s; "
        f"ratio {year / empty:.2f} (medians of {arguments.repeats}, load average {os.getloadavg()[0]:.1f})"
    )
    print(f"  into the year: {[round(s, 2) for s in into_year]}; into empty: {[round(s, 2) for s in into_empty]}")


if __name__ == "__main__":
    main()
