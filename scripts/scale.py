"""Issue 15's scale figures, measured on what users run: prints the targets table, writes bench/scale.json and .md.

    .venv/bin/python scripts/scale.py [--quick] [--with-100x] [--keep-large] [--repeats 3]

1. A real month of the UCI set (written in the downloaded CSV layout) by `medallion run`, a whole process with
   offline enrichment and every gold table, into a copy of a warehouse holding the real set ten (and, with
   --with-100x, a hundred) times over as shifted copies, against the same month into an empty warehouse.
2. A burst of 50 small files through a scratch `medallion up` (scripts/burst.py).
3. Drop to Running in a quiet scratch service, median of 10 (scripts/latency.py).
4. Drop to gold of the real file (scripts/latency.py) while two CPU hogs keep the machine busy.
5. The whole `medallion run` at the margin, 10x minus 1x, over DuckDB's floor (scripts/bench.py's) at 10x minus
   1x, on the generator's files and on files of shifted copies of the real set.
6. The real month, then a file of its first 2,000 rows: net revenue counted again.

The real set is read from ../shared/data (a development copy the project never reads at run time). Built files
and warehouses are cached under data/bench/scale (warehouses per version of the core code); every measurement
starts from a copy. Figures only: nothing here asserts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import burst as burst_script  # noqa: E402
import latency  # noqa: E402
from generate_data import default_path  # noqa: E402
from verify_real_data import LAYOUT, write_layout  # noqa: E402

import bench  # noqa: E402

PARQUET = ROOT.parent / "shared" / "data" / "online_retail_uci.parquet"
WORK = ROOT / "data" / "bench" / "scale"
MEDALLION = ROOT / ".venv" / "bin" / "medallion"
CORE = ("medallion", "flows", "tasks", "enrichment")
DOWNLOADED_DATE = "%-m/%-d/%Y %-H:%M"
# Copy k of the real set: invoice numbers k million on, customer ids k hundred thousand on (the real ones are
# five digits), dates k times 52 weeks back (same weekdays).
INVOICE_STEP, CUSTOMER_STEP, WEEKS_BACK = 1_000_000, 100_000, 52
OVERLAP_ROWS = 2_000
RSS_CAP_MIB = 12_000.0

TARGETS = {
    "month": 1.15,
    "burst_s": 30.0,
    "running_s": 3.0,
    "gold_busy_s": 10.0,
    "marginal": 2.5,
    "overlap": 0.0,
}


# --- the files -----------------------------------------------------------------------------------------------


def real_rows(parquet: Path) -> pl.DataFrame:
    """The real set, `nan` descriptions as missing, each row with its 1-based number in the set."""
    return (
        pl.read_parquet(parquet)
        .with_columns(
            pl.when(pl.col("Description") == "nan").then(None).otherwise(pl.col("Description")).alias("Description")
        )
        .with_row_index("index", offset=1)
    )


def _quoted(column: str) -> pl.Expr:
    text = pl.col(column).cast(pl.String)
    return (
        pl.when(text.is_null())
        .then(pl.lit("NA"))
        .otherwise(pl.concat_str(pl.lit('"'), text.str.replace_all('"', '""', literal=True), pl.lit('"')))
    )


def _bare(expression: pl.Expr) -> pl.Expr:
    return expression.cast(pl.String).fill_null("NA")


def write_downloaded_layout(rows: pl.DataFrame, target: Path) -> None:
    """Rows as the public download has them: a leading quoted row number, quoted text, bare numbers, NA, US dates
    without zero padding (make_sample.py's layout)."""
    lines = rows.select(
        pl.concat_str(
            _quoted("index"),
            _quoted("InvoiceNo"),
            _quoted("StockCode"),
            _quoted("Description"),
            _bare(pl.col("Quantity")),
            pl.concat_str(pl.lit('"'), pl.col("InvoiceDate").dt.strftime(DOWNLOADED_DATE), pl.lit('"')),
            _bare(pl.col("UnitPrice").cast(pl.String).str.replace(r"\.0$", "")),
            _bare(pl.col("CustomerID").cast(pl.Int64)),
            _quoted("Country"),
            separator=",",
        ).alias("line")
    )["line"]
    header = '"",' + ",".join(f'"{name}"' for name in LAYOUT)
    _write_atomically(target, lambda handle: handle.write(("\n".join([header, *lines.to_list()]) + "\n").encode()))


def _write_atomically(target: Path, write: Callable[[Any], object]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    with partial.open("wb") as handle:
        write(handle)
    partial.rename(target)


def month_file(parquet: Path, month: str) -> Path:
    """The real set's rows of `month` (YYYY-MM), in the downloaded layout."""
    target = WORK / "files" / f"online_retail_{month}.csv"
    if not target.exists():
        rows = real_rows(parquet).filter(pl.col("InvoiceDate").dt.strftime("%Y-%m") == month)
        write_downloaded_layout(rows, target)
    return target


def head_file(source: Path, rows: int) -> Path:
    """The header and the first `rows` lines of `source`."""
    target = source.with_name(f"{source.stem}_first_{rows}.csv")
    if not target.exists():
        with source.open("rb") as handle:
            lines = [handle.readline() for _ in range(rows + 1)]
        _write_atomically(target, lambda out: out.write(b"".join(lines)))
    return target


def real_file(parquet: Path) -> Path:
    """The whole real set in the UCI layout (verify_real_data.py's), the file scripts/latency.py was timed on."""
    target = WORK / "files" / "online_retail_uci.csv"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        write_layout(parquet, partial, "uci")
        partial.rename(target)
    return target


def shifted_copies_file(parquet: Path, copies: int) -> Path:
    """Copies 1..`copies` of the real set, each with its own invoice numbers, customer ids and dates (see
    INVOICE_STEP), in the UCI layout, written one copy at a time."""
    target = WORK / "files" / f"online_retail_real_shifted_{copies}x.csv"
    if target.exists():
        return target
    print(f"writing {target.name}", file=sys.stderr, flush=True)
    rows = real_rows(parquet).drop("index")
    prefix = pl.col("InvoiceNo").str.extract(r"^(\D*)", 1)
    number = pl.col("InvoiceNo").str.extract(r"(\d+)$", 1).cast(pl.Int64)

    def write(handle: Any) -> None:
        for copy in range(1, copies + 1):
            shifted = rows.with_columns(
                pl.concat_str(prefix, (number + copy * INVOICE_STEP).cast(pl.String)).alias("InvoiceNo"),
                (pl.col("CustomerID").cast(pl.Int64) + copy * CUSTOMER_STEP).alias("CustomerID"),
                (pl.col("InvoiceDate") - timedelta(weeks=WEEKS_BACK * copy)).dt.strftime(DOWNLOADED_DATE),
            )
            shifted.write_csv(handle, include_header=copy == 1)

    _write_atomically(target, write)
    return target


def generated_file(multiple: float, seed: int) -> Path:
    """scripts/generate_data.py's file of `multiple` real sets, generated (in its own process) when missing."""
    path = default_path(multiple, bench.ROOT / "data" / "bench")
    if not path.exists():
        bench.generate_in_child(path, multiple, seed)
    return path


# --- whole `medallion run` processes -------------------------------------------------------------------------


def run_environment(folder: Path) -> dict[str, str]:
    """A `medallion run` with its warehouse in `folder`, offline enrichment and a warm Prefect home of its own."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    environment.update(
        {
            "PREFECT_HOME": str(WORK / "prefect"),
            "WAREHOUSE_PATH": str(folder / "warehouse.duckdb"),
            "GOLD_EXPORT_PATH": str(folder / "gold"),
            "STAGING_PATH": str(folder / "staging"),
            "ENABLE_EXTERNAL_ENRICHMENT": "false",
        }
    )
    return environment


def medallion_run(path: Path, folder: Path) -> float:
    """Seconds of a whole `medallion run path` process into the warehouse in `folder`; raises if it fails."""
    started = time.perf_counter()
    completed = subprocess.run(
        [str(MEDALLION), "run", str(path)], cwd=ROOT, env=run_environment(folder), capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if completed.returncode != 0 or ": loaded" not in completed.stdout:
        raise RuntimeError(f"medallion run {path.name} did not load it:\n{completed.stdout}{completed.stderr}")
    return seconds


@contextmanager
def scratch(name: str) -> Iterator[Path]:
    folder = WORK / "work" / f"{name}-{time.time_ns()}"
    folder.mkdir(parents=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def warm_prefect_home() -> None:
    """One run first, so no measured run pays for creating Prefect's database."""
    with scratch("warm-up") as folder:
        medallion_run(ROOT / "data" / "sample" / "online_retail_sample.csv", folder)


def code_key() -> str:
    """Changes with any change to the core code, so a cached warehouse is never one an older version built."""
    digest = hashlib.sha256()
    for arguments in (
        ["ls-tree", "-r", "HEAD", "--", *CORE],
        ["diff", "HEAD", "--", *CORE],
        ["status", "--porcelain", "--untracked-files=all", "--", *CORE],
    ):
        digest.update(subprocess.run(["git", *arguments], cwd=ROOT, capture_output=True, check=True).stdout)
    return digest.hexdigest()[:12]


def cached_warehouse(source: Path) -> Path:
    """A warehouse that `medallion run source` built into an empty one; built once per version of the core code."""
    target = WORK / "warehouses" / f"{source.stem}-{code_key()}.duckdb"
    if target.exists():
        return target
    print(f"building {target.name}", file=sys.stderr, flush=True)
    with scratch("build") as folder:
        seconds = medallion_run(source, folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        for older in target.parent.glob(f"{source.stem}-*.duckdb"):
            older.unlink()
        shutil.move(folder / "warehouse.duckdb", target)
    print(f"built {target.name} in {seconds:.0f} s", file=sys.stderr, flush=True)
    return target


def month_into(month: Path, warehouse: Path | None) -> float:
    """Seconds of `medallion run month` into a fresh copy of `warehouse` (an empty one for None)."""
    with scratch("month") as folder:
        if warehouse is not None:
            copied = folder / "warehouse.duckdb"
            shutil.copyfile(warehouse, copied)
            # On disk before the clock starts: the copy's writeback (2 GB at 100x) is not the run's cost.
            with copied.open("rb+") as handle:
                os.fsync(handle.fileno())
        return medallion_run(month, folder)


def month_row(month: Path, warehouse: Path, multiple: int, repeats: int) -> dict[str, Any]:
    full, empty = [], []
    for _ in range(repeats):  # interleaved, so a change in the machine's load touches both alike
        full.append(month_into(month, warehouse))
        empty.append(month_into(month, None))
    ratio = statistics.median(full) / statistics.median(empty)
    return {
        "figure": f"a month into a {multiple}x warehouse / into an empty one (whole process)",
        "value": ratio,
        "shown": f"{ratio:.2f} ({statistics.median(full):.1f} s / {statistics.median(empty):.1f} s, "
        f"medians of {repeats})",
        "target": f"<= {TARGETS['month']:g}",
        "met": ratio <= TARGETS["month"],
        "details": {"into_full_s": full, "into_empty_s": empty, "warehouse_mib": warehouse.stat().st_size / 2**20},
    }


def marginal(one: Path, ten: Path, repeats: int) -> dict[str, Any]:
    """Whole runs and DuckDB's floor on the 1x and 10x files, medians, and 10x minus 1x of each."""
    runs: dict[str, list[float]] = {"1x": [], "10x": []}
    floors: dict[str, list[float]] = {"1x": [], "10x": []}
    for _ in range(repeats):
        for name, path in (("1x", one), ("10x", ten)):
            floor = bench.run_child("floor", path, WORK / "work", RSS_CAP_MIB)
            if "seconds" not in floor:
                raise RuntimeError(f"the floor failed on {path.name}: {floor.get('error')}")
            floors[name].append(floor["seconds"])
            with scratch("marginal") as folder:
                runs[name].append(medallion_run(path, folder))
    run_margin = statistics.median(runs["10x"]) - statistics.median(runs["1x"])
    floor_margin = statistics.median(floors["10x"]) - statistics.median(floors["1x"])
    return {
        "ratio": run_margin / floor_margin,
        "run_margin_s": run_margin,
        "floor_margin_s": floor_margin,
        "runs_s": runs,
        "floors_s": floors,
        "files": [one.name, ten.name],
    }


def marginal_row(label: str, figures: dict[str, Any]) -> dict[str, Any]:
    ratio = figures["ratio"]
    return {
        "figure": f"whole-flow marginal cost / DuckDB floor, 10x minus 1x ({label})",
        "value": ratio,
        "shown": f"{ratio:.2f} ({figures['run_margin_s']:.1f} s / {figures['floor_margin_s']:.1f} s)",
        "target": f"<= {TARGETS['marginal']:g}",
        "met": ratio <= TARGETS["marginal"],
        "details": figures,
    }


def overlap_row(month: Path) -> dict[str, Any]:
    """The month, then a file of its first rows, into an empty warehouse: gold's net revenue before and after."""
    import duckdb

    first = head_file(month, OVERLAP_ROWS)
    revenue = []
    with scratch("overlap") as folder:
        for path in (month, first):
            medallion_run(path, folder)
            with duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True) as connection:
                row = connection.execute("SELECT net_revenue FROM gold.kpis").fetchone()
            revenue.append(float(row[0]) if row and row[0] is not None else 0.0)
    again = round(revenue[1] - revenue[0], 2)
    return {
        "figure": f"overlapping export, net revenue counted again (its first {OVERLAP_ROWS:,} rows again)",
        "value": again,
        "shown": f"{again:,.2f} of {revenue[0]:,.2f}",
        "target": "0",
        "met": again == TARGETS["overlap"],
        "details": {"net_revenue_before": revenue[0], "net_revenue_after": revenue[1]},
    }


# --- through a scratch service -------------------------------------------------------------------------------


def burst_row(files: int) -> dict[str, Any]:
    figures = burst_script.measure_burst(files, burst_script.DEFAULT_ROWS, keep=False)
    errors = len(figures["errored"])
    met = figures["all_settled"] and errors == 0 and figures["seconds"] <= TARGETS["burst_s"]
    return {
        "figure": f"{files} files dropped at once, all settled, errors",
        "value": figures["seconds"],
        "shown": f"{figures['seconds']:.1f} s, {'all' if figures['all_settled'] else 'NOT all'} settled, "
        f"{errors} errors, {len(figures['runs'])} runs",
        "target": f"<= {TARGETS['burst_s']:g} s, 0 errors" + ("" if files == 50 else " (for 50 files)"),
        "met": met,
        "details": figures,
    }


def running_row(drops: int) -> dict[str, Any]:
    figures = latency.measure(latency.DEFAULT_FILE, drops, burst=0, burst_rows=0, keep=False, extra_env={})
    median = figures["drop_to_running_s"]["median"]
    return {
        "figure": f"drop to Running, median of {figures['drops']} (quiet machine)",
        "value": median,
        "shown": f"{median:.2f} s",
        "target": f"<= {TARGETS['running_s']:g} s",
        "met": median <= TARGETS["running_s"],
        "details": figures,
    }


@contextmanager
def cpu_hogs(count: int) -> Iterator[list[int]]:
    """`count` processes spinning on a core each, ended by their PIDs."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield [hog.pid for hog in hogs]
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def busy_gold_row(file: Path, drops: int) -> dict[str, Any]:
    with cpu_hogs(2) as pids:
        load_before = os.getloadavg()[0]
        figures = latency.measure(file, drops, burst=0, burst_rows=0, keep=False, extra_env={})
        figures["hog_pids"] = pids
        figures["load_average_1min_during"] = [load_before, os.getloadavg()[0]]
    median = figures["drop_to_gold_s"]["median"]
    return {
        "figure": f"drop to gold, the real file, two CPU hogs running (median of {figures['drops']})",
        "value": median,
        "shown": f"{median:.2f} s (Running {figures['drop_to_running_s']['median']:.2f} s)",
        "target": f"<= {TARGETS['gold_busy_s']:g} s on a busy machine",
        "met": median <= TARGETS["gold_busy_s"],
        "details": figures,
    }


# --- the report ----------------------------------------------------------------------------------------------


def table_lines(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| figure | measured | target | met | load average (1 min) before / after |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        met = "yes" if row["met"] else "no"
        before, after = row["load_average"]
        lines.append(f"| {row['figure']} | {row['shown']} | {row['target']} | {met} | {before:.1f} / {after:.1f} |")
    return lines


def working_tree() -> list[str]:
    """Uncommitted changes to the code a run or the service executes."""
    status = subprocess.run(
        ["git", "status", "--porcelain", "--", *CORE, "deployments", "scripts"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    return [line.strip() for line in status.stdout.splitlines()]


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def write_reports(results: dict[str, Any], json_path: Path, markdown_path: Path) -> list[str]:
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    machine = results["machine"]
    changes = machine["working_tree_at_start"]
    lines = [
        f"Measured {results['measured_at'][:16].replace('T', ' ')} UTC by scripts/scale.py"
        f"{' --quick' if results['quick'] else ''} on {machine['cpus']} cores, {machine['memory_gib']} GiB, "
        f"DuckDB {machine['duckdb']}, commit {machine['commit']}"
        f"{' with uncommitted changes (' + ', '.join(changes) + ')' if changes else ''} at the start; "
        f"`uptime` at start: {results['uptime_start']}; at end: {results['uptime_end']}. "
        f"Month: {results['month']} of the UCI set ({results['month_rows']:,} rows, downloaded layout). "
        f"Whole processes are `medallion run FILE` with offline enrichment; each figure's runs are in scale.json.",
        "",
        *table_lines(results["rows"]),
    ]
    if results["failures"]:
        lines += ["", *[f"Not measured: {failure}" for failure in results["failures"]]]
    markdown_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lines


def measured(failures: list[str], rows: list[dict[str, Any]], what: str, measure: Callable[[], dict[str, Any]]) -> None:
    """Run one row's measurement; a failure is reported and the other rows still run."""
    print(f"measuring: {what}", file=sys.stderr, flush=True)
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    try:
        row = measure()
    except Exception as error:  # noqa: BLE001 - one failed row must not lose the others
        failures.append(f"{what}: {type(error).__name__}: {str(error)[-800:]}")
        print(f"  failed: {failures[-1]}", file=sys.stderr, flush=True)
        return
    row["elapsed_s"] = round(time.perf_counter() - started, 1)
    row["load_average"] = [load_before, os.getloadavg()[0]]
    rows.append(row)
    print(f"  {row['shown']} (target {row['target']}: {'met' if row['met'] else 'NOT met'})", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one run per case, no 100x, a burst of 10, 3 drops")
    parser.add_argument("--with-100x", action="store_true", help="the month into a 100x warehouse too (~5.5 GB file)")
    parser.add_argument("--keep-large", action="store_true", help="keep the 100x file after the run")
    parser.add_argument("--repeats", type=int, default=3, help="whole runs per case (median)")
    parser.add_argument("--month", default="2011-11", help="the real month loaded, YYYY-MM")
    parser.add_argument("--parquet", type=Path, default=PARQUET, help="the whole UCI set")
    parser.add_argument("--seed", type=int, default=352, help="the generator's seed for the bench files")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "scale.json")
    parser.add_argument("--markdown", type=Path, default=ROOT / "bench" / "scale.md")
    arguments = parser.parse_args(argv)
    if not arguments.parquet.exists():
        parser.error(f"{arguments.parquet} is missing: this script measures on the real UCI set")
    quick = arguments.quick
    repeats = 1 if quick else arguments.repeats
    with_100x = arguments.with_100x and not quick
    started_at, uptime_start = datetime.now(UTC), uptime()
    machine = {**bench.machine(), "working_tree_at_start": working_tree()}  # the code measured, not the code at the end

    month = month_file(arguments.parquet, arguments.month)
    ten_copies = shifted_copies_file(arguments.parquet, 10)
    warm_prefect_home()
    rows: list[dict[str, Any]] = []
    failures: list[str] = []
    measured(failures, rows, "month, 10x", lambda: month_row(month, cached_warehouse(ten_copies), 10, repeats))
    if with_100x:
        hundred = shifted_copies_file(arguments.parquet, 100)
        try:
            measured(failures, rows, "month, 100x", lambda: month_row(month, cached_warehouse(hundred), 100, repeats))
        finally:
            if not arguments.keep_large:
                hundred.unlink(missing_ok=True)
    measured(failures, rows, "burst", lambda: burst_row(10 if quick else 50))
    measured(failures, rows, "drop to Running", lambda: running_row(3 if quick else 10))
    real = real_file(arguments.parquet)
    measured(failures, rows, "drop to gold, busy", lambda: busy_gold_row(real, 1 if quick else 5))
    measured(
        failures,
        rows,
        "marginal cost, generated files",
        lambda: marginal_row(
            "the generator's files",
            marginal(generated_file(1.0, arguments.seed), generated_file(10.0, arguments.seed), repeats),
        ),
    )
    measured(
        failures,
        rows,
        "marginal cost, shifted copies of the real set",
        lambda: marginal_row(
            "shifted copies of the real set",
            marginal(shifted_copies_file(arguments.parquet, 1), ten_copies, repeats),
        ),
    )
    measured(failures, rows, "overlapping export", lambda: overlap_row(month))
    shutil.rmtree(WORK / "work", ignore_errors=True)

    results = {
        "measured_at": started_at.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "repeats": repeats,
        "uptime_start": uptime_start,
        "uptime_end": uptime(),
        "machine": machine,
        "month": arguments.month,
        "month_rows": sum(1 for _ in month.open("rb")) - 1,
        "rows": rows,
        "failures": failures,
    }
    for line in write_reports(results, arguments.results, arguments.markdown):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
