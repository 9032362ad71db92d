"""A file run's artifacts, written from its RunSummary."""

from __future__ import annotations

from deployments import reporting
from enrichment.lookup import LookupCounts
from medallion.quality import QualityScores
from medallion.runs import GoldKpis, RunStatus, RunSummary

SCORES = QualityScores(completeness=90.0, validity=70.0, uniqueness=100.0, consistency=80.0, score=84.5)


def _summary(**fields: object) -> RunSummary:
    values: dict[str, object] = {
        "file_id": "0123456789abcdef0123",
        "file_name": "sales.tsv",
        "status": RunStatus.LOADED,
        "warehouse": "warehouse.duckdb",
        "bronze_rows": 1250,
        "silver_rows": 1200,
        "rejected_rows": 50,
        "rejected_by_reason": {"missing_price": 30, "bad_date": 20},
        "quality": SCORES,
        "dataset_quality": SCORES.model_copy(update={"score": 91.0}),
        "quality_threshold": 85.0,
        "gold": GoldKpis(orders=12, net_revenue=99.5),
        "enrichment": {"rates": LookupCounts(live=3, cached=2, requests=4, retries=1), "products": LookupCounts()},
    }
    return RunSummary.model_validate({**values, **fields})


def test_the_summary_shows_each_layer_the_rejections_and_a_score_below_the_threshold() -> None:
    markdown = reporting.file_summary_markdown(_summary(), "medallion/file-drop", {"load": 1.234}, "processed/x")
    assert markdown.startswith("## sales.tsv: loaded\n")
    assert "file id `0123456789abcdef`" in markdown
    assert "| bronze | 1,250 |" in markdown and "| rejected | 50 |" in markdown
    assert "Rejected by reason: bad_date 20, missing_price 30" in markdown
    assert "Quality 84.5 (below threshold); whole dataset 91.0." in markdown
    assert "Timings: load 1.23 s" in markdown
    assert "Enrichment look-ups: rates 3 live, 2 cached (4 requests, 1 retries); products none." in markdown


def test_a_skipped_file_has_no_quality_line_and_no_quality_rows() -> None:
    skipped = _summary(status=RunStatus.SKIPPED, quality=None, dataset_quality=None, gold=None)
    assert "Quality" not in reporting.file_summary_markdown(skipped, None, {}, None)
    assert reporting.quality_rows(skipped) == []


def test_quality_and_kpi_rows_come_from_the_models() -> None:
    rows = reporting.quality_rows(_summary())
    assert rows[-1] == {"dimension": "score", "percent": 84.5}
    assert [row["dimension"] for row in rows] == list(reporting.QUALITY_DIMENSIONS)
    kpis = {row["kpi"]: row["value"] for row in reporting.kpi_rows(GoldKpis(orders=12, net_revenue=99.5))}
    assert (kpis["orders"], kpis["net_revenue"], kpis["customers"]) == ("12", "99.5", "")
