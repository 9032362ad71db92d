"""Gold: every gold table rebuilt from silver, exported to Parquet; the file's run marked loaded."""

from __future__ import annotations

from medallion import gold
from medallion.runs import GoldKpis
from medallion.settings import PipelineSettings
from medallion.warehouse import Warehouse, ledger


def load_gold(warehouse: Warehouse, pipeline: PipelineSettings, *, file_id: str | None = None) -> GoldKpis:
    """Rebuild gold from silver, export it to Parquet, and mark the file loaded."""
    with warehouse.connection() as connection:
        kpis = gold.publish_gold(
            connection,
            top_n=pipeline.top_n,
            vip_percentile=pipeline.vip_percentile,
            low_value_percentile=pipeline.low_value_percentile,
        )
        gold.export_gold(connection, pipeline.gold_export_path)
        if file_id is not None:
            ledger.mark_loaded(connection, file_id)
        # Write the run's changes into the database file in this step, where a failure is retried, not when the
        # warehouse closes after the run.
        connection.execute("CHECKPOINT")
    return GoldKpis.model_validate(kpis)
