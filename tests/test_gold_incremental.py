"""Gold moved file by file equals gold rebuilt from the whole of silver: every gold table, compared with EXCEPT ALL
both ways (only `refreshed_at` left out), after months loaded one at a time into real DuckDB warehouses, with a
superseded month, cancellations, guests, bad debts, non-product codes and amounts whose sums a floating-point
running total would get wrong."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from conftest import SAMPLE_CSV, write_csv

from enrichment import build_enrichment
from medallion import gold, steps
from medallion.settings import Settings, load_settings
from medallion.warehouse import Warehouse, ledger

GOLD_OPTIONS: dict[str, Any] = {"top_n": 5, "vip_percentile": 0.8, "low_value_percentile": 0.2}
TOTALS_TABLES = ("country_totals", "month_totals", "overall_totals", "customer_totals", "product_totals")


def _line(
    invoice: str, stock: str, description: str, quantity: int, when: str, price: str, customer: str, country: str
) -> str:
    return ",".join([invoice, stock, description, str(quantity), when, price, customer, country])


JANUARY = [
    _line("536365", "85123A", "WHITE HANGING HEART", 6, "1/5/2011 8:26", "2.55", "17850", "United Kingdom"),
    _line("536365", "71053", "WHITE METAL LANTERN", 6, "1/5/2011 8:26", "3.39", "17850", "United Kingdom"),
    _line("536366", "22633", "HAND WARMER UNION JACK", 6, "1/6/2011 8:28", "1.85", "17850", "United Kingdom"),
    _line("C536367", "85123A", "WHITE HANGING HEART", -2, "1/7/2011 9:00", "2.55", "17850", "United Kingdom"),
    _line("536368", "POST", "POSTAGE", 1, "1/8/2011 10:00", "18.00", "12583", "France"),
    _line("536368", "22728", "ALARM CLOCK BAKELIKE PINK", 24, "1/8/2011 10:00", "3.75", "12583", "France"),
    _line("536369", "22728", "ALARM CLOCK BAKELIKE PINK", 4, "1/9/2011 11:00", "3.75", "", "United Kingdom"),
    _line("A536370", "B", "Adjust bad debt", 1, "1/10/2011 12:00", "-11062.06", "", "United Kingdom"),
    _line("536371", "M", "Manual", 1, "1/11/2011 12:00", "0.00", "13047", "United Kingdom"),
    # Nearly 1e13: added up as doubles, the pennies of the other lines would be lost.
    _line("536372", "99999", "BIG ITEM", 9999999, "1/12/2011 13:00", "999999.99", "13047", "EIRE"),
    _line("536373", "22728", "ALARM CLOCK BAKELIKE PINK", 3, "1/12/2011 14:00", "0.10", "13047", "EIRE"),
]
FEBRUARY = [
    _line("536380", "85123A", "WHITE HANGING HEART", 12, "2/1/2011 8:00", "2.55", "17850", "United Kingdom"),
    _line("536381", "22728", "ALARM CLOCK BAKELIKE RED", 8, "2/2/2011 9:00", "3.75", "12583", "Belgium"),
    _line("C536382", "99999", "BIG ITEM", -9999999, "2/3/2011 10:00", "999999.99", "13047", "EIRE"),
    _line("536383", "84879", "ASSORTED BIRD ORNAMENT", 32, "2/4/2011 11:00", "1.69", "13047", "EIRE"),
    _line("536383", "DOT", "DOTCOM POSTAGE", 1, "2/4/2011 11:00", "11.77", "13047", "EIRE"),
    # An invoice of January's file again, with a line that file did not have.
    _line("536365", "84406B", "CREAM CUPID HEARTS", 8, "1/5/2011 8:26", "2.75", "17850", "United Kingdom"),
]
MARCH_FIRST = [
    _line("536390", "22633", "HAND WARMER UNION JACK", 10, "3/1/2011 9:00", "1.85", "14527", "Germany"),
    _line("536391", "85123A", "WHITE HANGING HEART", 2, "3/2/2011 9:00", "2.55", "17850", "United Kingdom"),
    _line("C536392", "22633", "HAND WARMER UNION JACK", -10, "3/3/2011 9:00", "1.85", "14527", "Germany"),
    _line("536393", "99999", "BIG ITEM", 1000000, "3/4/2011 9:00", "999999.99", "16029", "Netherlands"),
]
# March sent again: one line gone, one changed, one new, a new customer.
MARCH_SECOND = [
    _line("536390", "22633", "HAND WARMER UNION JACK", 10, "3/1/2011 9:00", "1.85", "14527", "Germany"),
    _line("536391", "85123A", "WHITE HANGING HEART", 5, "3/2/2011 9:00", "2.55", "17850", "United Kingdom"),
    _line("536394", "71053", "WHITE METAL LANTERN", 1, "3/5/2011 9:00", "0.01", "18074", "United Kingdom"),
]
APRIL = [
    _line("536400", "85123A", "WHITE HANGING HEART", 1, "4/1/2011 9:00", "2.55", "14527", "Germany"),
    _line("536401", "22728", "ALARM CLOCK BAKELIKE PINK", 2, "4/2/2011 9:00", "3.75", "", "Unspecified"),
    _line("C536402", "71053", "WHITE METAL LANTERN", -1, "4/3/2011 9:00", "3.39", "17850", "United Kingdom"),
    _line("A536403", "B", "Adjust bad debt", 1, "4/4/2011 9:00", "-5.00", "", "United Kingdom"),
]


class Loader:
    """One warehouse loading files through bronze, silver and offline enrichment, then publishing gold either by
    the file's rows (`incremental`) or by a rebuild from the whole of silver."""

    def __init__(self, settings: Settings, *, incremental: bool) -> None:
        self.settings = settings
        self.incremental = incremental
        self.warehouse = Warehouse(settings.pipeline)

    def stage(self, path: Path) -> tuple[steps.BronzeReport, steps.SilverReport]:
        """The file through bronze and silver only, as a run leaves it whose gold step did not run."""
        report = steps.load_bronze(self.warehouse, path, self.settings.pipeline)
        return report, steps.load_silver(self.warehouse, report.file_id, self.settings.pipeline)

    def load(self, path: Path) -> None:
        report, silver = self.stage(path)
        with self.warehouse.connection() as connection:
            build_enrichment(connection, self.settings.enrichment, live=False)
            if not self.incremental:
                gold.publish_gold(connection, **GOLD_OPTIONS)
                return
            gold.update_gold(
                connection,
                added_file_keys=[ledger.key_of_file(connection, report.file_id)],
                removed_file_keys=[ledger.key_of_file(connection, old) for old in silver.superseded],
                **GOLD_OPTIONS,
            )

    def gold_rows(self, name: str) -> object:
        """Gold table `name` as an Arrow table, without the time it was refreshed."""
        columns = "* EXCLUDE (refreshed_at)" if name == "kpis" else "*"
        with self.warehouse.connection() as connection:
            return connection.sql(f"SELECT {columns} FROM gold.{name}").to_arrow_table()  # noqa: S608 - names from GOLD_TABLES

    def close(self) -> None:
        self.warehouse.close()


@pytest.fixture
def loaders(tmp_path: Path) -> Iterator[tuple[Loader, Loader]]:
    """An incremental warehouse and one that rebuilds gold after every file, loading the same files."""
    made = [
        Loader(_settings(tmp_path / name), incremental=name == "incremental") for name in ("incremental", "rebuilt")
    ]
    yield made[0], made[1]
    for loader in made:
        loader.close()


def _settings(folder: Path) -> Settings:
    return load_settings(
        WAREHOUSE_PATH=folder / "warehouse.duckdb",
        STAGING_PATH=folder / "staging",
        GOLD_EXPORT_PATH=folder / "gold",
        ENABLE_EXTERNAL_ENRICHMENT=False,
    )


def differences(connection: duckdb.DuckDBPyConnection, name: str, expected: object) -> tuple[int, int]:
    """Rows of gold table `name` missing from `expected` (an Arrow table), and rows of `expected` missing from it,
    counted with EXCEPT ALL both ways."""
    actual = f"SELECT {'* EXCLUDE (refreshed_at)' if name == 'kpis' else '*'} FROM gold.{name}"  # noqa: S608
    connection.register("expected_gold", expected)
    try:
        extra = connection.execute(f"SELECT count(*) FROM ({actual} EXCEPT ALL FROM expected_gold)").fetchall()  # noqa: S608
        missing = connection.execute(f"SELECT count(*) FROM (FROM expected_gold EXCEPT ALL {actual})").fetchall()  # noqa: S608
    finally:
        connection.unregister("expected_gold")
    return int(extra[0][0]), int(missing[0][0])


def assert_same_gold(incremental: Loader, rebuilt: Loader) -> None:
    with incremental.warehouse.connection() as connection:
        for name in gold.GOLD_TABLES:
            assert differences(connection, name, rebuilt.gold_rows(name)) == (0, 0), name


def assert_top_product_counts_match_silver(connection: duckdb.DuckDBPyConnection) -> None:
    """The top products' distinct invoices and customers, which gold keeps from the top products' lines alone, are
    those of all of silver's lines."""
    counted = {
        stock: (invoices, customers)
        for stock, invoices, customers in connection.execute(
            """SELECT stock_code, count(DISTINCT invoice_no) FILTER (WHERE NOT is_cancellation),
                      count(DISTINCT customer_id)
               FROM silver.lines_derived WHERE NOT is_bad_debt AND NOT is_non_product GROUP BY stock_code"""
        ).fetchall()
    }
    top = connection.execute("SELECT stock_code, invoices, customers FROM gold.top_products").fetchall()
    assert top
    assert {stock: (invoices, customers) for stock, invoices, customers in top} == {
        stock: counted[stock] for stock, _, _ in top
    }


def test_gold_moved_month_by_month_equals_gold_rebuilt_after_each_month(
    loaders: tuple[Loader, Loader], tmp_path: Path
) -> None:
    incremental, rebuilt = loaders
    months = [
        write_csv(tmp_path / "drop" / "jan.csv", *JANUARY),
        write_csv(tmp_path / "drop" / "feb.csv", *FEBRUARY),
        write_csv(tmp_path / "drop" / "mar.csv", *MARCH_FIRST),
        write_csv(tmp_path / "drop" / "apr.csv", *APRIL),
        write_csv(tmp_path / "resent" / "mar.csv", *MARCH_SECOND),  # supersedes the first March
    ]
    for path in months:
        incremental.load(path)
        rebuilt.load(path)
        assert_same_gold(incremental, rebuilt)

    with incremental.warehouse.connection() as connection:
        superseded = connection.execute("SELECT count(*) FROM ops.files WHERE status = 'superseded'").fetchone()
        assert_top_product_counts_match_silver(connection)
        kpis = gold.gold_kpis(connection)
        lines = connection.execute("SELECT line_amount FROM silver.lines_derived WHERE NOT is_bad_debt").fetchall()
    assert superseded == (1,)
    # The net revenue is the exact sum of silver's amounts, each a whole number of pence.
    assert Decimal(str(kpis["net_revenue"])) == sum((Decimal(f"{amount:.2f}") for (amount,) in lines), Decimal(0))
    assert 0 < kpis["net_revenue"] < 1_000  # the near-1e13 sales were cancelled or superseded, the pennies stay


def test_a_top_product_on_one_invoice_in_two_files_counts_that_invoice_once(
    loaders: tuple[Loader, Loader], tmp_path: Path
) -> None:
    # January's invoice 536365 comes back in another file with a line of 85123A silver lacks (a changed invoice):
    # the pair of product and invoice is then in two files, and taking either file out must keep it counted.
    incremental, rebuilt = loaders
    more = [
        _line("536365", "85123A", "WHITE HANGING HEART", 7, "1/5/2011 8:26", "2.55", "17850", "United Kingdom"),
        _line("536366", "85123A", "WHITE HANGING HEART", 3, "1/6/2011 8:28", "2.55", "17850", "United Kingdom"),
    ]
    files = [
        write_csv(tmp_path / "drop" / "jan.csv", *JANUARY),
        write_csv(tmp_path / "drop" / "jan_more.csv", *more),
        write_csv(tmp_path / "resent" / "jan_more.csv", more[1]),  # supersedes jan_more: 536365 leaves that file
    ]
    for path in files:
        incremental.load(path)
        rebuilt.load(path)
        assert_same_gold(incremental, rebuilt)
        with incremental.warehouse.connection() as connection:
            assert_top_product_counts_match_silver(connection)
    with incremental.warehouse.connection() as connection:
        invoices = connection.execute("SELECT invoices FROM gold.top_products WHERE stock_code = '85123A'").fetchall()
    assert invoices == [(2,)]  # 536365 and 536366; the cancellation C536367 is no order


def test_a_superseded_month_leaves_no_trace_of_its_first_version(tmp_path: Path) -> None:
    # Loaded with the first March then the second, gold equals a warehouse that only ever saw the second.
    paths = {
        "jan": write_csv(tmp_path / "drop" / "jan.csv", *JANUARY),
        "mar": write_csv(tmp_path / "drop" / "mar.csv", *MARCH_FIRST),
        "mar again": write_csv(tmp_path / "resent" / "mar.csv", *MARCH_SECOND),
    }
    both = Loader(_settings(tmp_path / "both"), incremental=True)
    second_only = Loader(_settings(tmp_path / "second"), incremental=True)
    try:
        for name in ("jan", "mar", "mar again"):
            both.load(paths[name])
        for name in ("jan", "mar again"):
            second_only.load(paths[name])
        assert_same_gold(both, second_only)
        with both.warehouse.connection() as connection, second_only.warehouse.connection() as other:
            for table in TOTALS_TABLES:
                assert _state_rows(connection, table) == _state_rows(other, table), table
    finally:
        both.close()
        second_only.close()


def _state_rows(connection: duckdb.DuckDBPyConnection, table: str) -> list[tuple[object, ...]]:
    return sorted(connection.execute(f"SELECT * FROM gold_state.{table}").fetchall(), key=repr)  # noqa: S608


def test_the_sample_loaded_month_by_month_gives_the_gold_of_a_rebuild(tmp_path: Path) -> None:
    incremental = Loader(_settings(tmp_path / "incremental"), incremental=True)
    try:
        for path in _sample_by_month(tmp_path / "months"):
            incremental.load(path)
        with incremental.warehouse.connection() as connection:
            assert_top_product_counts_match_silver(connection)
            moved = {name: incremental.gold_rows(name) for name in gold.GOLD_TABLES}
            rows = gold.gold_kpis(connection)["rows"]
            gold.publish_gold(connection, **GOLD_OPTIONS)
            for name in gold.GOLD_TABLES:
                assert differences(connection, name, moved[name]) == (0, 0), name
    finally:
        incremental.close()
    assert rows > 4_000  # the whole sample, less its bad debts, is in gold


def _sample_by_month(folder: Path) -> list[Path]:
    """The sample's rows split into one file per month of invoice date, in the sample's own layout."""
    with SAMPLE_CSV.open(encoding="utf-8", newline="") as source:
        reader = csv.reader(source)
        header = next(reader)
        months: dict[tuple[int, int], list[list[str]]] = {}
        for row in reader:
            month_text, _, year_text = row[5].split(" ")[0].split("/")  # US dates such as 12/1/2010 8:26
            months.setdefault((int(year_text), int(month_text)), []).append(row)
    folder.mkdir(parents=True)
    paths = []
    for (year, month), rows in sorted(months.items()):
        path = folder / f"retail_{year}_{month:02d}.csv"
        with path.open("w", encoding="utf-8", newline="") as target:
            csv.writer(target).writerows([header, *rows])
        paths.append(path)
    return paths


def test_gold_catches_up_with_files_whose_gold_step_never_ran(tmp_path: Path) -> None:
    # As a warehouse of the previous release has: silver loaded, gold's state empty.
    incremental = Loader(_settings(tmp_path / "w"), incremental=True)
    try:
        for name, lines in (("jan.csv", JANUARY), ("feb.csv", FEBRUARY)):
            incremental.stage(write_csv(tmp_path / name, *lines))
        with incremental.warehouse.connection() as connection:
            gold.update_gold(connection, added_file_keys=[], removed_file_keys=[], **GOLD_OPTIONS)
            moved = {name: incremental.gold_rows(name) for name in gold.GOLD_SQL}  # no enrichment yet
            gold.publish_gold(connection, **GOLD_OPTIONS)
            for name, expected in moved.items():
                assert differences(connection, name, expected) == (0, 0), name
            files = gold.gold_kpis(connection)["files"]
    finally:
        incremental.close()
    assert files == 2


def test_a_changed_enrichment_value_moves_the_enriched_tables_of_the_files_that_hold_it(tmp_path: Path) -> None:
    incremental = Loader(_settings(tmp_path / "w"), incremental=True)
    try:
        for name, lines in (("jan.csv", JANUARY), ("feb.csv", FEBRUARY), ("apr.csv", APRIL)):
            incremental.load(write_csv(tmp_path / name, *lines))
        with incremental.warehouse.connection() as connection:
            # A later lookup answers differently: a country's region, a day's rate, a product's category.
            connection.execute(
                """UPDATE enrichment.countries SET region = 'Elsewhere', enriched_at = now()::TIMESTAMP
                   WHERE country = 'EIRE'"""
            )
            connection.execute(
                """UPDATE enrichment.rates SET usd = usd * 2, enriched_at = now()::TIMESTAMP
                   WHERE invoice_date = DATE '2011-02-03'"""
            )
            connection.execute(
                """UPDATE enrichment.products SET category = 'toys', enriched_at = now()::TIMESTAMP
                   WHERE stock_code = '85123A'"""
            )
            before = incremental.gold_rows("sales_by_category")
            gold.update_gold(connection, added_file_keys=[], removed_file_keys=[], **GOLD_OPTIONS)
            moved = {name: incremental.gold_rows(name) for name in gold.GOLD_TABLES}
            gold.publish_gold(connection, **GOLD_OPTIONS)
            for name in gold.GOLD_TABLES:
                assert differences(connection, name, moved[name]) == (0, 0), name
            assert differences(connection, "sales_by_category", before) != (0, 0)
    finally:
        incremental.close()


_ENRICHED_STATE = ("enriched_invoices", "category_sums", "region_totals", "category_totals")


def _assert_moved_equals_rebuilt(connection: duckdb.DuckDBPyConnection, incremental: Loader) -> None:
    """Every gold table and the enriched state as gold moved them, against a rebuild from silver."""
    moved = {name: incremental.gold_rows(name) for name in gold.GOLD_TABLES}
    state = {name: _state_rows(connection, name) for name in _ENRICHED_STATE}
    gold.publish_gold(connection, **GOLD_OPTIONS)
    for name in gold.GOLD_TABLES:
        assert differences(connection, name, moved[name]) == (0, 0), name
    for name, rows in state.items():
        assert _state_rows(connection, name) == rows, name


def test_a_new_file_and_a_changed_category_move_gold_together_as_a_rebuild_makes_it(tmp_path: Path) -> None:
    # February's file is refreshed for the category alone, April's for its lines; a day lost its rate too.
    incremental = Loader(_settings(tmp_path / "w"), incremental=True)
    try:
        for name, lines in (("jan.csv", JANUARY), ("feb.csv", FEBRUARY)):
            incremental.load(write_csv(tmp_path / name, *lines))
        with incremental.warehouse.connection() as connection:
            connection.execute(
                """UPDATE enrichment.products SET category = 'toys', enriched_at = now()::TIMESTAMP
                   WHERE stock_code = '22728'"""
            )
            connection.execute("DELETE FROM enrichment.rates WHERE invoice_date = DATE '2011-01-08'")
        incremental.load(write_csv(tmp_path / "apr.csv", *APRIL))
        with incremental.warehouse.connection() as connection:
            _assert_moved_equals_rebuilt(connection, incremental)
    finally:
        incremental.close()


def test_gold_kept_before_enrichment_first_ran_is_enriched_as_a_rebuild_makes_it(tmp_path: Path) -> None:
    incremental = Loader(_settings(tmp_path / "w"), incremental=True)
    try:
        for name, lines in (("jan.csv", JANUARY), ("feb.csv", FEBRUARY)):
            report, _ = incremental.stage(write_csv(tmp_path / name, *lines))
            with incremental.warehouse.connection() as connection:
                key = ledger.key_of_file(connection, report.file_id)
                gold.update_gold(connection, added_file_keys=[key], removed_file_keys=[], **GOLD_OPTIONS)
        # Enrichment's first run comes with March's file: the two files before it are enriched with it.
        incremental.load(write_csv(tmp_path / "mar.csv", *MARCH_FIRST))
        with incremental.warehouse.connection() as connection:
            assert gold.gold_kpis(connection)["files"] == 3
            _assert_moved_equals_rebuilt(connection, incremental)
    finally:
        incremental.close()


def test_a_file_left_in_silver_by_a_failed_run_counts_once_when_loaded_again(tmp_path: Path) -> None:
    # A run whose gold step failed and whose taking back out failed too (a full disk) leaves the file's ledger row
    # `silver` with its rows in silver; a later file's run catches gold up with them, then the retry loads it again.
    paths = {name: write_csv(tmp_path / f"{name}.csv", *lines) for name, lines in (
        ("jan", JANUARY), ("feb", FEBRUARY), ("mar", MARCH_FIRST))}  # fmt: skip
    retried = Loader(_settings(tmp_path / "retried"), incremental=True)
    once = Loader(_settings(tmp_path / "once"), incremental=True)
    try:
        retried.load(paths["jan"])
        left, _ = retried.stage(paths["feb"])
        retried.load(paths["mar"])
        retried.load(paths["feb"])
        for name in ("jan", "mar", "feb"):
            once.load(paths[name])
        assert_same_gold(retried, once)
        with retried.warehouse.connection() as connection:
            lines = connection.execute(
                "SELECT count(*) FROM silver.lines WHERE file_key = ?", [ledger.key_of_file(connection, left.file_id)]
            ).fetchone()
            files = connection.execute(
                "SELECT count(*), count(*) FILTER (WHERE bronze_rows = silver_rows + rejected_rows + duplicate_rows"
                " + overlap_rows) FROM ops.files"
            ).fetchone()
    finally:
        retried.close()
        once.close()
    assert lines == (len(FEBRUARY),)  # its line of a January invoice is one January's file lacked
    assert files == (3, 3)


def test_a_failed_file_takes_its_rows_out_of_gold(tmp_path: Path) -> None:
    incremental = Loader(_settings(tmp_path / "w"), incremental=True)
    try:
        incremental.load(write_csv(tmp_path / "jan.csv", *JANUARY))
        before = {name: incremental.gold_rows(name) for name in gold.GOLD_TABLES}
        incremental.load(write_csv(tmp_path / "feb.csv", *FEBRUARY))
        with incremental.warehouse.connection() as connection:
            february = connection.execute("SELECT file_id FROM ops.files WHERE file_name = 'feb.csv'").fetchone()
            assert february is not None
            ledger.delete_file_silver(connection, february[0])
            connection.execute("UPDATE ops.files SET status = 'failed' WHERE file_id = ?", [february[0]])
            gold.update_gold(connection, added_file_keys=[], removed_file_keys=[], **GOLD_OPTIONS)
            for name in gold.GOLD_TABLES:
                assert differences(connection, name, before[name]) == (0, 0), name
    finally:
        incremental.close()


def test_a_warehouse_migrated_to_top_product_counts_moves_them_as_one_built_with_them(tmp_path: Path) -> None:
    # A warehouse of the previous schema held the top products' lines without their counts; migration 8 counts them
    # from those lines, and the next months move them as in a warehouse that always had them.
    paths = [
        write_csv(tmp_path / "drop" / name, *lines)
        for name, lines in (("jan.csv", JANUARY), ("feb.csv", FEBRUARY), ("mar.csv", MARCH_FIRST), ("apr.csv", APRIL))
    ]
    migrated = Loader(_settings(tmp_path / "migrated"), incremental=True)
    always = Loader(_settings(tmp_path / "always"), incremental=True)
    try:
        for path in paths[:2]:
            migrated.load(path)
            always.load(path)
        with migrated.warehouse.connection() as connection:
            connection.execute("DROP TABLE gold_state.top_product_counts")
            connection.execute("DELETE FROM ops.schema_version WHERE version = 8")
        migrated.close()
        with migrated.warehouse.connection() as connection:
            assert connection.execute("SELECT max(version) FROM ops.schema_version").fetchone() == (8,)
            assert _state_rows(connection, "top_product_counts")
            with always.warehouse.connection() as other:
                assert _state_rows(connection, "top_product_counts") == _state_rows(other, "top_product_counts")
        for path in paths[2:]:
            migrated.load(path)
            always.load(path)
        assert_same_gold(migrated, always)
        with migrated.warehouse.connection() as connection:
            assert_top_product_counts_match_silver(connection)
    finally:
        migrated.close()
        always.close()
