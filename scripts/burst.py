"""Drop a burst of small files at once into a real `medallion up` on a scratch folder and print how it went.

    .venv/bin/python scripts/burst.py [--files 50] [--rows 40] [--keep]

Each file is a slice of rows of the shipped sample (its own rows, so its own content). One file is loaded first,
so the burst meets a service that has run once, as it would in use. Prints the seconds from the drop until every
file is in processed/ or raw/errors/ and every run that carried one has ended, the runs used and their end states,
and the files in errors. Figures only: nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the scratch service lives with the service tests

from tests.service.scratch import scratch_environment, start_scratch_service, wait_for  # noqa: E402

SAMPLE = ROOT / "data" / "sample" / "online_retail_sample.csv"
DEFAULT_ROWS = 40


def _runs(api_url: str) -> list[Any]:
    from prefect.client.orchestration import PrefectClient

    async def read() -> list[Any]:
        async with PrefectClient(api=api_url) as client:
            return await client.read_flow_runs(limit=200)

    return asyncio.run(read())


def _file_names(run: Any) -> set[str]:
    paths = [run.parameters.get("path", ""), *(run.parameters.get("paths") or [])]
    return {Path(str(path)).name for path in paths if path}


def _settled(api_url: str, names: list[str], processed: Path, errors: Path) -> list[Any] | None:
    """The runs that carried `names`, once every one of the files is in processed or errors and every run ended."""
    done = {path.name for path in processed.glob("*/*")} | {path.name for path in errors.glob("*.csv")}
    if not set(names) <= done:
        return None
    runs = [run for run in _runs(api_url) if _file_names(run) & set(names)]
    return runs if runs and all(run.state and run.state.is_final() for run in runs) else None


def _slices(files: int, rows: int) -> list[bytes]:
    """`files` slices of `rows` consecutive lines of the sample, each with the header."""
    header, *lines = SAMPLE.read_bytes().splitlines()
    return [b"\n".join([header, *lines[index * rows : (index + 1) * rows]]) + b"\n" for index in range(files)]


def measure_burst(files: int, rows: int = DEFAULT_ROWS, keep: bool = False) -> dict[str, Any]:
    """Drop `files` slices of `rows` lines at once into a scratch service that has loaded one file; the seconds
    until every one is in processed/ or raw/errors/ and every run that carried one has ended, the runs and errors."""
    root = Path(tempfile.mkdtemp(prefix="medallion-burst-"))
    env = scratch_environment(root)
    api_url = f"http://127.0.0.1:{env['PREFECT_SERVER_API_PORT']}/api"
    raw, processed, errors = root / "raw", root / "processed", root / "raw" / "errors"
    log_path = root / "service.log"
    process = start_scratch_service(env, log_path)
    try:
        wait_for(
            lambda: "watching " in log_path.read_text(errors="replace") or process.poll() is not None, 180, "start"
        )
        if process.poll() is not None:
            raise RuntimeError("the service did not start:\n" + log_path.read_text(errors="replace")[-2000:])
        names = [f"burst {index:03d}.csv" for index in range(files)]
        outbox = root / "outbox"
        outbox.mkdir()
        *contents, warm_up = _slices(files + 1, rows)
        (outbox / "warm-up.csv").write_bytes(warm_up)
        (outbox / "warm-up.csv").rename(raw / "warm-up.csv")
        wait_for(lambda: _settled(api_url, ["warm-up.csv"], processed, errors), 300, "the warm-up file", 0.2)
        for name, content in zip(names, contents, strict=True):
            (outbox / name).write_bytes(content)
        started = time.monotonic()
        for name in names:
            (outbox / name).rename(raw / name)

        runs = wait_for(lambda: _settled(api_url, names, processed, errors), 900, "every file settled", 0.2)
        seconds = time.monotonic() - started
        return {
            "files": files,
            "rows_per_file": rows,
            "seconds": round(seconds, 2),
            "all_settled": True,
            "runs": [
                {"name": run.name, "state": run.state.name, "files": len(_file_names(run))}
                for run in sorted(runs, key=lambda run: run.start_time or run.expected_start_time)
            ],
            "errored": sorted(path.name for path in errors.glob("*.csv")),
        }
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
        if keep:
            print(f"scratch folder kept: {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


def print_burst(figures: dict[str, Any]) -> None:
    errored = figures["errored"]
    print(
        f"{figures['files']} files of {figures['rows_per_file']} rows dropped at once: "
        f"all settled in {figures['seconds']:.1f} s"
    )
    print(f"runs used: {len(figures['runs'])}")
    for run in figures["runs"]:
        print(f"  {run['name']}: {run['state']} ({run['files']} files)")
    print(f"errors: {len(errored)}{': ' + ', '.join(errored) if errored else ''}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (log, warehouse)")
    arguments = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(1))
    print_burst(measure_burst(arguments.files, arguments.rows, arguments.keep))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
