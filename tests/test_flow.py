"""The whole medallion flow under Prefect's test harness, checked against figures computed independently."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from conftest import SAMPLE_CSV, write_csv
from prefect import flow, task

from flows.file_load import medallion
from medallion import reader, silver, steps
from medallion.errors import BadInputError
from medallion.settings import Settings, load_settings
from medallion.warehouse import Storage, Warehouse, bronze, silver_store, sql
from medallion.warehouse import connection as connection_module
from tasks.enrichment import enrichment_layer
from tasks.layers import bronze_layer, gold_layer, quality_layer, retry_unless_bad_input, silver_layer

LAYOUT = [
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
]
COUNTRY_NAMES = {"EIRE": "Ireland", "RSA": "South Africa", "USA": "United States"}
NON_PRODUCT = ["POST", "DOT", "M", "D", "C2", "S", "B", "CRUK", "PADS", "BANK CHARGES", "AMAZONFEE"]

pytestmark = pytest.mark.usefixtures("prefect_harness")


def expected_lines() -> pl.DataFrame:
    """The sample's sale and return lines, computed straight from the CSV without the project's code."""
    raw = pl.read_csv(SAMPLE_CSV, infer_schema=False, null_values=["NA"])
    unique = raw.unique(subset=LAYOUT, keep="first", maintain_order=True)
    return unique.select(
        pl.col("InvoiceNo").alias("invoice"),
        pl.col("StockCode").str.to_uppercase().alias("stock_code"),
        pl.col("CustomerID").alias("customer"),
        pl.col("Country").replace(COUNTRY_NAMES).alias("country"),
        pl.col("Quantity").cast(pl.Int64).alias("quantity"),
        (pl.col("Quantity").cast(pl.Int64) * pl.col("UnitPrice").cast(pl.Float64)).round(2).alias("amount"),
        pl.col("InvoiceDate").str.to_datetime("%m/%d/%Y %H:%M").alias("ts"),
    ).filter(~pl.col("invoice").str.starts_with("A"))


def table(path: Path, query: str) -> pl.DataFrame:
    with duckdb.connect(str(path), read_only=True) as connection:
        return sql.query_frame(connection, query)


def layer_counts(path: Path) -> dict[str, int]:
    names = [
        "bronze.transactions",
        "silver.transactions",
        "silver.rejected",
        "ops.files",
        "gold.customer_segments",
    ]
    return {name: table(path, f"SELECT count(*) AS n FROM {name}")["n"][0] for name in names}  # noqa: S608


def test_the_sample_loads_with_every_row_accounted_for_and_gold_matching(settings: Settings, tmp_path: Path) -> None:
    source = shutil.copy(SAMPLE_CSV, tmp_path / "raw" / SAMPLE_CSV.name)
    summary = medallion(str(source))

    raw_rows = pl.read_csv(SAMPLE_CSV, infer_schema=False).height
    duplicates = raw_rows - pl.read_csv(SAMPLE_CSV, infer_schema=False).unique(subset=LAYOUT).height
    assert summary.status == "loaded"
    assert summary.bronze_rows == raw_rows == 5076
    assert summary.duplicate_rows == duplicates > 0
    assert summary.bronze_rows == summary.silver_rows + summary.rejected_rows + summary.duplicate_rows
    ledger = table(settings.pipeline.warehouse_path, "SELECT * FROM ops.files").row(0, named=True)
    assert ledger["status"] == "loaded"
    assert ledger["bronze_rows"] == ledger["silver_rows"] + ledger["rejected_rows"] + ledger["duplicate_rows"]
    assert layer_counts(settings.pipeline.warehouse_path)["silver.transactions"] == summary.silver_rows

    lines = expected_lines()
    sales = lines.filter(~pl.col("invoice").str.starts_with("C"))
    by_country = lines.group_by("country").agg(
        pl.col("amount").sum().round(2).alias("net_revenue"),
        pl.col("invoice").filter(~pl.col("invoice").str.starts_with("C")).n_unique().alias("invoices"),
        pl.col("customer").drop_nulls().n_unique().alias("customers"),
        pl.col("quantity").sum().alias("quantity"),
    )
    gold_country = pl.read_parquet(settings.pipeline.gold_export_path / "sales_by_country.parquet")
    joined = by_country.join(gold_country, on="country", suffix="_gold", how="full", coalesce=True)
    assert joined.height == by_country.height == gold_country.height
    for column in ("net_revenue", "invoices", "customers", "quantity"):
        assert (joined[column] - joined[f"{column}_gold"]).abs().max() < 0.011, column

    kpis = table(settings.pipeline.warehouse_path, "SELECT * FROM gold.kpis").row(0, named=True)
    net_revenue = round(lines["amount"].sum(), 2)
    orders = sales["invoice"].n_unique()
    assert kpis["net_revenue"] == pytest.approx(net_revenue, abs=0.01)
    assert kpis["orders"] == orders
    assert kpis["customers"] == lines["customer"].drop_nulls().n_unique()
    assert kpis["average_order_value"] == pytest.approx(net_revenue / orders, abs=0.01)
    assert (
        kpis["distinct_products"]
        == lines.filter(
            ~pl.col("stock_code").is_in(NON_PRODUCT)
            & ~pl.col("stock_code").str.starts_with("DCGS")
            & ~pl.col("stock_code").str.starts_with("GIFT_")
        )["stock_code"].n_unique()
    )
    assert (kpis["first_invoice"], kpis["last_invoice"]) == (lines["ts"].min(), lines["ts"].max())

    per_customer = (
        lines.filter(pl.col("customer").is_not_null())
        .group_by("customer")
        .agg(pl.col("amount").sum().round(2).alias("net_revenue"))
    )
    vip_above = per_customer["net_revenue"].quantile(0.8, "linear")
    segments = table(settings.pipeline.warehouse_path, "SELECT * FROM gold.customer_segments")
    assert segments.height == per_customer.height
    assert segments["vip_threshold"][0] == pytest.approx(vip_above)
    assert (
        segments.filter(pl.col("segment") == "VIP").height
        == per_customer.filter(pl.col("net_revenue") > vip_above).height
    )
    assert set(segments["rfm_score"].str.len_chars().unique()) == {3}

    top = (
        lines.filter(~pl.col("stock_code").is_in(NON_PRODUCT))
        .group_by("stock_code")
        .agg(pl.col("amount").sum().round(2).alias("net_revenue"))
        .sort(["net_revenue", "stock_code"], descending=[True, False])
        .head(5)
    )
    gold_top = pl.read_parquet(settings.pipeline.gold_export_path / "top_products.parquet").head(5)
    assert gold_top["stock_code"].to_list() == top["stock_code"].to_list()

    quality = table(settings.pipeline.warehouse_path, "SELECT * FROM ops.quality WHERE scope = 'file'").row(
        0, named=True
    )
    assert quality["uniqueness"] == pytest.approx(100 * (1 - duplicates / raw_rows), abs=0.01)
    assert quality["completeness"] < 100, "measured on rows as received: missing customers count"
    assert summary.quality is not None and quality["score"] == summary.quality.score


def test_a_second_run_of_the_same_content_changes_nothing(settings: Settings, tmp_path: Path) -> None:
    first = shutil.copy(SAMPLE_CSV, tmp_path / "raw" / "first.csv")
    medallion(str(first))
    before = layer_counts(settings.pipeline.warehouse_path)
    gold_before = table(settings.pipeline.warehouse_path, "SELECT * EXCLUDE (refreshed_at) FROM gold.kpis")

    renamed = shutil.copy(SAMPLE_CSV, tmp_path / "raw" / "same content, other name.csv")
    summary = medallion(str(renamed))

    assert summary.status == "skipped"
    assert layer_counts(settings.pipeline.warehouse_path) == before
    assert table(settings.pipeline.warehouse_path, "SELECT * EXCLUDE (refreshed_at) FROM gold.kpis").equals(gold_before)


def test_a_changed_file_with_the_same_name_replaces_its_old_version(settings: Settings, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "raw" / "daily.csv",
        "536365,85123A,HEART,6,12/1/2010 8:26,2.55,17850,United Kingdom",
        "536366,22633,HAND WARMER,6,12/1/2010 8:28,1.85,17850,United Kingdom",
    )
    first = medallion(str(path))
    write_csv(path, "536366,22633,HAND WARMER,10,12/1/2010 8:28,1.85,17850,United Kingdom")
    second = medallion(str(path))

    assert first.file_id != second.file_id
    silver = table(settings.pipeline.warehouse_path, "SELECT invoice_no, quantity FROM silver.transactions")
    assert silver.rows() == [("536366", 10)]
    ledger = dict(table(settings.pipeline.warehouse_path, "SELECT file_id, status FROM ops.files").rows())
    assert ledger == {first.file_id: "superseded", second.file_id: "loaded"}
    assert layer_counts(settings.pipeline.warehouse_path)["bronze.transactions"] == 3, "bronze keeps both versions"


class CountingStorage:
    """The storage the settings name, noting each opening as its read_only flag."""

    def __init__(self, inner: Storage, opened: list[bool]) -> None:
        self.inner = inner
        self.opened = opened

    def connect(self, *, read_only: bool) -> duckdb.DuckDBPyConnection:
        self.opened.append(read_only)
        return self.inner.connect(read_only=read_only)

    def describe(self) -> str:
        return self.inner.describe()


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Each opening of a warehouse from now on, as its read_only flag."""
    calls: list[bool] = []
    storage_for = connection_module.storage_for
    monkeypatch.setattr(
        connection_module, "storage_for", lambda pipeline: CountingStorage(storage_for(pipeline), calls)
    )
    return calls


def test_a_run_opens_the_warehouse_once_for_all_its_layers_and_closes_it(
    settings: Settings, tmp_path: Path, opened: list[bool]
) -> None:
    summary = medallion(str(shutil.copy(SAMPLE_CSV, tmp_path / "raw" / SAMPLE_CSV.name)))

    assert summary.status == "loaded"
    assert opened == [False], "bronze, silver, quality, enrichment and gold share one open warehouse"
    # Closed after the run: this process opens it again with another configuration, which DuckDB refuses while
    # the same file is open in it.
    assert table(settings.pipeline.warehouse_path, "SELECT status FROM ops.files")["status"].to_list() == ["loaded"]
    with Warehouse(settings.pipeline) as warehouse:
        assert opened == [False], "the first step opens the warehouse, not the block"
        assert steps.load_bronze(warehouse, SAMPLE_CSV, settings.pipeline).skipped
    assert opened == [False, False]


def test_a_step_that_fails_inside_the_run_closes_the_warehouse_and_its_retry_opens_it_again(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, opened: list[bool]
) -> None:
    original_publish = silver_store.publish_silver
    failures: list[str] = []

    def publish_failing_once(connection: Any, file_id: str, *arguments: Any, **options: Any) -> Any:
        if not failures:
            failures.append(file_id)
            raise OSError("a transient failure")
        return original_publish(connection, file_id, *arguments, **options)

    monkeypatch.setattr(silver_store, "publish_silver", publish_failing_once)
    summary = medallion(str(shutil.copy(SAMPLE_CSV, tmp_path / "raw" / SAMPLE_CSV.name)))

    assert failures and summary.status == "loaded"
    assert opened == [False, False], "opened by bronze, closed by the failure, opened again by silver's retry"
    assert table(settings.pipeline.warehouse_path, "SELECT status FROM ops.files")["status"].to_list() == ["loaded"]


def test_a_failure_while_publishing_silver_leaves_the_previous_state(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = write_csv(tmp_path / "raw" / "good.csv", "536365,85123A,HEART,6,12/1/2010 8:26,2.55,17850,France")
    medallion(str(good))
    before = table(settings.pipeline.warehouse_path, "SELECT * FROM silver.transactions ORDER BY file_id, row_number")

    original_rows = silver.silver_rows_sql

    def rows_silver_refuses(source: str, date_formats: list[str]) -> str:
        return f"SELECT * REPLACE (NULL::VARCHAR AS country) FROM ({original_rows(source, date_formats)})"  # noqa: S608

    monkeypatch.setattr(silver, "silver_rows_sql", rows_silver_refuses)
    second = write_csv(tmp_path / "raw" / "second.csv", "536366,22633,WARMER,6,12/1/2010 8:28,1.85,17850,France")
    with pytest.raises(duckdb.ConstraintException):
        medallion(str(second))

    assert table(
        settings.pipeline.warehouse_path, "SELECT * FROM silver.transactions ORDER BY file_id, row_number"
    ).equals(before)
    statuses = dict(table(settings.pipeline.warehouse_path, "SELECT file_name, status FROM ops.files").rows())
    assert statuses == {"good.csv": "loaded", "second.csv": "failed"}
    assert second.exists()


def test_a_bad_file_is_recorded_as_failed_and_kept(settings: Settings, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "raw" / "mixed dates.csv",
        "536365,85123A,HEART,6,13/01/2011 8:26,2.55,17850,France",
        "536366,22633,WARMER,6,01/13/2011 8:28,1.85,17850,France",
    )
    content = path.read_bytes()
    with pytest.raises(Exception, match="invoice dates mix day-first and month-first orders"):
        medallion(str(path))
    assert path.read_bytes() == content
    ledger = table(settings.pipeline.warehouse_path, "SELECT status, retryable, error FROM ops.files").row(
        0, named=True
    )
    assert ledger["status"] == "failed"
    assert ledger["retryable"] is False
    assert "mix day-first and month-first" in ledger["error"]
    assert table(settings.pipeline.warehouse_path, "SELECT count(*) AS n FROM silver.transactions")["n"][0] == 0


def test_the_sample_is_enriched_offline_at_the_rate_of_each_invoice_date(settings: Settings, tmp_path: Path) -> None:
    from datetime import timedelta

    from currency_converter import CurrencyConverter, RateNotFoundError

    medallion(str(shutil.copy(SAMPLE_CSV, tmp_path / "raw" / "sample.csv")))
    enriched = table(
        settings.pipeline.warehouse_path,
        """SELECT invoice_date, country, country_raw, country_iso2, line_amount, amount_usd, amount_eur, rate_date,
                  rate_source, country_source
           FROM silver.transactions_enriched""",
    )
    assert (
        enriched.height
        == table(settings.pipeline.warehouse_path, "SELECT count(*) AS n FROM silver.transactions")["n"][0]
    )
    ecb = CurrencyConverter()

    def last_business_day_rate(day: Any, currency: str) -> tuple[Any, float]:
        while True:
            try:
                return day, ecb.convert(1, "GBP", currency, date=day)
            except RateNotFoundError:
                day -= timedelta(days=1)

    uk = enriched.filter(pl.col("country") == "United Kingdom")
    assert uk.height > 4000
    for row in uk.unique("invoice_date").iter_rows(named=True):
        rate_date, usd = last_business_day_rate(row["invoice_date"], "USD")
        assert row["rate_date"] == rate_date
        assert row["amount_usd"] == pytest.approx(row["line_amount"] * usd, rel=1e-9)
    assert set(enriched["rate_source"].unique()) == {"ecb_offline"}
    codes = dict(enriched.select("country_raw", "country_iso2").unique().rows())
    assert (codes["EIRE"], codes["RSA"], codes["USA"], codes["United Kingdom"]) == ("IE", "ZA", "US", "GB")
    assert codes["Unspecified"] is None and codes["European Community"] is None
    gold_region = pl.read_parquet(settings.pipeline.gold_export_path / "sales_by_region.parquet")
    assert gold_region["net_revenue"].sum() == pytest.approx(
        table(settings.pipeline.warehouse_path, "SELECT net_revenue FROM gold.kpis")["net_revenue"][0], abs=0.05
    )


def test_a_file_read_in_small_batches_gives_the_same_warehouse(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = shutil.copy(SAMPLE_CSV, tmp_path / "raw" / "sample.csv")
    whole = medallion(str(source))
    whole_kpis = table(settings.pipeline.warehouse_path, "SELECT * EXCLUDE (refreshed_at) FROM gold.kpis")
    whole_quality = table(
        settings.pipeline.warehouse_path, "SELECT * EXCLUDE (measured_at) FROM ops.quality WHERE scope = 'file'"
    )

    monkeypatch.setenv("WAREHOUSE_PATH", str(tmp_path / "batched.duckdb"))
    batched = medallion(str(source), batch_rows=700)
    batched_path = tmp_path / "batched.duckdb"

    for key in ("bronze_rows", "silver_rows", "rejected_rows", "duplicate_rows"):
        assert getattr(batched, key) == getattr(whole, key), key
    assert batched.quality == whole.quality
    assert table(batched_path, "SELECT * EXCLUDE (refreshed_at) FROM gold.kpis").equals(whole_kpis)
    assert table(batched_path, "SELECT * EXCLUDE (measured_at) FROM ops.quality WHERE scope = 'file'").equals(
        whole_quality
    )


def test_silver_rebuilt_from_bronze_matches_the_loaded_one_and_swaps_in_whole(
    settings: Settings, tmp_path: Path
) -> None:
    medallion(str(shutil.copy(SAMPLE_CSV, tmp_path / "raw" / "sample.csv")))
    path = write_csv(tmp_path / "raw" / "daily.csv", "536365,85123A,HEART,6,12/1/2010 8:26,2.55,17850,France")
    medallion(str(path))
    write_csv(path, "536366,22633,WARMER,6,12/1/2010 8:28,1.85,17850,France")
    medallion(str(path))
    columns = "file_id, row_number, invoice_no, quantity, line_amount, country, invoice_ts, is_cancellation"
    before = table(settings.pipeline.warehouse_path, f"SELECT {columns} FROM silver.transactions ORDER BY ALL")  # noqa: S608
    ledger_before = table(
        settings.pipeline.warehouse_path, "SELECT * EXCLUDE (silver_at) FROM ops.files ORDER BY file_id"
    )

    with Warehouse(settings.pipeline) as warehouse:
        report = steps.rebuild_silver(warehouse, settings.pipeline)

    assert report.model_dump() == {
        "files": 2,
        "carried_over": 0,
        "silver_rows": before.height,
        "rejected_rows": 0,
        "duplicate_rows": 117,
        "overlap_rows": 0,
        "changed_invoices": 0,
    }
    after = table(settings.pipeline.warehouse_path, f"SELECT {columns} FROM silver.transactions ORDER BY ALL")  # noqa: S608
    assert after.equals(before), "the superseded version stays out"
    ledger_after = table(
        settings.pipeline.warehouse_path, "SELECT * EXCLUDE (silver_at) FROM ops.files ORDER BY file_id"
    )
    assert ledger_after.equals(ledger_before)
    tables = table(
        settings.pipeline.warehouse_path, "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'silver'"
    )
    assert sorted(tables["table_name"]) == ["lines", "rejected"]
    enriched = table(settings.pipeline.warehouse_path, "SELECT count(*) AS n FROM silver.transactions_enriched")
    assert enriched["n"][0] == before.height, "the enriched view reads the rebuilt table"


def test_a_file_duckdbs_strict_reader_refuses_still_loads_every_row_unmarked(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "raw" / "mixed endings.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b",InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\r\n"
        b'1,536365,85123A,"TWO\nLINES",6,12/1/2010 8:26,2.55,17850,France\r\n'
        b"2,536366,22633,WARMER,6,12/1/2010 8:28,1.85,17850,France\n"
    )
    profile = reader.profile_file(path)
    probe = load_settings(WAREHOUSE_PATH=str(tmp_path / "probe.duckdb"))
    with Warehouse(probe.pipeline) as warehouse, warehouse.connection() as connection:
        with pytest.raises(reader.TolerantParseNeeded):
            bronze.publish_bronze(connection, profile, None, flow_run_id=None, started_at=sql.now())
    with Warehouse(settings.pipeline) as warehouse:
        assert steps.load_bronze(warehouse, path, settings.pipeline).bronze_rows == 2
    rows = table(
        settings.pipeline.warehouse_path,
        "SELECT row_number, description, parse_error FROM bronze.transactions ORDER BY 1",
    )
    assert rows.rows() == [(1, "TWO\nLINES", None), (2, "WARMER", None)]


def test_each_file_has_its_own_key_and_replacing_one_leaves_the_others_lines(
    settings: Settings, tmp_path: Path
) -> None:
    monday = write_csv(tmp_path / "raw" / "monday.csv", "536365,85123A,HEART,6,12/1/2010 8:26,2.55,17850,France")
    tuesday = write_csv(tmp_path / "raw" / "tuesday.csv", "536366,22633,WARMER,6,12/2/2010 8:28,1.85,12583,France")
    medallion(str(monday))
    medallion(str(tuesday))
    write_csv(monday, "536367,84879,BIRD,8,12/1/2010 8:34,1.69,17850,France")  # a new version of monday.csv
    medallion(str(monday))

    keys = table(
        settings.pipeline.warehouse_path, "SELECT file_name, status, file_key FROM ops.files ORDER BY file_key"
    )
    lines = table(
        settings.pipeline.warehouse_path,
        "SELECT source_file, invoice_no, currency FROM silver.transactions ORDER BY source_file, invoice_no",
    )
    assert keys["file_key"].n_unique() == 3
    assert keys.select("file_name", "status").rows() == [
        ("monday.csv", "superseded"),
        ("tuesday.csv", "loaded"),
        ("monday.csv", "loaded"),
    ]
    assert lines.rows() == [("monday.csv", "536367", "GBP"), ("tuesday.csv", "536366", "GBP")]


def test_a_warehouse_of_an_earlier_version_moves_to_the_file_key_and_rebuilds(
    settings: Settings, tmp_path: Path
) -> None:
    medallion(str(shutil.copy(SAMPLE_CSV, tmp_path / "raw" / "sample.csv")))
    before = table(settings.pipeline.warehouse_path, "SELECT * FROM silver.transactions ORDER BY row_number")
    orphan = "e" * 64  # silver rows of a file the ledger does not know, as a hand-edited warehouse may hold
    with duckdb.connect(str(settings.pipeline.warehouse_path)) as old:  # back to the layout of the previous version
        old.execute("CREATE TABLE silver.previous AS SELECT * FROM silver.transactions")
        old.execute(
            """INSERT INTO silver.previous SELECT * REPLACE (? AS file_id, 'manual.csv' AS source_file)
               FROM silver.transactions WHERE row_number <= 3""",
            [orphan],
        )
        old.execute("DROP VIEW silver.transactions")
        old.execute("DROP TABLE silver.lines")
        old.execute("ALTER TABLE silver.previous RENAME TO transactions")
        old.execute("ALTER TABLE ops.files DROP COLUMN file_key")
        old.execute("ALTER TABLE ops.files DROP COLUMN currency")
        old.execute("DROP TABLE ops.schema_version")  # that version recorded no migrations

    with Warehouse(settings.pipeline) as warehouse:
        report = steps.rebuild_silver(warehouse, settings.pipeline)  # opens (and so migrates) the warehouse first

    after = table(settings.pipeline.warehouse_path, "SELECT * FROM silver.transactions ORDER BY file_id, row_number")
    ledger = table(
        settings.pipeline.warehouse_path, "SELECT file_name, status, silver_rows, currency FROM ops.files ORDER BY 1"
    )
    assert after.filter(pl.col("file_id") != orphan).sort("row_number").equals(before)
    assert after.filter(pl.col("file_id") == orphan).height == 3
    assert ledger.rows() == [("manual.csv", "loaded", 3, "GBP"), ("sample.csv", "loaded", before.height, "GBP")]
    assert report.files == 1 and report.carried_over == 1


def test_a_bad_input_is_not_retried_and_a_transient_failure_is() -> None:
    layers = (bronze_layer, silver_layer, quality_layer, enrichment_layer, gold_layer)
    assert {layer.retry_condition_fn for layer in layers} == {retry_unless_bad_input}
    calls: list[str] = []

    @task(retries=2, retry_delay_seconds=0, retry_condition_fn=retry_unless_bad_input)
    def failing(error: Exception) -> None:
        calls.append(type(error).__name__)
        raise error

    @flow
    def fail_twice() -> None:
        failing(BadInputError("the file is bad"), return_state=True)
        failing(OSError("a transient failure"), return_state=True)

    fail_twice(return_state=True)
    assert calls == ["BadInputError", "OSError", "OSError", "OSError"]
