"""One coarse task per layer; each wraps a function of `medallion.steps` and logs what happened in words."""

from __future__ import annotations

from pathlib import Path

from prefect import Task, get_run_logger, task
from prefect.client.schemas.objects import State, TaskRun
from prefect.runtime import flow_run

from medallion import steps
from medallion.errors import is_retryable
from medallion.quality import QualityCounts
from medallion.runs import GoldKpis
from medallion.settings import PipelineSettings
from medallion.warehouse import Warehouse


def retry_unless_bad_input(task: Task[..., object], task_run: TaskRun, state: State[object]) -> bool:
    """Retry transient failures only; a bad file fails the same way every time."""
    try:
        state.result()
    except Exception as error:
        return is_retryable(error)
    return False


@task(name="bronze", retries=2, retry_delay_seconds=2, retry_condition_fn=retry_unless_bad_input)
def bronze_layer(warehouse: Warehouse, path: str, pipeline: PipelineSettings) -> steps.BronzeReport:
    report = steps.load_bronze(warehouse, Path(path), pipeline, flow_run_id=flow_run.get_id())
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


@task(name="silver", retries=2, retry_delay_seconds=2, retry_condition_fn=retry_unless_bad_input)
def silver_layer(warehouse: Warehouse, file_id: str, pipeline: PipelineSettings) -> steps.SilverReport:
    report = steps.load_silver(warehouse, file_id, pipeline)
    rejected = ", ".join(f"{reason} {count:,}" for reason, count in report.rejected_by_reason.items())
    get_run_logger().info(
        "silver: %s rows, %s rejected%s, %s duplicates removed; dates %s (order: %s)",
        f"{report.silver_rows:,}",
        f"{report.rejected_rows:,}",
        f" ({rejected})" if rejected else "",
        f"{report.duplicate_rows:,}",
        " | ".join(report.date_formats) or "none parsed",
        report.date_order_source,
    )
    return report


@task(name="quality", retries=2, retry_delay_seconds=2, retry_condition_fn=retry_unless_bad_input)
def quality_layer(
    warehouse: Warehouse, file_id: str, counts: QualityCounts, pipeline: PipelineSettings
) -> steps.QualityReport:
    report = steps.score_quality(warehouse, file_id, counts, pipeline)
    scores = report.file
    message = (
        f"quality {scores.score:.1f} (completeness {scores.completeness:.1f}, validity {scores.validity:.1f}, "
        f"uniqueness {scores.uniqueness:.1f}, consistency {scores.consistency:.1f}); "
        f"dataset {report.dataset.score:.1f}; threshold {report.threshold:.0f}"
    )
    logger = get_run_logger()
    if report.below_threshold:
        logger.warning("quality below threshold: %s", message)
    else:
        logger.info(message)
    return report


@task(name="gold", retries=2, retry_delay_seconds=2, retry_condition_fn=retry_unless_bad_input)
def gold_layer(warehouse: Warehouse, pipeline: PipelineSettings, file_id: str | None = None) -> GoldKpis:
    kpis = steps.load_gold(warehouse, pipeline, file_id=file_id)
    get_run_logger().info(
        "gold: net revenue %s over %s orders and %s customers", kpis.net_revenue, kpis.orders, kpis.customers
    )
    return kpis


@task(name="record-failure")
def failure_record(warehouse: Warehouse, path: str, error: BaseException) -> None:
    steps.record_file_failure(warehouse, Path(path), error, flow_run_id=flow_run.get_id())
