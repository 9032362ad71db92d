"""Gold: moved by a file's rows (or rebuilt from silver), exported to Parquet; the file's run marked loaded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

from medallion import gold, gold_export
from medallion.runs import GoldKpis
from medallion.settings import PipelineSettings
from medallion.warehouse import Warehouse, ledger


def load_gold(warehouse: Warehouse, pipeline: PipelineSettings, *, file_id: str | None = None) -> GoldKpis:
    """Move gold by the file's rows (with `file_id`; else rebuild it from silver), export it to Parquet, and mark
    the file loaded (see `load_gold_of_files`)."""
    return load_gold_of_files(warehouse, pipeline, None if file_id is None else [file_id])


def load_gold_of_files(warehouse: Warehouse, pipeline: PipelineSettings, file_ids: Sequence[str] | None) -> GoldKpis:
    """Move gold by the rows of the files (a file run's one file, or a batch's files; with None, rebuild it from
    silver), export it to Parquet, and mark the files loaded.

    Marking the files loaded is the run's last write: what can fail for want of space or a writable place (the
    earlier layers written into the database file, gold, the exports under temporary names) comes first, and
    after it only the exports are renamed into place. A run that fails before it leaves the files not loaded, for
    the flow to take back out of every layer, gold included; once its commit is in the write-ahead log the files
    are loaded, even if the database file cannot take the log in before there is space again.
    """
    with warehouse.connection() as connection:
        # Bronze's and silver's commits go into the database file here, where a full disk fails the step before
        # gold moves, rather than at a checkpoint after the files are marked loaded.
        connection.execute("CHECKPOINT")
        kpis = gold_tables(connection, pipeline, file_ids)
        exports = gold_export.stage_gold_exports(connection, pipeline.gold_export_path)
        try:
            if file_ids:
                ledger.mark_loaded(connection, *file_ids)
        except BaseException:
            exports.discard()
            raise
    exports.publish()
    return GoldKpis.model_validate(kpis)


def gold_tables(
    connection: duckdb.DuckDBPyConnection, pipeline: PipelineSettings, file_ids: Sequence[str] | None
) -> dict[str, Any]:
    """Gold moved by the files' rows, the versions they superseded taken out (`update_gold` finds those and any
    file whose silver changed from the ledger); with None, rebuilt from the whole of silver."""
    options: dict[str, Any] = {
        "top_n": pipeline.top_n,
        "vip_percentile": pipeline.vip_percentile,
        "low_value_percentile": pipeline.low_value_percentile,
    }
    if file_ids is None:
        return gold.publish_gold(connection, **options)
    keys = [ledger.key_of_file(connection, file_id) for file_id in file_ids]
    return gold.update_gold(connection, added_file_keys=keys, removed_file_keys=[], **options)
