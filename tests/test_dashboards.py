"""The artifacts' Markdown: parsed as a Markdown reader parses it, its images decoded to a real SVG or PNG, charts
drawn from no point, one point and many."""

from __future__ import annotations

import base64
import io
import xml.etree.ElementTree as ElementTree
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from conftest import write_csv
from markdown_it import MarkdownIt
from markdown_it.token import Token
from PIL import Image
from test_catalog import FIRST, load

from medallion import dashboards, gold
from medallion.settings import Settings
from medallion.warehouse import Warehouse, catalog, history
from medallion.warehouse.catalog import FileFailure, LineageEdge, TableState, WarehouseState
from medallion.warehouse.history import QualityPoint, RevenueMonth

SVG = "{http://www.w3.org/2000/svg}"
MOMENT = datetime(2026, 3, 1, 12, 0)
IMAGE_LIMIT = 100_000


def parsed(markdown: str) -> list[Token]:
    """The block and inline tokens of the Markdown as GitHub-flavoured tables read it; every link is let through, as
    Prefect's renderer lets data: images through."""
    reader = MarkdownIt("commonmark").enable("table")
    reader.validateLink = lambda url: True  # type: ignore[method-assign]  # markdown-it documents replacing it
    tokens = reader.parse(markdown)
    return [*tokens, *(child for token in tokens for child in token.children or [])]


def images(markdown: str) -> list[tuple[str, bytes]]:
    """Each image's media type and decoded bytes."""
    found = []
    for token in parsed(markdown):
        if token.type == "image":
            header, _, payload = str(token.attrs["src"]).partition(",")
            assert header.startswith("data:") and header.endswith(";base64"), header
            found.append(
                (header.removeprefix("data:").removesuffix(";base64"), base64.b64decode(payload, validate=True))
            )
    return found


def table_rows(markdown: str) -> list[list[str]]:
    """The text of each body row's cells, across every table."""
    rows: list[list[str]] = []
    tokens = parsed(markdown)
    for index, token in enumerate(tokens):
        if token.type == "tr_open" and tokens[index - 1].type != "thead_open":
            rows.append([])
        if token.type == "inline" and rows and tokens[index - 1].type == "td_open":
            rows[-1].append(token.content)
    return rows


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) < IMAGE_LIMIT
    with Image.open(io.BytesIO(data)) as image:
        image.verify()
        return image.size


@pytest.fixture
def state(tmp_path: Path, settings: Settings, warehouse: Warehouse) -> WarehouseState:
    """The state of a warehouse with one small file loaded by run `0f1e2d3c-run-a`."""
    load(warehouse, settings, write_csv(tmp_path / "raw" / "first.csv", *FIRST), "0f1e2d3c-run-a")
    with warehouse.connection() as connection:
        return catalog.warehouse_state(connection)


def test_the_warehouse_markdown_lists_each_table_and_draws_the_lineage(state: WarehouseState) -> None:
    markdown = dashboards.warehouse_markdown(state, ui_url="http://127.0.0.1:4300/")
    rows = table_rows(markdown)
    lines = next(row for row in rows if row[0] == "`silver.lines`")
    assert lines[1:3] == ["table", "4"]
    assert lines[4] == "[0f1e2d3c](http://127.0.0.1:4300/flow-runs/flow-run/0f1e2d3c-run-a)"
    assert ["loaded", "1"] in rows
    assert ["`silver.transactions_enriched`", "`silver.transactions`, `enrichment.rates`, `enrichment.countries`, "
            "`enrichment.products`"] in rows  # fmt: skip

    [(media_type, svg)] = images(markdown)
    assert media_type == "image/svg+xml" and len(svg) < IMAGE_LIMIT
    root = ElementTree.fromstring(svg)
    assert root.tag == f"{SVG}svg" and "viewBox" in root.attrib
    drawn = {title.text for group in root.iter(f"{SVG}g") for title in group.iter(f"{SVG}title")}
    assert drawn == {name for edge in catalog.LINEAGE for name in edge}
    assert len(root.findall(f".//{SVG}path[@marker-end]")) == len(catalog.LINEAGE)
    details = {text.text for text in root.iter(f"{SVG}text")}
    assert {"1 file, 4 rows", "4 rows (view)", "1 row"} <= details


def test_a_warehouse_without_files_or_gold_still_draws_its_lineage(settings: Settings, warehouse: Warehouse) -> None:
    with warehouse.connection() as connection:
        markdown = dashboards.warehouse_markdown(catalog.warehouse_state(connection))
    assert "No file has been loaded yet." in markdown
    [(_, svg)] = images(markdown)
    not_built = {
        group.findtext(f"{SVG}title")
        for group in ElementTree.fromstring(svg).iter(f"{SVG}g")
        if "not built yet" in [text.text for text in group.iter(f"{SVG}text")]
    }
    assert not_built == {
        *(f"gold.{name}" for name in gold.GOLD_TABLES),
        "enrichment.rates", "enrichment.countries", "enrichment.products", "silver.transactions_enriched",
    }, "made by the first run's enrichment and gold"  # fmt: skip


def test_a_failures_error_stays_in_its_cell_as_written() -> None:
    state = WarehouseState(
        measured_at=MOMENT,
        tables=[TableState(name="silver.lines", kind="table", rows=3)],
        files_by_status={"failed": 1},
        recent_failures=[
            FileFailure(
                file_name="a|b`c.csv", failed_at=MOMENT, error="BadInputError: x | y\n<b>*z*</b>", retryable=False
            )
        ],
        lineage=[LineageEdge(source=catalog.SOURCE_FILES, target="silver.lines")],
    )
    rows = table_rows(dashboards.warehouse_markdown(state))
    failure = next(row for row in rows if row[0] == "`a|b'c.csv`")
    assert failure[1:3] == ["2026-03-01 12:00:00 UTC", "no"]
    assert MarkdownIt().renderInline(failure[3]) == "BadInputError: x | y &lt;b&gt;*z*&lt;/b&gt;", "no tag, no emphasis"
    assert ["`silver.lines`", "table", "3", "not recorded", ""] in rows


def points(count: int, *, below_at: int | None = None) -> list[QualityPoint]:
    """`count` files scored a day apart, each followed by the dataset's score; the file at `below_at` scores low."""
    series = []
    for day in range(count):
        at = MOMENT + timedelta(days=day)
        score = 70.0 if day == below_at else 97.0
        series.append(QualityPoint(scope="file", file_name=f"f{day}.csv", measured_at=at, score=score, threshold=85))
        series.append(QualityPoint(scope="dataset", file_name=None, measured_at=at, score=96.0, threshold=85))
    return series


@pytest.mark.parametrize(
    ("series", "summary"),
    [
        ([], "No quality measurement yet."),  # an empty history still draws its axes
        (points(1), "Dataset score 96.0 against a threshold of 85; 1 file scored, 0 below the threshold."),
        (
            points(30, below_at=4),
            "Dataset score 96.0 against a threshold of 85; 30 files scored, 1 below the threshold.",
        ),
    ],
)
def test_the_quality_chart_is_a_png_with_its_summary(series: list[QualityPoint], summary: str) -> None:
    markdown = dashboards.quality_chart_markdown(series)
    assert summary in markdown
    [(media_type, png)] = images(markdown)
    assert media_type == "image/png"
    assert png_size(png) == (900, 360)


def test_the_threshold_given_wins_over_the_recorded_one() -> None:
    markdown = dashboards.quality_chart_markdown(points(2), threshold=98)
    assert "against a threshold of 98; 2 files scored, 2 below the threshold." in markdown


def months(count: int) -> list[RevenueMonth]:
    return [
        RevenueMonth(
            month_start=date(2010 + (11 + index) // 12, (11 + index) % 12 + 1, 1),
            net_revenue=net,
            gross_revenue=max(net, 0),
            returns=max(-net, 0),
        )  # fmt: skip
        for index, net in enumerate([-120.5, 1000.0, 2500.25][:count] + [1500.0] * max(0, count - 3))
    ]


@pytest.mark.parametrize(
    ("series", "summary"),
    [
        ([], "No sales in gold yet."),
        (months(1), "1 month from December 2010 to December 2010; net revenue -120.50 GBP in all."),
        (months(24), "24 months from December 2010 to November 2012; net revenue 34,879.75 GBP in all."),
    ],
)
def test_the_revenue_chart_is_a_png_with_its_summary(series: list[RevenueMonth], summary: str) -> None:
    markdown = dashboards.revenue_chart_markdown(series, currency="GBP")
    assert summary in markdown
    [(media_type, png)] = images(markdown)
    assert media_type == "image/png"
    assert png_size(png) == (900, 360)


def test_the_charts_draw_a_loaded_warehouses_series(state: WarehouseState, warehouse: Warehouse) -> None:
    with warehouse.connection() as connection:
        quality = dashboards.quality_chart_markdown(history.quality_points(connection))
        revenue = dashboards.revenue_chart_markdown(history.revenue_months(connection))
    assert "1 file scored, 0 below the threshold" in quality
    assert "2 months from December 2010 to January 2011" in revenue
    for markdown in (quality, revenue):
        [(_, png)] = images(markdown)
        png_size(png)
