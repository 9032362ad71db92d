from __future__ import annotations

import importlib.util
import threading
from datetime import date, datetime
from pathlib import Path
from types import SimpleNamespace

import duckdb
import httpx
import pytest
import respx

from enrichment.build import build_enrichment
from enrichment.dimensions import PRODUCTS, enrichment_fingerprint, unmapped_countries
from enrichment.lookup import Found, Origin
from enrichment.products import categorise
from enrichment.rates import EcbRates

from .conftest import SECRET, FakeClock, api_fixture, fast_settings, load_silver

ROWS = [
    ("85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 15.3, "United Kingdom", date(2010, 12, 1)),
    ("85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 10.2, "United Kingdom", date(2010, 12, 4)),
    ("22423", "REGENCY CAKESTAND 3 TIER", 12.75, "EIRE", date(2011, 3, 2)),
    ("22423", "REGENCY CAKESTAND 3 TIER", 12.75, "Ireland", date(2011, 3, 2)),
    ("21232", "STRAWBERRY CERAMIC TRINKET BOX", 2.5, "RSA", date(2011, 6, 9)),
    ("POST", "POSTAGE", 18.0, "Channel Islands", date(2011, 6, 9)),
    ("22139", None, 0.0, "Unspecified", date(2011, 6, 9)),
]


def test_offline_build_converts_at_the_ecb_rate_of_each_date(warehouse: duckdb.DuckDBPyConnection) -> None:
    load_silver(warehouse, ROWS)
    stats = build_enrichment(warehouse, fast_settings(), live=False)
    assert stats.distinct_keys == {"rates": 4, "countries": 5, "products": 5}
    assert (stats.rates.offline, stats.countries.offline, stats.products.offline) == (4, 5, 5)
    assert stats.rates.live == stats.rates.failed == 0
    ecb = EcbRates()
    rows = warehouse.execute(
        "SELECT invoice_date, line_amount, amount_usd, amount_jpy, rate_date, rate_source, country_raw, "
        "country_iso2, product_category, product_source FROM silver.transactions_enriched ORDER BY row_number"
    ).fetchall()
    assert len(rows) == len(ROWS)
    for invoice_date, amount, usd, jpy, rate_date, rate_source, _, _, _, _ in rows:
        expected = ecb.rates_for("GBP", invoice_date)
        assert usd == pytest.approx(amount * expected.usd)
        assert jpy == pytest.approx(amount * expected.jpy)
        assert rate_date == expected.rate_date and rate_source == "ecb_offline"
    assert rows[1][4] == date(2010, 12, 3)
    assert [row[7] for row in rows] == ["GB", "GB", "IE", "IE", "ZA", None, None]
    assert rows[0][8] == "home_garden" and rows[5][8] == "non_product"
    assert [item.country for item in unmapped_countries(warehouse)] == ["Channel Islands", "Unspecified"]
    assert all(item.reason for item in unmapped_countries(warehouse))


def test_second_run_looks_up_nothing_and_changes_nothing(warehouse: duckdb.DuckDBPyConnection) -> None:
    load_silver(warehouse, ROWS)
    build_enrichment(warehouse, fast_settings(), live=False)
    before = enrichment_fingerprint(warehouse)
    counts = warehouse.execute(
        "SELECT (SELECT count(*) FROM enrichment.rates), (SELECT count(*) FROM enrichment.countries), "
        "(SELECT count(*) FROM enrichment.products)"
    ).fetchone()
    stats = build_enrichment(warehouse, fast_settings(), live=True)
    assert stats.looked_up == {"rates": 0, "countries": 0, "products": 0}
    assert stats.total_lookups == 0 and stats.live_requests == 0
    assert enrichment_fingerprint(warehouse) == before
    assert counts == (4, 5, 5)


@respx.mock
def test_live_failures_degrade_to_the_offline_twin_and_keep_no_secret(
    warehouse: duckdb.DuckDBPyConnection, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    load_silver(warehouse, [*ROWS, ("23343", "NINJA RABBIT PINK", 5.0, "Germany", date(2026, 11, 20))])
    rates = respx.get(f"https://v6.exchangerate-api.com/v6/{SECRET}/latest/GBP").respond(500)
    countries = respx.get("https://api.restcountries.com/countries/v5").respond(
        200, json=api_fixture("restcountries_v5_countries.DERIVED.json")
    )
    words = respx.get("https://api.datamuse.com/words").respond(200, json=[{"word": "toy", "score": 10}])
    settings = fast_settings(currency_api_key=SECRET, countries_api_key=SECRET)
    stats = build_enrichment(warehouse, settings, live=True, clock=clock)
    assert rates.call_count == 3
    assert (stats.rates.failed, stats.rates.offline, stats.rates.live) == (1, 5, 0)
    assert stats.countries.live == 4 and countries.call_count == 4
    assert stats.products.live == 1 and words.call_count == 1
    source_of = dict(
        warehouse.execute(
            "SELECT invoice_date, rate_source FROM silver.transactions_enriched WHERE invoice_date = DATE '2026-11-20'"
        ).fetchall()
    )
    assert source_of == {date(2026, 11, 20): "ecb_offline"}
    assert warehouse.execute(
        "SELECT count(*) FROM silver.transactions_enriched WHERE amount_usd IS NULL OR product_category IS NULL"
    ).fetchone() == (0,)
    dumped = warehouse.execute(
        "SELECT string_agg(source || cache_key || payload, '|') FROM enrichment.api_cache"
    ).fetchone()
    assert dumped[0] and SECRET not in dumped[0]
    assert SECRET not in caplog.text
    assert SECRET not in stats.model_dump_json()

    again = build_enrichment(warehouse, settings, live=True, clock=clock)
    assert again.countries.live == again.countries.cached == 0
    assert again.looked_up["countries"] == 0


def _flaky_server_module():  # type: ignore[no-untyped-def]
    path = Path(__file__).resolve().parents[2] / "scripts" / "flaky_api_server.py"
    spec = importlib.util.spec_from_file_location("flaky_api_server", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_run_against_a_server_failing_half_its_requests_loses_nothing(
    warehouse: duckdb.DuckDBPyConnection, clock: FakeClock
) -> None:
    server, state = _flaky_server_module().make_server(0, fail_every=2)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        today = clock.now().date()
        load_silver(
            warehouse,
            [
                ("23343", "NINJA RABBIT PINK", 5.0, "EIRE", today),
                ("23344", "CANDY SPOT EGG WARMER", 3.0, "United Kingdom", today),
                ("23345", "ACRYLIC JEWEL ICICLE, BLUE", 3.0, "RSA", date(2011, 6, 9)),
                ("85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 2.95, "Channel Islands", date(2011, 6, 9)),
            ],
        )
        settings = fast_settings(
            max_attempts=4,
            breaker_failure_threshold=10,
            currency_api_key=SECRET,
            countries_api_key=SECRET,
            currency_history_enabled=True,
            exchangerate_api_base_url=base,
            restcountries_base_url=base,
            datamuse_base_url=base,
            http_timeout_s=5.0,
        )
        stats = build_enrichment(warehouse, settings, live=True, clock=clock, transport=httpx.AsyncHTTPTransport())
    finally:
        server.shutdown()
        server.server_close()
    assert state.failures >= 3
    assert stats.rates.failed == stats.countries.failed == stats.products.failed == 0
    assert stats.rates.retries + stats.countries.retries + stats.products.retries == state.failures
    assert stats.rates.live == 2 and stats.countries.live == 3 and stats.products.live == 3
    assert 1.0 in clock.sleeps
    missing = warehouse.execute(
        "SELECT count(*) FROM silver.transactions_enriched "
        "WHERE amount_usd IS NULL OR product_category IS NULL "
        "OR (country_iso2 IS NULL AND country <> 'Channel Islands')"
    ).fetchone()
    assert missing == (0,)
    assert set(warehouse.execute("SELECT DISTINCT rate_source FROM silver.transactions_enriched").fetchall()) == {
        ("exchangerate_api",)
    }


def test_a_file_run_looks_up_the_keys_of_its_own_rows_only(warehouse: duckdb.DuckDBPyConnection) -> None:
    load_silver(warehouse, ROWS)
    nothing = {"rates": 0, "countries": 0, "products": 0}
    other = build_enrichment(warehouse, fast_settings(), live=False, file_ids=["a file with no silver rows"])
    assert (other.distinct_keys, other.looked_up) == (nothing, nothing)
    assert warehouse.execute("SELECT count(*) FROM enrichment.rates").fetchone() == (0,)

    own = build_enrichment(warehouse, fast_settings(), live=False, file_ids=["file-1"])
    assert own.distinct_keys == own.looked_up == {"rates": 4, "countries": 5, "products": 5}
    assert own.unmapped_countries == ["Channel Islands", "Unspecified"]
    assert build_enrichment(warehouse, fast_settings(), live=False).looked_up == nothing


def test_the_products_table_keeps_every_tag_list_as_the_records_have_it(warehouse: duckdb.DuckDBPyConnection) -> None:
    load_silver(warehouse, ROWS)
    build_enrichment(warehouse, fast_settings(), live=False)
    stored = {
        (code, description): tags
        for code, description, tags in warehouse.execute(
            "SELECT stock_code, description, tags FROM enrichment.products"
        ).fetchall()
    }
    expected = {(code, description): categorise(code, description).tags for code, description, *_ in ROWS}
    assert stored == expected
    assert [] in stored.values() and any(len(tags) > 1 for tags in stored.values())


def test_a_frame_of_text_lists_keeps_empty_missing_and_separator_holding_lists() -> None:
    now = datetime(2026, 12, 5)
    lists: list[list[str] | None] = [[], ["colour"], ["colour", "hanging"], [""], ["a\x1fb", "c"], None]
    found = [
        Found(SimpleNamespace(stock_code=str(number), description=None, tags=tags), Origin.OFFLINE)
        for number, tags in enumerate(lists)
    ]
    assert PRODUCTS.frame(found, now)["tags"].to_list() == lists
    assert PRODUCTS.frame(found[:4] + found[5:], now)["tags"].to_list() == lists[:4] + lists[5:]
