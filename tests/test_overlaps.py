"""Overlapping exports through the real steps into real DuckDB warehouses: a line another live file has in silver
already stays in bronze, is counted, and is not added to silver or gold again; an invoice that comes back with
other lines keeps its first version and lowers the file's consistency; a new version of a file name hands the lines
it no longer has to the later files that had them; and a rebuild from bronze gives the same silver and ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
from conftest import SAMPLE_CSV, write_csv

from medallion import gold, steps
from medallion.cli import summary_text
from medallion.runs import GoldKpis, RunSummary
from medallion.settings import Settings, load_settings
from medallion.warehouse import Warehouse, ledger

GOLD_OPTIONS: dict[str, Any] = {"top_n": 10, "vip_percentile": 0.9, "low_value_percentile": 0.25}
SAMPLE_NET_REVENUE = 76_662.77


def load(warehouse: Warehouse, settings: Settings, path: Path, *, incremental: bool = False) -> RunSummary:
    """One file through every step, as the flow runs them (enrichment offline); with `incremental`, gold is moved
    by `update_gold`, told of the file loaded and the versions it superseded only."""
    pipeline = settings.pipeline
    bronze = steps.load_bronze(warehouse, path, pipeline)
    silver = steps.load_silver(warehouse, bronze.file_id, pipeline)
    quality = steps.score_quality(warehouse, bronze.file_id, silver.quality_counts, pipeline)
    enrichment = steps.enrich_silver(warehouse, settings.enrichment, live=False)
    if not incremental:
        kpis = steps.load_gold(warehouse, pipeline, file_id=bronze.file_id)
        return steps.loaded_run(warehouse, bronze, silver, quality, enrichment, kpis)
    with warehouse.connection() as connection:
        moved = gold.update_gold(
            connection,
            added_file_keys=[ledger.key_of_file(connection, bronze.file_id)],
            removed_file_keys=[ledger.key_of_file(connection, old) for old in silver.superseded],
            **GOLD_OPTIONS,
        )
        ledger.mark_loaded(connection, bronze.file_id)
    return steps.loaded_run(warehouse, bronze, silver, quality, enrichment, GoldKpis.model_validate(moved))


def first_rows_of_sample(path: Path, rows: int) -> Path:
    """A file of the sample's header and its first `rows` data lines, as written."""
    lines = SAMPLE_CSV.read_text(encoding="utf-8").splitlines()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines[: rows + 1]) + "\n", encoding="utf-8")
    return path


def query(connection: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return connection.execute(sql).fetchall()


def assert_every_file_reconciles(connection: duckdb.DuckDBPyConnection) -> None:
    """For every live file, bronze = silver + rejected + duplicates + overlaps, in the ledger and in the tables."""
    files = query(
        connection,
        """SELECT f.file_name, f.bronze_rows, f.silver_rows, f.rejected_rows, f.duplicate_rows, f.overlap_rows,
                  (SELECT count(*) FROM silver.lines AS l WHERE l.file_key = f.file_key),
                  (SELECT count(*) FROM silver.rejected AS r WHERE r.file_id = f.file_id)
           FROM ops.files AS f WHERE f.status IN ('silver', 'loaded')""",
    )
    assert files
    for name, bronze, silver, rejected, duplicates, overlaps, silver_held, rejected_held in files:
        assert bronze == silver + rejected + duplicates + overlaps, name
        assert (silver_held, rejected_held) == (silver, rejected), name


def line(invoice: str, stock: str, quantity: int, price: str, customer: str = "17850") -> str:
    return f"{invoice},{stock},ITEM {stock},{quantity},12/1/2010 8:26,{price},{customer},United Kingdom"


def test_a_file_of_the_samples_first_2000_rows_adds_nothing_to_silver_or_gold(
    settings: Settings, warehouse: Warehouse, tmp_path: Path
) -> None:
    sample = load(warehouse, settings, SAMPLE_CSV)
    again = load(warehouse, settings, first_rows_of_sample(tmp_path / "raw" / "first 2000.csv", 2000))

    assert sample.gold is not None and again.gold is not None
    assert sample.gold.net_revenue == again.gold.net_revenue == SAMPLE_NET_REVENUE
    assert (again.gold.orders, again.gold.customers) == (sample.gold.orders, sample.gold.customers)
    # Exact repeats inside the file stay repeats; every other line is the sample's.
    assert (again.bronze_rows, again.silver_rows, again.rejected_rows) == (2000, 0, 0)
    assert (again.duplicate_rows, again.overlap_rows, again.changed_invoices) == (22, 1978, 0)
    assert again.quality is not None and again.quality.consistency == 98.75, "as before: no invoice changed"
    assert "\n  overlaps          1,978 rows already in silver\n" in summary_text(again)
    with warehouse.connection() as connection:
        assert query(connection, "SELECT count(*) FROM bronze.transactions") == [(5076 + 2000,)]
        assert query(connection, "SELECT count(*) FROM silver.transactions") == [(sample.silver_rows,)]
        scored = connection.execute(
            "SELECT rows, unique_rows FROM ops.quality WHERE scope = 'file' AND file_id = ?", [again.file_id]
        ).fetchall()
        assert_every_file_reconciles(connection)
    assert scored == [(2000, 2000 - 22)], "quality counts every row as received, overlaps as unique"


def test_gold_moved_by_an_overlapping_file_equals_the_gold_of_the_sample_alone(tmp_path: Path) -> None:
    tables: list[dict[str, list[tuple[Any, ...]]]] = []
    for name, paths in {
        "alone": [SAMPLE_CSV],
        "overlapped": [SAMPLE_CSV, first_rows_of_sample(tmp_path / "first.csv", 2000)],
    }.items():
        settings = load_settings(
            WAREHOUSE_PATH=tmp_path / name / "w.duckdb",
            STAGING_PATH=tmp_path / name / "staging",
            GOLD_EXPORT_PATH=tmp_path / name / "gold",
            ENABLE_EXTERNAL_ENRICHMENT=False,
        )
        with Warehouse(settings.pipeline) as warehouse:
            for path in paths:
                report = steps.load_bronze(warehouse, path, settings.pipeline)
                silver = steps.load_silver(warehouse, report.file_id, settings.pipeline)
                steps.enrich_silver(warehouse, settings.enrichment, live=False)
                with warehouse.connection() as connection:
                    kpis = gold.update_gold(
                        connection,
                        added_file_keys=[ledger.key_of_file(connection, report.file_id)],
                        removed_file_keys=[ledger.key_of_file(connection, old) for old in silver.superseded],
                        **GOLD_OPTIONS,
                    )
            assert kpis["net_revenue"] == SAMPLE_NET_REVENUE
            with warehouse.connection() as connection:
                tables.append({table: _sorted_rows(connection, table) for table in gold.GOLD_TABLES})
    alone, overlapped = tables
    assert set(alone) == set(gold.GOLD_TABLES)
    for table in gold.GOLD_TABLES:
        assert overlapped[table] == alone[table], table


def _sorted_rows(connection: duckdb.DuckDBPyConnection, table: str) -> list[tuple[Any, ...]]:
    columns = "* EXCLUDE (refreshed_at)" if table == "kpis" else "*"
    return sorted(query(connection, f"SELECT {columns} FROM gold.{table}"), key=repr)  # noqa: S608 - GOLD_TABLES


def test_an_invoice_that_comes_back_with_other_lines_gains_the_lines_silver_lacked_and_is_counted(
    settings: Settings, warehouse: Warehouse, tmp_path: Path
) -> None:
    first = write_csv(
        tmp_path / "raw" / "monday.csv",
        line("536365", "85123A", 6, "2.55"),
        line("536365", "71053", 6, "3.39"),
        line("536366", "22633", 6, "1.85"),
        line("536366", "22632", 6, "1.85"),
    )
    week = write_csv(
        tmp_path / "raw" / "last 7 days.csv",
        line("536365", "85123A", 6, "2.55"),  # an overlap
        line("536365", "71053", 12, "3.39"),  # the same invoice with a line Monday's file did not have
        line("536366", "22633", 6, "1.85"),  # 536366 comes back with one of its two lines: no change
        line("536366", "22633", 6, "1.85"),  # an exact repeat inside the file
        line("536367", "84879", 8, "1.69"),  # new
    )
    load(warehouse, settings, first)
    summary = load(warehouse, settings, week)

    assert (summary.silver_rows, summary.overlap_rows, summary.duplicate_rows) == (2, 2, 1)
    assert (summary.rejected_rows, summary.rejected_by_reason) == (0, {})
    assert summary.changed_invoices == 1
    assert "  overlaps              2 rows already in silver (1 invoice came back changed)" in summary_text(summary)
    # 536365's two lines in this file are of a changed invoice: 3 of the 5 typed lines (the repeat too) are consistent.
    assert summary.quality is not None and summary.quality.consistency == 60.0
    expected = 6 * 2.55 + 6 * 3.39 + 12 * 3.39 + 12 * 1.85 + 8 * 1.69
    assert summary.gold is not None and summary.gold.net_revenue == round(expected, 2)
    with warehouse.connection() as connection:
        lines = query(
            connection,
            "SELECT source_file, invoice_no, stock_code, quantity FROM silver.transactions ORDER BY ALL",
        )
        rejected = query(connection, "SELECT source_file, row_number, reason, quantity FROM silver.rejected")
        counted = query(connection, "SELECT overlap_rows, changed_invoices FROM ops.files ORDER BY file_key")
        assert_every_file_reconciles(connection)
    assert lines == [
        ("last 7 days.csv", "536365", "71053", 12),
        ("last 7 days.csv", "536367", "84879", 8),
        ("monday.csv", "536365", "71053", 6),
        ("monday.csv", "536365", "85123A", 6),
        ("monday.csv", "536366", "22632", 6),
        ("monday.csv", "536366", "22633", 6),
    ]
    assert rejected == [], "the line silver lacked is added, not rejected"
    assert counted == [(0, 0), (2, 1)]


def test_a_new_version_hands_the_lines_it_dropped_to_the_later_files_that_had_them(
    settings: Settings, warehouse: Warehouse, tmp_path: Path
) -> None:
    daily = tmp_path / "raw" / "daily.csv"
    write_csv(daily, line("536365", "85123A", 6, "2.55"), line("536366", "22633", 6, "1.85"))
    load(warehouse, settings, daily, incremental=True)
    week = write_csv(
        tmp_path / "raw" / "week.csv",
        line("536366", "22633", 6, "1.85"),  # daily.csv's, as it stands now
        line("536367", "84879", 8, "1.69"),
    )
    assert load(warehouse, settings, week, incremental=True).overlap_rows == 1
    write_csv(daily, line("536365", "85123A", 6, "2.55"), line("536368", "22728", 2, "3.75"))  # a new version
    summary = load(warehouse, settings, daily, incremental=True)

    assert (summary.silver_rows, summary.overlap_rows) == (2, 0)
    assert summary.gold is not None
    assert summary.gold.net_revenue == round(6 * 2.55 + 6 * 1.85 + 8 * 1.69 + 2 * 3.75, 2)
    with warehouse.connection() as connection:
        owners = query(connection, "SELECT invoice_no, source_file FROM silver.transactions ORDER BY ALL")
        files = query(
            connection,
            "SELECT file_name, status, silver_rows, overlap_rows FROM ops.files ORDER BY silver_at NULLS FIRST",
        )
        scored = query(
            connection,
            """SELECT f.file_name, q.rows, q.checked_rows FROM ops.quality AS q JOIN ops.files AS f USING (file_id)
               WHERE q.scope = 'file' AND f.status = 'loaded' ORDER BY f.file_name""",
        )
        assert_every_file_reconciles(connection)
        moved = {table: _sorted_rows(connection, table) for table in gold.GOLD_TABLES}
        gold.publish_gold(connection, **GOLD_OPTIONS)
        rebuilt = {table: _sorted_rows(connection, table) for table in gold.GOLD_TABLES}
    assert moved == rebuilt, "gold moved by the files' rows follows week.csv's, published again"
    assert owners == [
        ("536365", "daily.csv"),
        ("536366", "week.csv"),  # the line the first version of daily.csv had, week.csv's now
        ("536367", "week.csv"),
        ("536368", "daily.csv"),
    ]
    assert files == [
        ("daily.csv", "superseded", 2, 0),
        ("week.csv", "loaded", 2, 0),
        ("daily.csv", "loaded", 2, 0),
    ]
    assert scored == [("daily.csv", 2, 2), ("week.csv", 2, 2)]


# The live files in ledger order (the order they came into silver), and the superseded.
LEDGER_COUNTS = """SELECT file_id, status, bronze_rows, silver_rows, rejected_rows, duplicate_rows, overlap_rows,
    changed_invoices FROM ops.files ORDER BY status = 'loaded', silver_at, file_id"""
SILVER = "SELECT * FROM silver.transactions ORDER BY file_id, row_number"
REJECTED = "SELECT * FROM silver.rejected ORDER BY file_id, row_number"
FILE_QUALITY = "SELECT * EXCLUDE (measured_at) FROM ops.quality WHERE scope = 'file' ORDER BY file_id"


def test_a_rebuild_from_bronze_gives_the_same_silver_and_ledger_in_ledger_order(
    settings: Settings, warehouse: Warehouse, tmp_path: Path
) -> None:
    raw = tmp_path / "raw"
    first = load(warehouse, settings, first_rows_of_sample(raw / "first 3000.csv", 3000))
    sample = load(warehouse, settings, SAMPLE_CSV)
    subset = load(warehouse, settings, first_rows_of_sample(raw / "first 1000.csv", 1000))
    write_csv(raw / "daily.csv", line("900001", "85123A", 6, "2.55"), line("900002", "22633", 6, "1.85"))
    load(warehouse, settings, raw / "daily.csv")
    week = [line("900002", "22633", 6, "1.85"), line("900001", "85123A", 60, "2.55"), line("900003", "M", 1, "9")]
    changed = load(warehouse, settings, write_csv(raw / "week.csv", *week))
    write_csv(raw / "daily.csv", line("900004", "22633", 1, "1.85"))  # supersedes: week.csv's lines are first now
    load(warehouse, settings, raw / "daily.csv")
    with warehouse.connection() as connection:
        assert_every_file_reconciles(connection)
        before = {sql: query(connection, sql) for sql in (LEDGER_COUNTS, SILVER, REJECTED, FILE_QUALITY)}

    # Every line of the first 3,000 is the sample's, once: the rest of those rows are repeats in both files.
    assert (sample.overlap_rows, sample.changed_invoices) == (3000 - first.duplicate_rows, 0)
    assert (subset.silver_rows, subset.changed_invoices) == (0, 0)
    assert (changed.silver_rows, changed.overlap_rows, changed.rejected_rows, changed.changed_invoices) == (2, 1, 0, 1)
    loaded = [row[3:] for row in before[LEDGER_COUNTS] if row[1] == "loaded"]
    assert loaded[3:] == [(3, 0, 0, 0, 0), (1, 0, 0, 0, 0)], "week.csv, published again, then daily.csv"
    for _ in range(2):  # and a rebuild of a rebuild: the order holds
        report = steps.rebuild_silver(warehouse, settings.pipeline)
        with warehouse.connection() as connection:
            assert_every_file_reconciles(connection)
            after = {sql: query(connection, sql) for sql in (LEDGER_COUNTS, SILVER, REJECTED, FILE_QUALITY)}
        assert after == before
    assert (report.files, report.overlap_rows) == (5, sample.overlap_rows + subset.overlap_rows)
