"""Where the warehouse lives and the one object that opens, lends and closes its connection for a run."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import Protocol

import duckdb

from medallion.errors import WarehouseBusyError, unusable_path
from medallion.settings import PipelineSettings
from medallion.warehouse.schema import migrate

LOCK_MARKERS = ("Could not set lock", "Conflicting lock", "database is locked")


class Storage(Protocol):
    """Where the warehouse's tables live; the only thing that knows how to connect to them."""

    def connect(self, *, read_only: bool) -> duckdb.DuckDBPyConnection: ...

    def describe(self) -> str: ...


class DuckDBFile:
    """One DuckDB database file on this machine; a writer elsewhere makes an open wait, up to `lock_timeout_s`."""

    def __init__(self, path: Path, *, memory_limit: str, lock_timeout_s: float) -> None:
        self.path = path
        self.memory_limit = memory_limit
        self.lock_timeout_s = lock_timeout_s

    def describe(self) -> str:
        return str(self.path)

    def connect(self, *, read_only: bool) -> duckdb.DuckDBPyConnection:
        """A connection to the file; a WAREHOUSE_PATH that cannot hold it is a configuration error naming it."""
        try:
            return self._connect(read_only=read_only)
        except (OSError, duckdb.Error) as error:
            unusable = unusable_path("WAREHOUSE_PATH", self.path, error)
            if unusable is not None:
                raise unusable from None
            raise

    def _connect(self, *, read_only: bool) -> duckdb.DuckDBPyConnection:
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.05
        while True:
            try:
                # DuckDB spills to disk beyond the memory limit, which bounds a large file's load.
                return duckdb.connect(str(self.path), read_only=read_only, config={"memory_limit": self.memory_limit})
            except duckdb.IOException as error:
                if not any(marker in str(error) for marker in LOCK_MARKERS):
                    raise
                if time.monotonic() >= deadline:
                    raise WarehouseBusyError(
                        f"the warehouse {self.path.name} stayed locked by another process for "
                        f"{self.lock_timeout_s:.0f} s (WAREHOUSE_LOCK_TIMEOUT)"
                    ) from None
                time.sleep(delay + random.uniform(0, delay))
                delay = min(delay * 2, 1.0)


def storage_for(settings: PipelineSettings) -> Storage:
    """The storage the settings name; today a DuckDB file at WAREHOUSE_PATH."""
    return DuckDBFile(
        settings.warehouse_path,
        memory_limit=settings.duckdb_memory_limit,
        lock_timeout_s=settings.warehouse_lock_timeout_s,
    )


class Warehouse:
    """The warehouse for one block of work: opened by the first `connection()`, held until `close()`.

    Used as `with Warehouse(settings.pipeline) as warehouse:` by whoever starts the work (a flow, the CLI); steps
    take it as a parameter and borrow connections from it. The first use opens the database (waiting for another
    process's lock) and, when writable, brings its schema up to date. A failure inside a borrowed connection closes
    the database, so a retry starts from a freshly opened one. Read-only is really read-only.
    """

    def __init__(self, settings: PipelineSettings, *, read_only: bool = False, storage: Storage | None = None) -> None:
        self.storage = storage if storage is not None else storage_for(settings)
        self.read_only = read_only
        self._lock = threading.Lock()
        self._database: duckdb.DuckDBPyConnection | None = None

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def describe(self) -> str:
        return self.storage.describe()

    @contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection of its own to the open database, closed after the block."""
        cursor = self._cursor()
        try:
            yield cursor
        except BaseException:
            cursor.close()
            # DuckDB may have invalidated the database after a fatal error; the step's error is the one to report.
            with suppress(duckdb.Error):
                self.close()
            raise
        cursor.close()

    def close(self) -> None:
        """Close the database (DuckDB checkpoints it); a later `connection()` opens it again."""
        with self._lock:
            database, self._database = self._database, None
        if database is not None:
            database.close()

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._database is None:
                database = self.storage.connect(read_only=self.read_only)
                try:
                    if not self.read_only:
                        migrate(database)
                except BaseException:
                    database.close()
                    raise
                self._database = database
            return self._database.cursor()
