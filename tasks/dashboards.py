"""The dashboards a run that wrote refreshes: the tables it changed noted in the catalog, then the warehouse's state
and the quality and revenue charts published as keyed artifacts (the Artifacts page shows the latest of each)."""

from __future__ import annotations

from collections.abc import Sequence

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run

from deployments.server import ui_url
from medallion import dashboards
from medallion.settings import Settings
from medallion.warehouse import Warehouse
from medallion.warehouse.catalog import record_table_changes, warehouse_state
from medallion.warehouse.history import quality_points, revenue_months

WAREHOUSE_KEY = "medallion-warehouse"
QUALITY_CHART_KEY = "medallion-quality-chart"
REVENUE_CHART_KEY = "medallion-revenue-chart"


@task(name="dashboards")
def dashboards_refreshed(warehouse: Warehouse, changed: Sequence[str], settings: Settings) -> list[str]:
    """Record `changed` as changed by this flow run, then publish the three dashboards; returns the names recorded."""
    with warehouse.connection() as connection:
        recorded = record_table_changes(connection, changed, flow_run.get_id())
        state = warehouse_state(connection)
        points = quality_points(connection)
        months = revenue_months(connection)
    pipeline = settings.pipeline
    _ = create_markdown_artifact(
        key=WAREHOUSE_KEY,
        markdown=dashboards.warehouse_markdown(state, ui_url=ui_url(settings.service)),
        description=f"Tables, ledger and lineage as of {state.measured_at:%Y-%m-%d %H:%M:%S} UTC",
    )
    _ = create_markdown_artifact(
        key=QUALITY_CHART_KEY,
        markdown=dashboards.quality_chart_markdown(points, threshold=pipeline.quality_alert_threshold),
        description="Quality score of each file and of the dataset over time",
    )
    _ = create_markdown_artifact(
        key=REVENUE_CHART_KEY,
        markdown=dashboards.revenue_chart_markdown(months, currency=pipeline.source_currency),
        description="Net revenue by month",
    )
    get_run_logger().info("dashboards refreshed after a change to %d table(s)", len(recorded))
    return recorded
