"""The warehouse's state in a real DuckDB file loaded through every layer: rows, recorded changes, the ledger, the
lineage checked against the tables a loaded warehouse has, and the series the charts draw."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from conftest import write_csv

from deployments import changes
from medallion import gold, steps
from medallion.settings import Settings
from medallion.warehouse import Warehouse, bronze, catalog, history, sql

# Tables that keep the books of a run, not rows of the data: no lineage leads to or from them.
BOOKKEEPING = {
    "ops.schema_version",
    "ops.quality",
    "ops.table_changes",
    "enrichment.api_cache",
    "enrichment.api_usage",
}
FIRST = (
    "536365,85123A,WHITE HANGING HEART,6,12/13/2010 8:26,2.55,17850,United Kingdom",
    "536365,71053,WHITE METAL LANTERN,6,12/13/2010 8:26,3.39,17850,United Kingdom",
    "536366,22633,HAND WARMER UNION JACK,6,1/20/2011 8:28,1.85,17851,France",
    "C536367,22633,HAND WARMER UNION JACK,-1,1/21/2011 9:00,1.85,17851,France",
)
SECOND = (
    "536400,22728,ALARM CLOCK BAKELIKE PINK,4,2/14/2011 10:00,3.75,12583,France",
    "536401,22727,ALARM CLOCK BAKELIKE RED,2,2/14/2011 10:05,3.75,12583,France",
)


def load(warehouse: Warehouse, settings: Settings, path: Path, flow_run_id: str) -> str:
    """Run a file through every layer with the steps, recording each table a step changed as the flows do."""
    pipeline = settings.pipeline
    report = steps.load_bronze(warehouse, path, pipeline, flow_run_id=flow_run_id)
    record(warehouse, [bronze.bronze_table(report.file_id), "bronze.transactions", "ops.files"], flow_run_id)
    silver = steps.load_silver(warehouse, report.file_id, pipeline)
    record(warehouse, ["silver.lines", "silver.rejected"], flow_run_id)
    steps.score_quality(warehouse, report.file_id, silver.quality_counts, pipeline)
    steps.enrich_silver(warehouse, settings.enrichment, live=False)
    record(warehouse, ["enrichment.rates", "enrichment.countries", "enrichment.products"], flow_run_id)
    steps.load_gold(warehouse, pipeline, file_id=report.file_id)
    record(warehouse, list(changes.GOLD), flow_run_id)
    return report.file_id


def record(warehouse: Warehouse, names: list[str], flow_run_id: str) -> None:
    with warehouse.connection() as connection:
        catalog.record_table_changes(connection, names, flow_run_id)


def state_of(warehouse: Warehouse) -> catalog.WarehouseState:
    with warehouse.connection() as connection:
        return catalog.warehouse_state(connection)


def table(state: catalog.WarehouseState, name: str) -> catalog.TableState:
    found = state.table(name)
    assert found is not None, f"{name} is not in the state"
    return found


@pytest.fixture
def loaded(tmp_path: Path, settings: Settings, warehouse: Warehouse) -> Warehouse:
    """A warehouse with one small file loaded through every layer by run `run-a`."""
    load(warehouse, settings, write_csv(tmp_path / "raw" / "first.csv", *FIRST), "run-a")
    return warehouse


def relations(connection: duckdb.DuckDBPyConnection) -> set[str]:
    """Every table and view of the warehouse's schemas as DuckDB lists them, the per-file bronze tables as one."""
    rows = connection.execute(
        """SELECT schema_name || '.' || table_name FROM duckdb_tables() WHERE NOT temporary
           UNION ALL SELECT schema_name || '.' || view_name FROM duckdb_views() WHERE NOT internal AND NOT temporary"""
    ).fetchall()
    names = {str(name) for (name,) in rows if str(name).split(".")[0] in catalog.SCHEMAS}
    return {
        catalog.BRONZE_FILES if name.startswith("bronze.file_") else
        catalog.GOLD_STATE if name.startswith("gold_state.") else name
        for name in names
    }  # fmt: skip


def test_the_lineage_names_every_table_of_a_loaded_warehouse_and_nothing_else(loaded: Warehouse) -> None:
    nodes = {name for edge in catalog.LINEAGE for name in edge}
    with loaded.connection() as connection:
        present = relations(connection)
    assert nodes - {catalog.SOURCE_FILES} == present - BOOKKEEPING
    assert BOOKKEEPING <= present, "a bookkeeping table this test excuses no longer exists"
    gold_sources = {target: source for source, target in catalog.LINEAGE if target.startswith("gold.")}
    assert gold_sources == {f"gold.{name}": catalog.GOLD_STATE for name in gold.GOLD_TABLES}, (
        "each gold table is written from gold's state"
    )
    state_sources = {source for source, target in catalog.LINEAGE if target == catalog.GOLD_STATE}
    assert state_sources == {"silver.lines_derived", "enrichment.rates", "enrichment.countries", "enrichment.products"}


def test_the_lineage_flows_one_way_from_the_source_files() -> None:
    sources: dict[str, set[str]] = {}
    for source, target in catalog.LINEAGE:
        sources.setdefault(target, set()).add(source)

    def ancestors(name: str, path: tuple[str, ...] = ()) -> set[str]:
        assert name not in path, f"the lineage has a cycle through {name}"
        found = set(sources.get(name, ()))
        for source in sources.get(name, ()):
            found |= ancestors(source, (*path, name))
        return found

    for name in {target for _, target in catalog.LINEAGE}:
        assert catalog.SOURCE_FILES in ancestors(name), f"{name} does not come from the source files"


def test_the_state_has_each_tables_rows_and_the_run_that_last_changed_it(
    tmp_path: Path, settings: Settings, loaded: Warehouse
) -> None:
    before_second = sql.now()
    load(loaded, settings, write_csv(tmp_path / "raw" / "second.csv", *SECOND), "run-b")
    state = state_of(loaded)

    bronze_files = table(state, catalog.BRONZE_FILES)
    assert (bronze_files.files, bronze_files.rows, bronze_files.flow_run_id) == (2, 6, "run-b")
    assert bronze_files.label == "bronze.file_* (2 files)"
    assert bronze_files.changed_at is not None and bronze_files.changed_at >= before_second
    lines = table(state, "silver.lines")
    assert (lines.kind, lines.rows, lines.flow_run_id) == ("table", 6, "run-b")
    assert table(state, "gold.sales_by_month").rows == 3, "December, January and February"
    assert table(state, "gold.kpis").rows == 1
    gold_state = table(state, catalog.GOLD_STATE)
    with loaded.connection() as connection:
        state_tables = [row[0] for row in connection.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'gold_state'"
        ).fetchall()]  # fmt: skip
        rows = sum(
            sql.scalar(connection, f"SELECT count(*) FROM gold_state.{name}")  # noqa: S608 - the catalog's names
            for name in state_tables
        )
        invoices = sql.scalar(connection, "SELECT count(*) FROM gold_state.invoices")
    assert gold_state.tables == len(state_tables) > 10
    assert gold_state.rows == rows > invoices > 0, "gold's state holds each file's invoices, among its other rows"
    assert gold_state.flow_run_id == "run-b" and gold_state.label == f"gold_state.* ({gold_state.tables} tables)"
    assert table(state, "ops.quality").changed_at is None, "never recorded, so unknown"
    enriched = table(state, "silver.transactions_enriched")
    assert (enriched.kind, enriched.rows) == ("view", 6)
    read = ["silver.lines", "ops.files", "enrichment.rates", "enrichment.countries", "enrichment.products"]
    latest = max((table(state, name) for name in read), key=lambda read_table: read_table.changed_at or datetime.min)
    assert (enriched.changed_at, enriched.flow_run_id) == (latest.changed_at, "run-b"), (
        "a view changes when the latest table it reads, directly or through views, does"
    )
    names = [table.name for table in state.tables]
    assert names.index(catalog.BRONZE_FILES) < names.index("silver.lines") < names.index(catalog.GOLD_STATE)
    assert names.index(catalog.GOLD_STATE) < names.index("gold.kpis")
    assert not any(name.startswith(("bronze.file_", "gold_state.")) for name in names if "*" not in name)


def test_recording_a_change_again_updates_it_and_leaves_out_tables_not_built(tmp_path: Path, loaded: Warehouse) -> None:
    with loaded.connection() as connection:
        first = sql.scalar(connection, "SELECT changed_at FROM ops.table_changes WHERE table_name = 'gold.kpis'")
        recorded = catalog.record_table_changes(connection, ["gold.kpis", "gold.nothing", "nowhere"], "run-c")
        again = catalog.record_table_changes(connection, ["gold.kpis"], None)
        row = connection.execute(
            "SELECT changed_at, flow_run_id, rows FROM ops.table_changes WHERE table_name = 'gold.kpis'"
        ).fetchall()
    assert recorded == ["gold.kpis"] and again == ["gold.kpis"]
    assert len(row) == 1
    changed_at, flow_run_id, rows = row[0]
    assert changed_at >= first and flow_run_id is None and rows == 1


def test_the_ledger_is_counted_by_status_with_the_latest_failure_and_its_error(
    tmp_path: Path, settings: Settings, loaded: Warehouse
) -> None:
    broken = write_csv(tmp_path / "raw" / "broken.csv", *SECOND)
    steps.record_file_failure(loaded, broken, OSError("disk full | try again"), flow_run_id="run-d")
    state = state_of(loaded)
    assert state.files_by_status == {"loaded": 1, "failed": 1}
    assert [(failure.file_name, failure.error, failure.retryable) for failure in state.recent_failures] == [
        ("broken.csv", "OSError: disk full | try again", True)
    ]


def test_a_new_warehouse_has_an_empty_state_with_the_whole_lineage(warehouse: Warehouse) -> None:
    state = state_of(warehouse)
    assert state.files_by_status == {} and state.recent_failures == []
    assert table(state, catalog.BRONZE_FILES).files == 0
    assert len(state.lineage) == len(catalog.LINEAGE)
    assert state.table("gold.kpis") is None, "gold is built by the first load"


def test_a_read_only_reader_sees_the_state(settings: Settings, loaded: Warehouse) -> None:
    loaded.close()
    with Warehouse(settings.pipeline, read_only=True) as reader, reader.connection() as connection:
        state = catalog.warehouse_state(connection)
    assert table(state, "silver.lines").rows == 4


def test_the_charts_series_come_from_the_quality_history_and_gold(loaded: Warehouse) -> None:
    with loaded.connection() as connection:
        points = history.quality_points(connection)
        months = history.revenue_months(connection)
    assert [(point.scope, point.file_name) for point in points] == [("file", "first.csv"), ("dataset", None)]
    assert all(point.threshold == 85 and 0 <= point.score <= 100 for point in points)
    assert [(month.month_start.isoformat(), month.net_revenue) for month in months] == [
        ("2010-12-01", round(6 * 2.55 + 6 * 3.39, 2)),
        ("2011-01-01", round(6 * 1.85 - 1.85, 2)),
    ]
    assert months[1].returns == 1.85


def test_no_revenue_before_gold_is_built(warehouse: Warehouse) -> None:
    with warehouse.connection() as connection:
        assert history.revenue_months(connection) == []
        assert history.quality_points(connection) == []


def test_state_times_are_the_warehouses_utc(loaded: Warehouse) -> None:
    state = state_of(loaded)
    assert state.measured_at.tzinfo is None
    assert abs((state.measured_at - sql.now()).total_seconds()) < 60
    assert isinstance(table(state, "silver.lines").changed_at, datetime)
