"""One coarse task per layer; each wraps a function of `medallion.steps` and logs what happened."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.runtime import flow_run

from medallion import steps
from medallion.errors import MedallionError
from medallion.quality import QualityCounts
from medallion.settings import Settings


def _retry_unless_bad_input(task: Any, task_run: Any, state: Any) -> bool:
    """Retry transient failures only; a bad file fails the same way every time."""
    try:
        state.result()
    except MedallionError as error:
        return error.retryable
    except Exception:
        return True
    return False


@task(name="bronze", retries=2, retry_delay_seconds=2, retry_condition_fn=_retry_unless_bad_input)
def bronze_layer(path: str, settings: Settings) -> steps.BronzeReport:
    report = steps.load_bronze(Path(path), settings, flow_run_id=flow_run.get_id())
    logger = get_run_logger()
    if report.skipped:
        logger.info("%s (%s) was already loaded: nothing to do", report.file_name, report.file_id[:12])
    else:
        logger.info(
            "bronze: %s rows of %s (%s layout, %s)",
            f"{report.bronze_rows:,}",
            report.file_name,
            report.layout,
            report.encoding,
        )
    return report


@task(name="silver", retries=2, retry_delay_seconds=2, retry_condition_fn=_retry_unless_bad_input)
def silver_layer(bronze: steps.BronzeReport, settings: Settings) -> steps.SilverReport:
    report = steps.load_silver(bronze.file_id, settings)
    get_run_logger().info(
        "silver: %s rows, %s rejected %s, %s duplicates removed; dates %s (order: %s)",
        f"{report.silver_rows:,}",
        f"{report.rejected_rows:,}",
        report.rejected_by_reason or "",
        f"{report.duplicate_rows:,}",
        " | ".join(report.date_formats) or "none parsed",
        report.date_order_source,
    )
    return report


@task(name="quality", retries=2, retry_delay_seconds=2, retry_condition_fn=_retry_unless_bad_input)
def quality_layer(file_id: str, counts: QualityCounts, settings: Settings) -> steps.QualityReport:
    report = steps.score_quality(file_id, counts, settings)
    logger = get_run_logger()
    scores = report.file
    message = (
        f"quality {scores.score:.1f} (completeness {scores.completeness:.1f}, validity {scores.validity:.1f}, "
        f"uniqueness {scores.uniqueness:.1f}, consistency {scores.consistency:.1f}); "
        f"dataset {report.dataset.score:.1f}; threshold {report.threshold:.0f}"
    )
    if report.below_threshold:
        logger.warning("quality below threshold: %s", message)
    else:
        logger.info(message)
    return report


@task(name="gold", retries=2, retry_delay_seconds=2, retry_condition_fn=_retry_unless_bad_input)
def gold_layer(settings: Settings, file_id: str | None = None) -> dict[str, Any]:
    kpis = steps.load_gold(settings, file_id=file_id)
    get_run_logger().info(
        "gold: net revenue %s over %s orders and %s customers",
        kpis.get("net_revenue"),
        kpis.get("orders"),
        kpis.get("customers"),
    )
    return kpis


@task(name="record-failure")
def failure_record(path: str, error: BaseException, settings: Settings) -> None:
    steps.record_file_failure(Path(path), error, settings, flow_run_id=flow_run.get_id())
