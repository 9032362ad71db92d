"""Time gold for one more month's file into a warehouse holding the generated 10x data: the full rebuild
(`publish_gold`) against the update by the file's rows (`update_gold`), and the same month into an empty warehouse.

The 10x file is generated with scripts/generate_data.py when missing (as scripts/bench.py does). Its last full
month of invoice dates is split off into a file of its own; the rest is loaded through bronze, silver and offline
enrichment into a base warehouse kept under --work-dir and reused by later runs (--fresh builds it again, as it
must be after a change to gold's state). Each measurement loads the month into a copy of it and times each way of
publishing gold; the update is timed again on refreshing the same file, and the median printed. Heavy: run it on a
quiet machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

from generate_data import default_path  # noqa: E402

from enrichment import build_enrichment  # noqa: E402
from medallion import gold, steps  # noqa: E402
from medallion.settings import Settings, load_settings  # noqa: E402
from medallion.warehouse import Warehouse, ledger  # noqa: E402

GENERATOR_DATE = "%m/%d/%Y %H:%M"


def generated_file(multiple: float, data_dir: Path, seed: int) -> Path:
    """The generated file of `multiple` times the real set, written by the generator in its own process first."""
    path = default_path(multiple, data_dir)
    if not path.exists():
        script = ROOT / "scripts" / "generate_data.py"
        command = [sys.executable, str(script), repr(multiple), "--out-dir", str(data_dir), "--seed", str(seed)]
        subprocess.run(command, cwd=ROOT, check=True)
    return path


def split_last_month(source: Path, folder: Path) -> tuple[Path, Path]:
    """Write `source`'s rows of its last full month of invoice dates (the latest holding at least a median month's
    rows: the generator's last month is cut short) to one file and the others to another, each line as it was,
    under the source's header; reused when present."""
    base, month = folder / "base.csv", folder / "month.csv"
    if base.exists() and month.exists():
        return base, month
    dated = pl.read_csv(source, columns=[0, 5], infer_schema=False).select(
        pl.nth(0).alias("number"), pl.nth(1).str.strptime(pl.Datetime, GENERATOR_DATE).alias("at")
    )
    months = dated.group_by(year=pl.col("at").dt.year(), month=pl.col("at").dt.month()).len()
    full = months.filter(pl.col("len") >= pl.col("len").median()).sort("year", "month").row(-1, named=True)
    chosen = dated.filter((pl.col("at").dt.year() == full["year"]) & (pl.col("at").dt.month() == full["month"]))
    numbers = set(chosen["number"].to_list())
    folder.mkdir(parents=True, exist_ok=True)
    with source.open(encoding="utf-8") as lines, base.open("w") as rest, month.open("w") as held:
        header = lines.readline()
        rest.write(header)
        held.write(header)
        for line in lines:
            (held if line.split(",", 1)[0].strip('"') in numbers else rest).write(line)
    return base, month


def settings_for(path: Path) -> Settings:
    folder = path.parent
    return load_settings(
        WAREHOUSE_PATH=path,
        STAGING_PATH=folder / "staging",
        GOLD_EXPORT_PATH=folder / "gold",
        ENABLE_EXTERNAL_ENRICHMENT=False,
    )


def load_file(warehouse: Warehouse, settings: Settings, path: Path) -> tuple[int, list[int]]:
    """Bronze, silver and offline enrichment for one file; returns its file key and the keys it superseded."""
    report = steps.load_bronze(warehouse, path, settings.pipeline)
    silver = steps.load_silver(warehouse, report.file_id, settings.pipeline)
    with warehouse.connection() as connection:
        build_enrichment(connection, settings.enrichment, live=False)
        return (
            ledger.key_of_file(connection, report.file_id),
            [ledger.key_of_file(connection, old) for old in silver.superseded],
        )


def gold_options(settings: Settings) -> dict[str, Any]:
    pipeline = settings.pipeline
    return {
        "top_n": pipeline.top_n,
        "vip_percentile": pipeline.vip_percentile,
        "low_value_percentile": pipeline.low_value_percentile,
    }


def base_warehouse(base_csv: Path, path: Path) -> Path:
    """A warehouse holding `base_csv` with gold published; built once, then reused."""
    if path.exists():
        return path
    building = path.with_name(f".{path.name}.building")
    building.unlink(missing_ok=True)
    settings = settings_for(building)
    started = time.perf_counter()
    with Warehouse(settings.pipeline) as warehouse:
        load_file(warehouse, settings, base_csv)
        with warehouse.connection() as connection:
            gold.publish_gold(connection, **gold_options(settings))
            connection.execute("CHECKPOINT")
    building.rename(path)
    print(f"built the base warehouse in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return path


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def month_into(warehouse_path: Path, month_csv: Path, *, repeats: int, rebuild: bool) -> dict[str, float]:
    """Load the month into the warehouse at `warehouse_path`, then time gold's update by its rows (the first and
    `repeats - 1` refreshes of the same file) and, with `rebuild`, a full rebuild."""
    settings = settings_for(warehouse_path)
    options = gold_options(settings)
    with Warehouse(settings.pipeline) as warehouse:
        key, superseded = load_file(warehouse, settings, month_csv)
        with warehouse.connection() as connection:
            updates = [
                timed(
                    lambda: gold.update_gold(
                        connection,
                        added_file_keys=[key],
                        removed_file_keys=superseded,
                        **options,
                    )
                )
                for _ in range(repeats)
            ]
            figures = {"update_first_s": updates[0], "update_median_s": statistics.median(updates)}
            if rebuild:
                figures["rebuild_s"] = timed(lambda: gold.publish_gold(connection, **options))
            figures["rows"] = float(gold.gold_kpis(connection)["rows"])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--multiple", type=float, default=10.0, help="size of the warehouse, in real sets")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data" / "bench")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "data" / "bench" / "gold_increment")
    parser.add_argument("--seed", type=int, default=352)
    parser.add_argument("--repeats", type=int, default=3, help="updates timed per warehouse")
    parser.add_argument("--fresh", action="store_true", help="split the file and build the base warehouse again")
    arguments = parser.parse_args()

    load = os.getloadavg()[0]
    if load >= 2.5:
        print(f"warning: load average {load:.1f}; the figures will be slower than on a quiet machine", file=sys.stderr)
    source = generated_file(arguments.multiple, arguments.data_dir, arguments.seed)
    folder = arguments.work_dir / source.stem
    if arguments.fresh:
        shutil.rmtree(folder, ignore_errors=True)
    base_csv, month_csv = split_last_month(source, folder)
    base = base_warehouse(base_csv, folder / "base.duckdb")

    work = folder / "work" / "warehouse.duckdb"
    shutil.rmtree(work.parent, ignore_errors=True)
    work.parent.mkdir(parents=True)
    shutil.copy(base, work)
    full = month_into(work, month_csv, repeats=arguments.repeats, rebuild=True)
    shutil.rmtree(work.parent)
    work.parent.mkdir(parents=True)
    empty = month_into(work, month_csv, repeats=arguments.repeats, rebuild=False)
    shutil.rmtree(work.parent)

    month_rows = sum(1 for _ in month_csv.open(encoding="utf-8")) - 1
    print(f"gold for one month's file ({month_rows:,} rows), load average {load:.1f} at the start")
    print(f"  into the {arguments.multiple:g}x warehouse ({full['rows']:,.0f} rows in gold):")
    print(f"    full rebuild (publish_gold)        {full['rebuild_s']:6.2f} s")
    print(
        f"    update by the file (update_gold)   {full['update_first_s']:6.2f} s  (median of {arguments.repeats}: "
        f"{full['update_median_s']:.2f} s)"
    )
    print("  into an empty warehouse:")
    print(
        f"    update by the file (update_gold)   {empty['update_first_s']:6.2f} s  (median of {arguments.repeats}: "
        f"{empty['update_median_s']:.2f} s)"
    )
    print(
        f"  update into the {arguments.multiple:g}x warehouse / into an empty one: "
        f"{full['update_median_s'] / empty['update_median_s']:.2f}"
    )


if __name__ == "__main__":
    main()
