"""Benchmark the medallion data path against DuckDB's own CSV floor on generated files of 1x, 10x and 100x.

Every measurement runs in a fresh Python process with a fresh DuckDB file, so its wall time and peak resident
memory belong to it alone. Prints a table and writes bench/results.json and bench/results.md.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from generate_data import REAL_ROWS, default_path, size_label  # noqa: E402

TARGET_RATIO = {1.0: 2.0}
TARGET_RATIO_LARGE = 2.5
TARGET_RSS_MIB_100X = 2048.0
TARGET_FLOW_OVERHEAD_S = 2.0
INSTRUMENTED_MODULES = (
    "reader",
    "silver",
    "quality",
    "gold",
    "warehouse.sql",
    "warehouse.ledger",
    "warehouse.bronze",
    "warehouse.silver_store",
    "warehouse.quality_store",
)


def _peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def floor_measurement(csv_path: Path, work_dir: Path) -> dict[str, Any]:
    """DuckDB's own floor: every field of the file as text into a table of a fresh database file."""
    import duckdb

    database = work_dir / "floor.duckdb"
    started = time.perf_counter()
    connection = duckdb.connect(str(database))
    connection.execute("CREATE TABLE t AS SELECT * FROM read_csv(?, all_varchar=true)", [str(csv_path)])
    connection.close()
    seconds = time.perf_counter() - started
    with duckdb.connect(str(database), read_only=True) as check:
        row = check.execute("SELECT count(*) FROM t").fetchone()
    return {
        "seconds": seconds,
        "rows": int(row[0]) if row else 0,
        "database_mib": database.stat().st_size / 2**20,
        "peak_rss_mib": _peak_rss_mib(),
    }


# The cheapest bronze, silver and gold DuckDB can hold for a generated file: the floor's own statement as bronze,
# silver as bare casts (no trimming, no missing-value words, no date-order check, no lineage, no rejected rows,
# only the columns gold reads), and gold's own statements. Two things issue 2 requires are added, each in the
# form the data path uses: the file's SHA-256 (its id, from the reader's profile) and finding exact repeats.
BOUND_SILVER_SQL = """
    CREATE TABLE silver.lines AS
    SELECT 1 AS file_key, InvoiceNo AS invoice_no, StockCode AS stock_code, Description AS description,
           TRY_CAST(Quantity AS BIGINT) AS quantity,
           round(TRY_CAST(Quantity AS BIGINT) * TRY_CAST(UnitPrice AS DOUBLE), 2) AS line_amount,
           CustomerID AS customer_id, Country AS country,
           try_strptime(InvoiceDate, '%m/%d/%Y %H:%M') AS invoice_ts,
           StockCode IN ('POST', 'DOT', 'M') AS is_non_product
    FROM bronze"""
# The columns gold reads that silver derives when read, as the data path's silver does (silver.DERIVED_COLUMNS).
BOUND_DERIVED = ("invoice_date", "year", "month", "is_cancellation", "is_bad_debt")


def bound_lines_view_sql() -> str:
    from medallion import silver
    from medallion.warehouse.schema import LINES_VIEW

    return f"CREATE VIEW {LINES_VIEW} AS {silver.with_derived_columns('silver.lines', BOUND_DERIVED)}"


def bound_measurement(csv_path: Path, work_dir: Path) -> dict[str, Any]:
    """The least the layers can cost in DuckDB (see BOUND_SILVER_SQL), each part timed, into a fresh file."""
    import duckdb

    from medallion import gold, reader, silver
    from medallion.warehouse.schema import migrate

    marks = [time.perf_counter()]
    connection = duckdb.connect(str(work_dir / "bound.duckdb"))
    connection.execute("CREATE TABLE bronze AS SELECT * FROM read_csv(?, all_varchar=true)", [str(csv_path)])
    marks.append(time.perf_counter())
    digest = reader.profile_file(csv_path).file_id
    marks.append(time.perf_counter())
    canonical = (
        "(SELECT rowid + 1 AS row_number, InvoiceNo AS invoice_no, StockCode AS stock_code, "
        "Description AS description, Quantity AS quantity, InvoiceDate AS invoice_date, UnitPrice AS unit_price, "
        "CustomerID AS customer_id, Country AS country FROM bronze)"
    )
    connection.execute(f"CREATE TEMP TABLE repeats AS {silver.duplicates_sql(canonical)}")
    marks.append(time.perf_counter())
    repeats = connection.execute("SELECT count(*) FROM repeats").fetchone()
    # The warehouse's schemas (gold keeps its state in gold_state), with the bare silver table in place of silver's.
    migrate(connection)
    connection.execute("DROP VIEW silver.transactions; DROP VIEW silver.lines_derived; DROP TABLE silver.lines")
    connection.execute(BOUND_SILVER_SQL)
    connection.execute(bound_lines_view_sql())
    marks.append(time.perf_counter())
    gold.publish_gold(connection, top_n=100, vip_percentile=0.8, low_value_percentile=0.2)
    connection.close()
    marks.append(time.perf_counter())
    with duckdb.connect(str(work_dir / "bound.duckdb"), read_only=True) as check:
        typed = check.execute("SELECT count(invoice_ts), count(*) FROM silver.lines").fetchone()
    part_names = ("bronze", "hash", "repeats", "silver", "gold")
    return {
        "seconds": marks[-1] - marks[0],
        "parts": {name: marks[i + 1] - marks[i] for i, name in enumerate(part_names)},
        "typed_rows": int(typed[0]) if typed else 0,
        "repeats": int(repeats[0]) if repeats else 0,
        "rows": int(typed[1]) if typed else 0,
        "digest": digest,
        "peak_rss_mib": _peak_rss_mib(),
    }


def _instrument(timings: dict[str, float]) -> None:
    """Wrap the public functions of the core modules so each call adds its wall time under its name."""
    import importlib

    for module_name in INSTRUMENTED_MODULES:
        module = importlib.import_module(f"medallion.{module_name}")
        for name, function in list(vars(module).items()):
            if (
                name.startswith("_")
                or not inspect.isfunction(function)
                or function.__module__ != module.__name__
                or inspect.isgeneratorfunction(function)
                or hasattr(function, "__wrapped__")
            ):
                continue
            # Labelled by area, so a function keeps its label whichever of the warehouse's modules holds it.
            area = module_name.split(".")[0]
            setattr(module, name, _timed(function, f"{area}.{name}", timings))


def _timed(function: Any, label: str, timings: dict[str, float]) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            timings[label] = timings.get(label, 0.0) + time.perf_counter() - started

    wrapper.__name__ = function.__name__
    wrapper.__doc__ = function.__doc__
    return wrapper


def reconciliation(warehouse_path: Path, file_id: str) -> dict[str, Any]:
    """The ledger's counts for one file beside the rows actually in each table, and whether they add up."""
    import duckdb

    with duckdb.connect(str(warehouse_path), read_only=True) as connection:
        ledger = connection.execute(
            """SELECT status, bronze_rows, silver_rows, rejected_rows, duplicate_rows
               FROM ops.files WHERE file_id = ?""",
            [file_id],
        ).fetchone()
        tables = {}
        for table in ("bronze.transactions", "silver.transactions", "silver.rejected"):
            query = {
                "bronze.transactions": "SELECT count(*) FROM bronze.transactions WHERE file_id = ?",
                "silver.transactions": "SELECT count(*) FROM silver.transactions WHERE file_id = ?",
                "silver.rejected": "SELECT count(*) FROM silver.rejected WHERE file_id = ?",
            }[table]
            counted = connection.execute(query, [file_id]).fetchone()
            tables[table] = int(counted[0]) if counted else 0
    if ledger is None:
        return {"holds": False, "error": "no ledger row"}
    status, bronze, silver, rejected, duplicates = ledger
    holds = (
        status == "loaded"
        and bronze == silver + rejected + duplicates
        and tables["bronze.transactions"] == bronze
        and tables["silver.transactions"] == silver
        and tables["silver.rejected"] == rejected
    )
    return {
        "holds": bool(holds),
        "status": status,
        "bronze_rows": bronze,
        "silver_rows": silver,
        "rejected_rows": rejected,
        "duplicate_rows": duplicates,
        "table_rows": tables,
    }


def data_path_measurement(csv_path: Path, work_dir: Path) -> dict[str, Any]:
    """The four data-path calls into a fresh warehouse, each timed, with the core's functions timed inside."""
    from medallion import steps
    from medallion.settings import load_settings
    from medallion.warehouse import Warehouse

    inner: dict[str, float] = {}
    _instrument(inner)
    pipeline = load_settings(
        WAREHOUSE_PATH=work_dir / "warehouse.duckdb",
        GOLD_EXPORT_PATH=work_dir / "gold",
        STAGING_PATH=work_dir / "staging",
    ).pipeline
    marks = [time.perf_counter()]
    with Warehouse(pipeline) as warehouse:  # as the flow holds it for one file's run
        bronze = steps.load_bronze(warehouse, csv_path, pipeline)
        marks.append(time.perf_counter())
        silver = steps.load_silver(warehouse, bronze.file_id, pipeline)
        marks.append(time.perf_counter())
        steps.score_quality(warehouse, bronze.file_id, silver.quality_counts, pipeline)
        marks.append(time.perf_counter())
        steps.load_gold(warehouse, pipeline, file_id=bronze.file_id)
        marks.append(time.perf_counter())
    marks.append(time.perf_counter())
    peak = _peak_rss_mib()
    step_names = ("bronze", "silver", "quality", "gold", "close")
    return {
        "seconds": marks[-1] - marks[0],
        "rows": bronze.bronze_rows,
        "steps": {name: marks[i + 1] - marks[i] for i, name in enumerate(step_names)},
        "inner": dict(sorted(inner.items(), key=lambda item: -item[1])),
        "reconciliation": reconciliation(pipeline.warehouse_path, bronze.file_id),
        "warehouse_mib": pipeline.warehouse_path.stat().st_size / 2**20,
        "peak_rss_mib": peak,
    }


def flow_measurement(csv_path: Path, work_dir: Path) -> dict[str, Any]:
    """The whole `medallion` flow on one file, on the PREFECT_API_URL server when set, else ephemeral."""
    os.environ["WAREHOUSE_PATH"] = str(work_dir / "warehouse.duckdb")
    os.environ["GOLD_EXPORT_PATH"] = str(work_dir / "gold")
    os.environ["STAGING_PATH"] = str(work_dir / "staging")
    started = time.perf_counter()
    from prefect.settings import PREFECT_API_URL

    from flows.file_load import medallion

    imported = time.perf_counter()
    api_url = PREFECT_API_URL.value()
    summary = medallion(str(csv_path))
    finished = time.perf_counter()
    return {
        "seconds": finished - imported,
        "import_seconds": imported - started,
        "api": f"server at {api_url}" if api_url else "ephemeral (no PREFECT_API_URL)",
        "status": summary.status.value,
        "rows": summary.bronze_rows,
        "peak_rss_mib": _peak_rss_mib(),
    }


CHILDREN = {
    "floor": floor_measurement,
    "data-path": data_path_measurement,
    "bound": bound_measurement,
    "flow": flow_measurement,
}


def run_child(kind: str, csv_path: Path, work_root: Path, rss_cap_mib: float) -> dict[str, Any]:
    """Run one measurement in a fresh process with a fresh work directory; stop it above the RSS cap."""
    work_dir = work_root / f"{kind}-{time.time_ns()}"
    work_dir.mkdir(parents=True)
    command = [sys.executable, str(Path(__file__).resolve()), "--child", kind, str(csv_path), str(work_dir)]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    polled = {"peak_mib": 0.0, "capped": False}
    watcher = threading.Thread(target=_watch_rss, args=(process, rss_cap_mib, polled), daemon=True)
    watcher.start()
    stdout, stderr = process.communicate()
    watcher.join()
    wall_s = time.perf_counter() - started
    shutil.rmtree(work_dir, ignore_errors=True)
    if polled["capped"]:
        error = f"stopped after {wall_s:.0f} s: resident memory passed the {rss_cap_mib:,.0f} MiB cap"
        return {"error": error, "wall_s": wall_s, "peak_rss_mib": polled["peak_mib"]}
    if process.returncode != 0:
        tail = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit code {process.returncode}"
        return {"error": tail, "wall_s": wall_s, "peak_rss_mib": polled["peak_mib"]}
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    result["polled_peak_rss_mib"] = polled["peak_mib"]
    return result


def _watch_rss(process: subprocess.Popen[str], cap_mib: float, polled: dict[str, Any]) -> None:
    status = Path(f"/proc/{process.pid}/status")
    while process.poll() is None:
        try:
            text = status.read_text()
        except OSError:
            return
        for line in text.splitlines():
            if line.startswith("VmRSS:"):
                mib = int(line.split()[1]) / 1024
                polled["peak_mib"] = max(polled["peak_mib"], mib)
                if mib > cap_mib:
                    polled["capped"] = True
                    process.kill()
                    return
        time.sleep(0.05)


def generate_in_child(csv_path: Path, multiple: float, seed: int) -> None:
    """Generate a file in its own process. A child's peak RSS (`ru_maxrss`) starts from its parent's peak, so
    generating in this process would pass the generator's memory on to every measurement after it."""
    script = ROOT / "scripts" / "generate_data.py"
    command = [sys.executable, str(script), repr(multiple), "--out-dir", str(csv_path.parent), "--seed", str(seed)]
    subprocess.run(command, cwd=ROOT, check=True)
    if not csv_path.exists():
        raise FileNotFoundError(f"the generator did not write {csv_path}")


def warm_page_cache(path: Path) -> None:
    """Read the file once so the first measurement does not pay for a cold disk the others skip."""
    with path.open("rb") as handle:
        while handle.read(16 * 2**20):
            pass


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The completed run in the middle by time (the later of the two middle ones for an even count)."""
    by_time = sorted((run for run in runs if "seconds" in run), key=lambda run: run["seconds"])
    return by_time[len(by_time) // 2] if by_time else None


def _best(values: list[float]) -> float | None:
    return min(values) if values else None


def size_result(
    multiple: float,
    csv_path: Path,
    repeats: int,
    work_root: Path,
    rss_cap_mib: float,
    generated_s: float | None,
) -> dict[str, Any]:
    """Floor, data path and lower bound, interleaved `repeats` times on one file, with ratios and targets."""
    warm_page_cache(csv_path)
    floors: list[dict[str, Any]] = []
    paths: list[dict[str, Any]] = []
    bounds: list[dict[str, Any]] = []
    for run in range(repeats):
        floors.append(run_child("floor", csv_path, work_root, rss_cap_mib))
        paths.append(run_child("data-path", csv_path, work_root, rss_cap_mib))
        bounds.append(run_child("bound", csv_path, work_root, rss_cap_mib))
        print(
            f"  {size_label(multiple)} run {run + 1}/{repeats}: floor {_seconds(floors[-1])}, "
            f"data path {_seconds(paths[-1])}, lower bound {_seconds(bounds[-1])}",
            file=sys.stderr,
            flush=True,
        )
    floor_seconds = [item["seconds"] for item in floors if "seconds" in item]
    path_seconds = [item["seconds"] for item in paths if "seconds" in item]
    median_path = _median_run(paths)
    rows = floors[0].get("rows") if floors and "rows" in floors[0] else round(multiple * REAL_ROWS)
    median_bound = _median_run(bounds)
    floor_median, path_median = _median(floor_seconds), _median(path_seconds)
    ratio = path_median / floor_median if floor_median and path_median else None
    bound_median = _median([item["seconds"] for item in bounds if "seconds" in item])
    bound_ratio = bound_median / floor_median if floor_median and bound_median else None
    best_ratio = (
        _best(path_seconds) / _best(floor_seconds)  # type: ignore[operator]
        if floor_seconds and path_seconds
        else None
    )
    peak_rss = max((item.get("peak_rss_mib", 0.0) for item in paths), default=None)
    ratio_target = TARGET_RATIO.get(multiple, TARGET_RATIO_LARGE)
    targets: dict[str, dict[str, Any]] = {
        "ratio": {"limit": ratio_target, "value": ratio, "met": ratio is not None and ratio <= ratio_target}
    }
    if multiple >= 100:
        targets["peak_rss_mib"] = {
            "limit": TARGET_RSS_MIB_100X,
            "value": peak_rss,
            "met": peak_rss is not None
            and not any("error" in item for item in paths)
            and peak_rss <= TARGET_RSS_MIB_100X,
        }
    return {
        "size": size_label(multiple),
        "multiple": multiple,
        "file": csv_path.name,
        "rows": rows,
        "file_mib": csv_path.stat().st_size / 2**20,
        "generated_s": generated_s,
        "repeats": repeats,
        "floor": {"best_s": _best(floor_seconds), "median_s": floor_median, "runs": floors},
        "data_path": {
            "best_s": _best(path_seconds),
            "median_s": path_median,
            "rows_per_s": rows / path_median if rows and path_median else None,
            "peak_rss_mib": peak_rss,
            "median_run_steps": median_path["steps"] if median_path else None,
            "median_run_inner": median_path["inner"] if median_path else None,
            "runs": paths,
        },
        "ratio_median": ratio,
        "ratio_best": best_ratio,
        "bound": {
            "median_s": bound_median,
            "ratio_median": bound_ratio,
            "median_run_parts": median_bound["parts"] if median_bound else None,
            "runs": bounds,
        },
        "reconciliation": median_path["reconciliation"] if median_path else NO_RUN,
        "targets": targets,
    }


def _seconds(result: dict[str, Any]) -> str:
    return f"{result['seconds']:.2f} s" if "seconds" in result else f"failed ({result.get('error')})"


def _fmt(value: float | None, pattern: str) -> str:
    return "n/a" if value is None else format(value, pattern)


def _met(targets: dict[str, dict[str, Any]]) -> str:
    parts = []
    for name, target in targets.items():
        label = f"ratio <= {target['limit']:g}" if name == "ratio" else f"RSS <= {target['limit']:,.0f} MiB"
        parts.append(f"{label}: {'met' if target['met'] else 'NOT met'}")
    return "; ".join(parts)


METHOD = (
    "Floor: `CREATE TABLE t AS SELECT * FROM read_csv(path, all_varchar=true)` into a fresh DuckDB file. "
    "Data path: `load_bronze`, `load_silver`, `score_quality`, `load_gold` into a fresh warehouse. Each run "
    "in its own process; peak RSS is that process's maximum resident set. Ratio: median data path over "
    "median floor, both measured in the same run on the same file."
)
BOUND_METHOD = (
    "the cheapest bronze, silver and gold DuckDB can hold, in a fresh file: the floor's own statement as "
    "bronze, silver as bare casts of the columns gold reads (no trimming, missing-value words, date-order check, "
    "lineage or rejected rows), gold's own statements, plus the file's SHA-256 and the search for exact repeats "
    "that the data path must also do. The last column is what the target leaves for all the rest: cleaning, "
    "lineage, rejected rows, quality and the ledger."
)
NO_RUN: dict[str, Any] = {"holds": False, "error": "no run"}

HEADER = (
    "| size | rows | file MiB | floor s (best / median) | data path s (best / median) | ratio (median) "
    "| rows/s | peak RSS MiB (data path / floor) | bronze = silver + rejected + duplicates | targets |"
)


def _reconciled(reconciliation: dict[str, Any]) -> str:
    if "error" in reconciliation:
        return "not checked (no completed run)"
    verdict = "holds" if reconciliation["holds"] else "FAILS"
    return (
        f"{verdict}: {reconciliation['bronze_rows']:,} = {reconciliation['silver_rows']:,} + "
        f"{reconciliation['rejected_rows']:,} + {reconciliation['duplicate_rows']:,}"
    )


def table_rows(sizes: list[dict[str, Any]]) -> list[str]:
    lines = [HEADER, "|" + "---|" * (HEADER.count("|") - 1)]
    for size in sizes:
        floor, path = size["floor"], size["data_path"]
        floor_rss = max((run.get("peak_rss_mib", 0.0) for run in floor["runs"]), default=None)
        errors = [run["error"] for run in path["runs"] if "error" in run]
        path_cell = f"{_fmt(path['best_s'], '.2f')} / {_fmt(path['median_s'], '.2f')}"
        path_rss = _fmt(path["peak_rss_mib"], ",.0f")
        if errors:
            path_cell = f"{path_cell} ({len(errors)} of {len(path['runs'])} failed: {errors[0]})"
            path_rss = f"> {path_rss}" if "resident memory" in errors[0] else path_rss
        lines.append(
            f"| {size['size']} | {size['rows']:,} | {size['file_mib']:,.0f} "
            f"| {_fmt(floor['best_s'], '.2f')} / {_fmt(floor['median_s'], '.2f')} "
            f"| {path_cell} "
            f"| {_fmt(size['ratio_median'], '.2f')} | {_fmt(path['rows_per_s'], ',.0f')} "
            f"| {path_rss} / {_fmt(floor_rss, ',.0f')} "
            f"| {_reconciled(size['reconciliation'])} | {_met(size['targets'])} |"
        )
    return lines


def step_rows(sizes: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| size | bronze s | silver s | quality s | gold s | close s | slowest inner calls (cumulative s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for size in sizes:
        steps = size["data_path"]["median_run_steps"]
        inner = size["data_path"]["median_run_inner"] or {}
        if not steps:
            continue
        slowest = ", ".join(f"{name} {seconds:.2f}" for name, seconds in list(inner.items())[:6])
        lines.append(
            f"| {size['size']} | {steps['bronze']:.2f} | {steps['silver']:.2f} | {steps['quality']:.2f} "
            f"| {steps['gold']:.2f} | {steps.get('close', 0.0):.2f} | {slowest} |"
        )
    return lines


def bound_rows(sizes: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| size | floor s | lower bound s | its ratio | bronze (the floor's statement) s | SHA-256 s "
        "| repeats s | casts-only silver s | gold s | left for everything else at the target s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size in sizes:
        bound, floor_s = size.get("bound") or {}, size["floor"]["median_s"]
        parts = bound.get("median_run_parts")
        if not parts or not floor_s:
            continue
        room = size["targets"]["ratio"]["limit"] * floor_s - bound["median_s"]
        lines.append(
            f"| {size['size']} | {floor_s:.2f} | {bound['median_s']:.2f} | {bound['ratio_median']:.2f} "
            f"| {parts['bronze']:.2f} | {parts['hash']:.2f} | {parts['repeats']:.2f} | {parts['silver']:.2f} "
            f"| {parts['gold']:.2f} | {room:.2f} |"
        )
    return lines


def flow_line(flow: dict[str, Any] | None) -> str:
    if flow is None:
        return "Flow overhead: not measured (no 1x size in this run, or --skip-flow)."
    if "error" in flow:
        return f"Flow overhead: the flow failed ({flow['error']})."
    met = "met" if flow["overhead_s"] < TARGET_FLOW_OVERHEAD_S else "NOT met"
    condition = "" if flow["api"].startswith("server") else " (the target is stated for a running server)"
    return (
        f"Flow overhead on {flow['size']}: flow {flow['seconds']:.2f} s against the data path's median "
        f"{flow['data_path_median_s']:.2f} s = {flow['overhead_s']:.2f} s beyond the data path "
        f"(plus {flow['import_seconds']:.2f} s importing Prefect and the flow), {flow['api']}; "
        f"target < {TARGET_FLOW_OVERHEAD_S:g} s: {met}{condition}."
    )


def machine() -> dict[str, Any]:
    import duckdb
    import polars

    meminfo = Path("/proc/meminfo").read_text().splitlines()
    memory_kib = next((int(line.split()[1]) for line in meminfo if line.startswith("MemTotal")), 0)
    try:
        commit = _git("rev-parse", "--short", "HEAD")
        core_dirty = bool(_git("status", "--porcelain", "--", "medallion", "flows", "tasks"))
    except (OSError, subprocess.CalledProcessError):
        commit, core_dirty = "unknown", True
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(memory_kib / 2**20, 1),
        "python": platform.python_version(),
        "polars": polars.__version__,
        "duckdb": duckdb.__version__,
        "commit": commit,
        "core_dirty": core_dirty,
    }


def _git(*arguments: str) -> str:
    completed = subprocess.run(["git", *arguments], cwd=ROOT, capture_output=True, text=True, check=True)
    return completed.stdout.strip()


def write_reports(results: dict[str, Any], json_path: Path, markdown_path: Path) -> list[str]:
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    info = results["machine"]
    measured = results["measured_at"][:16].replace("T", " ")
    load = results["load_average_1min"]
    lines = [
        f"Measured {measured} UTC on {info['cpus']} cores, {info['memory_gib']} GiB, "
        f"Python {info['python']}, Polars {info['polars']}, DuckDB {info['duckdb']}, commit {info['commit']}"
        f"{' with uncommitted core changes' if info['core_dirty'] else ''}; load average {load['start']:.1f} "
        f"at start, {load['end']:.1f} at end (other work on the machine adds noise between runs). {METHOD} "
        f"A child's peak RSS starts from the runner's, {results['runner_peak_rss_mib']:,.0f} MiB in this run.",
        "",
        *table_rows(results["sizes"]),
        "",
        *[
            f"Generated {size['file']} ({size['rows']:,} rows) in {size['generated_s']:.0f} s "
            "with scripts/generate_data.py."
            for size in results["sizes"]
            if size["generated_s"] is not None
        ],
        "",
        "Per step (the median data-path run):",
        "",
        *step_rows(results["sizes"]),
        "",
        f"Lower bound (median run): {BOUND_METHOD}",
        "",
        *bound_rows(results["sizes"]),
        "",
        flow_line(results["flow"]),
    ]
    markdown_path.write_text("\n".join(lines) + "\n")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=float, nargs="+", default=[1.0, 10.0], help="real-set multiples")
    parser.add_argument("--with-100x", action="store_true", help="add the 100x file (about 5.5 GB)")
    parser.add_argument("--repeats", type=int, default=3, help="floor and data-path runs at sizes up to 1x")
    parser.add_argument("--large-repeats", type=int, default=1, help="runs at sizes above 1x")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data" / "bench")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results.json")
    parser.add_argument("--markdown", type=Path, default=ROOT / "bench" / "results.md")
    parser.add_argument("--rss-cap-mib", type=float, default=12_000, help="stop a run whose RSS passes this")
    parser.add_argument("--skip-flow", action="store_true", help="do not time the whole Prefect flow")
    parser.add_argument("--keep-large", action="store_true", help="keep generated files of 100x and above")
    parser.add_argument("--seed", type=int, default=352)
    parser.add_argument("--child", nargs=3, metavar=("KIND", "CSV", "WORK_DIR"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()

    if arguments.child:
        kind, csv_path, work_dir = arguments.child
        print(json.dumps(CHILDREN[kind](Path(csv_path), Path(work_dir))))
        return

    multiples = sorted(set(arguments.sizes + ([100.0] if arguments.with_100x else [])))
    arguments.data_dir = arguments.data_dir.resolve()  # children run in the project's folder
    load_at_start = os.getloadavg()[0]
    work_root = arguments.data_dir / "work"
    sizes: list[dict[str, Any]] = []
    flow: dict[str, Any] | None = None
    for multiple in multiples:
        csv_path = default_path(multiple, arguments.data_dir)
        generated_s = None
        if not csv_path.exists():
            free_gib = (
                shutil.disk_usage(
                    arguments.data_dir.parent if not arguments.data_dir.exists() else arguments.data_dir
                ).free
                / 2**30
            )
            print(f"generating {csv_path.name} ({free_gib:,.0f} GiB free)", file=sys.stderr, flush=True)
            started = time.perf_counter()
            generate_in_child(csv_path, multiple, arguments.seed)
            generated_s = time.perf_counter() - started
        repeats = arguments.repeats if multiple <= 1 else arguments.large_repeats
        result = size_result(multiple, csv_path, repeats, work_root, arguments.rss_cap_mib, generated_s)
        sizes.append(result)
        if multiple == 1.0 and not arguments.skip_flow:
            flow = run_child("flow", csv_path, work_root, arguments.rss_cap_mib)
            flow["size"] = result["size"]
            if "seconds" in flow and result["data_path"]["median_s"] is not None:
                flow["data_path_median_s"] = result["data_path"]["median_s"]
                flow["overhead_s"] = flow["seconds"] - result["data_path"]["median_s"]
        if multiple >= 100 and not arguments.keep_large:
            csv_path.unlink()
        reconciled = result["reconciliation"]
        print(
            f"  {result['size']} reconciliation: bronze {reconciled.get('bronze_rows')} = silver "
            f"{reconciled.get('silver_rows')} + rejected {reconciled.get('rejected_rows')} + duplicates "
            f"{reconciled.get('duplicate_rows')}: {'holds' if reconciled.get('holds') else 'FAILS'}",
            file=sys.stderr,
            flush=True,
        )
    shutil.rmtree(work_root, ignore_errors=True)
    results = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_average_1min": {"start": load_at_start, "end": os.getloadavg()[0]},
        # each child's peak RSS starts from this one's; it must stay below the children's own figures
        "runner_peak_rss_mib": _peak_rss_mib(),
        "sizes": sizes,
        "flow": flow,
    }
    for line in write_reports(results, arguments.results, arguments.markdown):
        print(line)


if __name__ == "__main__":
    main()
