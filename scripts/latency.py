"""Drive a real `medallion up` on a scratch folder: drop-to-Running and drop-to-gold latency, and a burst.

    .venv/bin/python scripts/latency.py [--file data/sample/online_retail_sample.csv] [--drops 10] [--burst 50]

Each timed drop is a copy of --file with one extra row, so its content (and file id) is new, dropped once
the previous run has ended and its process exited (a quiet service, as for a single drop). Times are
measured from the moment the finished file appears in the watched folder (an atomic rename) to the run's
Running state (the server's start time) and to the ledger's `finished_at` (gold published in DuckDB).
Prints the figures and writes them as JSON (default data/bench/latency.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the scratch service lives with the service tests

from tests.service.scratch import (  # noqa: E402
    descendant_pids,
    query_warehouse,
    scratch_environment,
    start_scratch_service,
    wait_for,
)

DEFAULT_FILE = ROOT / "data" / "sample" / "online_retail_sample.csv"


class ScratchService:
    def __init__(self, root: Path, extra_env: dict[str, str]) -> None:
        self.root = root
        self.env = scratch_environment(root, **extra_env)
        self.raw = root / "raw"
        self.processed = root / "processed"
        self.log_path = root / "service.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.env['PREFECT_SERVER_API_PORT']}/api"

    def start(self) -> None:
        process = self.process = start_scratch_service(self.env, self.log_path)
        wait_for(lambda: "watching " in self.log() or process.poll() is not None, 180, "the service")
        if process.poll() is not None:
            raise RuntimeError("the service did not start:\n" + self.log()[-2000:])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def idle(self) -> bool:
        """No run in flight and no flow-run process left: the next drop meets a quiet service."""
        if self.process is None:
            return True
        file_runs = [run for run in self.runs() if _file_names(run)]
        commands = [_command(pid) for pid in descendant_pids(self.process.pid)]
        # A run is a fork of the warm process (same command line as it), or a `python -m prefect.engine`.
        forked = sum("multiprocessing.forkserver import main" in command for command in commands) - 1
        spawned = sum("-m prefect.engine" in command for command in commands)
        return forked <= 0 and not spawned and all(run.state is None or run.state.is_final() for run in file_runs)

    def processed_names(self) -> set[str]:
        return {path.name for path in self.processed.glob("*/*")}

    def runs(self) -> list[Any]:
        from prefect.client.orchestration import PrefectClient

        async def read() -> list[Any]:
            async with PrefectClient(api=self.api_url) as client:
                found, offset = [], 0
                while batch := await client.read_flow_runs(limit=200, offset=offset):
                    found += batch
                    offset += len(batch)
                return found

        return asyncio.run(read())

    def drop(self, name: str, content: bytes) -> float:
        aside = self.root / "outbox" / name
        aside.parent.mkdir(exist_ok=True)
        aside.write_bytes(content)
        dropped = time.time()
        os.replace(aside, self.raw / name)
        return dropped


def _command(pid: int) -> str:
    """The command line of a live process ("" for a zombie or a process gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _file_names(run: Any) -> list[str]:
    """The names of the files a run carries: one file's run has `path`, a micro-batch's `paths`."""
    paths = [run.parameters.get("path"), *(run.parameters.get("paths") or [])]
    return [Path(str(path)).name for path in paths if path]


def _variant(base: bytes, index: int) -> bytes:
    """The file plus one row of its own, so every drop is new content with the same layout."""
    header, _, _ = base.partition(b"\n")
    columns = header.decode("utf-8-sig").split(",")
    values = {
        "InvoiceNo": f"9{index:06d}",
        "StockCode": "85123A",
        "Description": "WHITE HANGING HEART T-LIGHT HOLDER",
        "Quantity": "1",
        "InvoiceDate": "12/9/2011 12:50",
        "UnitPrice": "2.55",
        "CustomerID": "17850",
        "Country": "United Kingdom",
    }
    row = ",".join(values.get(column.strip('"'), "") for column in columns)
    return base.rstrip(b"\n") + b"\n" + row.encode() + b"\n"


def _slice(base: bytes, index: int, rows: int) -> bytes:
    lines = base.splitlines()
    start = 1 + (index * rows) % max(1, len(lines) - rows - 1)
    return b"\n".join([lines[0], *lines[start : start + rows]]) + b"\n"


def _ledger_finished(service: ScratchService) -> dict[str, datetime]:
    rows = query_warehouse(service.env, "SELECT file_name, finished_at FROM ops.files WHERE status = 'loaded'")
    return {name: finished.replace(tzinfo=UTC) for name, finished in rows if finished is not None}


def _timed_drops(service: ScratchService, file: Path, base: bytes, drops: int) -> dict[str, list[float]]:
    """Drop one copy at a time into a quiet service; the first warms it up and is not timed."""
    dropped_at: dict[str, float] = {}
    for index in range(drops + 1):
        name = f"drop {index:02d}{''.join(file.suffixes)}"
        dropped_at[name] = service.drop(name, _variant(base, index))
        wait_for(lambda name=name: name in service.processed_names(), 600, f"{name} to load", 0.1)
        wait_for(lambda: service.idle(), 120, "the run's process to exit", 0.2)
    runs = {name: run for run in service.runs() for name in _file_names(run)}
    finished = _ledger_finished(service)
    timed = [name for name in dropped_at if not name.startswith("drop 00")]
    return {
        "to_running": [runs[name].start_time.timestamp() - dropped_at[name] for name in timed],
        "to_gold": [finished[name].timestamp() - dropped_at[name] for name in timed],
    }


def _burst(service: ScratchService, base: bytes, burst: int, burst_rows: int) -> dict[str, Any]:
    """Drop `burst` small files at once and wait until every one is loaded or errored and its run has ended."""
    burst_names = [f"burst {index:03d}.csv" for index in range(burst)]
    burst_started = time.time()
    for index, name in enumerate(burst_names):
        (service.raw / name).write_bytes(_variant(_slice(base, index, burst_rows), 100000 + index))
    wait_for(
        lambda: set(burst_names) <= service.processed_names() | _errored(service, burst_names),
        1800,
        "the burst",
        0.2,
    )
    burst_s = time.time() - burst_started

    def burst_runs() -> list[Any]:
        return [run for run in service.runs() if set(_file_names(run)) & set(burst_names)]

    wait_for(lambda: all(run.state and run.state.is_final() for run in burst_runs()), 300, "the burst runs to end", 1)
    not_completed = sorted(
        name
        for run in burst_runs()
        if run.state and run.state.type.value != "COMPLETED"
        for name in _file_names(run)
        if name in burst_names
    )
    log = service.log()
    return {
        "files": burst,
        "rows_per_file": burst_rows,
        "total_s": round(burst_s, 2),
        "loaded": len(set(burst_names) & service.processed_names()),
        "errored": sorted(_errored(service, burst_names)),
        "runs_not_completed": not_completed,
        "lock_errors_in_log": log.count("Could not set lock") + log.count("database is locked"),
    }


def measure(
    file: Path, drops: int, burst: int, burst_rows: int, keep: bool, extra_env: dict[str, str]
) -> dict[str, Any]:
    """Timed drops of `file` into a scratch service, then a burst of `burst` files (none for 0)."""
    root = Path(tempfile.mkdtemp(prefix="medallion-latency-"))
    service = ScratchService(root, extra_env)
    base = file.read_bytes()
    started = time.monotonic()
    service.start()
    startup_s = time.monotonic() - started
    try:
        timed = _timed_drops(service, file, base, drops)
        return {
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "file": str(file),
            "file_bytes": len(base),
            "cpu_count": os.cpu_count(),
            "service_start_s": round(startup_s, 2),
            "drops": len(timed["to_gold"]),
            **{
                f"drop_{what}_s": {"median": round(statistics.median(values), 2), "all": [round(v, 2) for v in values]}
                for what, values in timed.items()
            },
            "burst": _burst(service, base, burst, burst_rows) if burst else None,
        }
    finally:
        service.stop()
        if keep:
            print(f"scratch folder kept: {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


def _errored(service: ScratchService, names: list[str]) -> set[str]:
    return {name for name in names if (service.raw / "errors" / name).exists()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--drops", type=int, default=10)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--burst-rows", type=int, default=50)
    parser.add_argument("--output", type=Path, default=ROOT / "data" / "bench" / "latency.json")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (logs, warehouse)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="extra service setting")
    arguments = parser.parse_args(argv)
    extra = dict(item.split("=", 1) for item in arguments.env)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(1))
    figures = measure(arguments.file, arguments.drops, arguments.burst, arguments.burst_rows, arguments.keep, extra)
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    burst = figures["burst"]
    print(f"service start: {figures['service_start_s']} s")
    print(f"drop to Running, median of {figures['drops']}: {figures['drop_to_running_s']['median']} s")
    print(f"drop to gold in DuckDB, median of {figures['drops']}: {figures['drop_to_gold_s']['median']} s")
    if burst is not None:
        print(
            f"burst of {burst['files']} files: {burst['total_s']} s, {burst['loaded']} loaded, "
            f"{len(burst['errored'])} errored, {len(burst['runs_not_completed'])} runs not completed, "
            f"{burst['lock_errors_in_log']} lock errors"
        )
    print(f"written to {arguments.output}")
    if burst is None:
        return 0
    return 0 if not burst["errored"] and not burst["runs_not_completed"] and not burst["lock_errors_in_log"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
