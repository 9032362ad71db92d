"""Around a file's layers: the warehouse opened where WAREHOUSE_PATH says, and a failed file taken back out of
every layer its run reached, so a failed run leaves the warehouse as it found it."""

from __future__ import annotations

from contextlib import suppress

import duckdb

from medallion import gold
from medallion.errors import MedallionError, is_retryable, unusable_path
from medallion.names import printable
from medallion.readers import export_ledger
from medallion.settings import PipelineSettings
from medallion.steps.silver_step import load_silver
from medallion.warehouse import Warehouse, bronze, ledger, sql


def open_warehouse(warehouse: Warehouse, pipeline: PipelineSettings) -> None:
    """Open the warehouse (migrating its schema) before any layer runs; a WAREHOUSE_PATH that cannot hold it
    (read-only, a directory, empty...) is a configuration error naming the setting, not a transient failure."""
    try:
        with warehouse.connection():
            pass
    except (OSError, duckdb.Error) as error:
        unusable = unusable_path("WAREHOUSE_PATH", pipeline.warehouse_path, error)
        if unusable is not None:
            raise unusable from error
        raise


def failure_text(error: BaseException) -> str:
    """What the ledger says about a failure: our own errors by their message, any other with its type."""
    return str(error) if not is_retryable(error) else printable(f"{type(error).__name__}: {error}")


def withdraw_failed_file(
    warehouse: Warehouse, file_id: str, error: BaseException, pipeline: PipelineSettings, *, gold_moved: bool
) -> None:
    """Enter the file failed and take it back out of every layer: its bronze and silver rows and its scores go,
    the versions of the same name it superseded come back, and gold is rebuilt without it when `gold_moved` (the
    run failed in or after the gold step)."""
    with warehouse.connection() as connection, sql.transaction(connection):
        restored = ledger.withdraw_file(connection, file_id, failure_text(error), retryable=is_retryable(error))
        connection.execute(f"DROP TABLE IF EXISTS {bronze.bronze_table(file_id)}")
        bronze.refresh_bronze_view(connection)
    for old_version in restored:
        load_silver(warehouse, old_version, pipeline)
        with warehouse.connection() as connection:
            ledger.reinstate_file(connection, old_version)
    if gold_moved:
        with warehouse.connection() as connection:
            gold.update_gold(
                connection,
                added_file_keys=[ledger.key_of_file(connection, old) for old in restored],
                removed_file_keys=[ledger.key_of_file(connection, file_id)],
                top_n=pipeline.top_n,
                vip_percentile=pipeline.vip_percentile,
                low_value_percentile=pipeline.low_value_percentile,
            )


def ledger_snapshot(warehouse: Warehouse, pipeline: PipelineSettings) -> None:
    """Write the ledger beside gold's exports, for `medallion status` to answer from while a later run holds the
    warehouse. Best effort: the run's own outcome stands whatever happens here."""
    with suppress(MedallionError, OSError, duckdb.Error), warehouse.connection() as connection:
        export_ledger(connection, pipeline.gold_export_path)
