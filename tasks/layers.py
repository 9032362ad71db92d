"""One coarse task per layer; each wraps a function of `medallion.steps` and logs what happened in words.

The logged steps are plain functions too, so a file of a batch runs them inside its one task."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ParamSpec, TypeVar, cast

from prefect import Task, get_run_logger, task
from prefect.client.schemas.objects import State, TaskRun
from prefect.runtime import flow_run
from prefect.states import Failed

from medallion import steps
from medallion.errors import is_refusal, is_retryable
from medallion.names import printable
from medallion.quality import QualityCounts
from medallion.runs import GoldKpis
from medallion.settings import PipelineSettings
from medallion.steps.run_step import open_warehouse, withdraw_failed_file
from medallion.warehouse import Warehouse

P = ParamSpec("P")
R = TypeVar("R")


def retry_unless_bad_input(task: Task[..., object], task_run: TaskRun, state: State[object]) -> bool:
    """Retry transient failures only; a bad file or a bad setting fails the same way every time."""
    try:
        state.result()
    except Exception as error:
        return is_retryable(error)
    return False


def refusals_fail_quietly(step: Callable[P, R]) -> Callable[P, R]:
    """A task body whose refusals (a bad file, a bad setting) end the task Failed with their one-line reason and no
    traceback, which for a refusal says nothing the reason does not.

    Prefect makes a state the body returns the task's final state and raises its error in the caller, so the flow
    still gets R or the error itself.
    """

    @functools.wraps(step)
    def body(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return step(*args, **kwargs)
        except Exception as error:
            if not is_refusal(error):
                raise
            return cast(R, Failed(message=str(error), data=error))

    return body


def bronze_report(
    warehouse: Warehouse, path: str, pipeline: PipelineSettings, *, refresh_view: bool = True
) -> steps.BronzeReport:
    open_warehouse(warehouse, pipeline)
    report = steps.load_bronze(
        warehouse, Path(path), pipeline, flow_run_id=flow_run.get_id(), refresh_view=refresh_view
    )
    logger = get_run_logger()
    name = printable(report.file_name)
    if report.skipped:
        logger.info("%s (%s) was already loaded: nothing to do", name, report.file_id[:12])
    else:
        logger.info(
            "bronze: %s rows of %s (%s layout, %s)", f"{report.bronze_rows:,}", name, report.layout, report.encoding
        )
    return report


def silver_report(warehouse: Warehouse, file_id: str, pipeline: PipelineSettings) -> steps.SilverReport:
    report = steps.load_silver(warehouse, file_id, pipeline)
    rejected = ", ".join(f"{reason} {count:,}" for reason, count in report.rejected_by_reason.items())
    get_run_logger().info(
        "silver: %s rows, %s rejected%s, %s duplicates removed, %s overlaps with other files; dates %s (order: %s)",
        f"{report.silver_rows:,}",
        f"{report.rejected_rows:,}",
        f" ({rejected})" if rejected else "",
        f"{report.duplicate_rows:,}",
        f"{report.overlap_rows:,}",
        " | ".join(report.date_formats) or "none parsed",
        report.date_order_source,
    )
    return report


def quality_report(
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


def gold_kpis(warehouse: Warehouse, pipeline: PipelineSettings, file_ids: Sequence[str]) -> GoldKpis:
    kpis = steps.load_gold_of_files(warehouse, pipeline, file_ids)
    moved_by = f" (moved by {len(file_ids)} files)" if len(file_ids) > 1 else ""
    get_run_logger().info(
        "gold%s: net revenue %s over %s orders and %s customers",
        moved_by,
        kpis.net_revenue,
        kpis.orders,
        kpis.customers,
    )
    return kpis


def layer_task(name: str, step: Callable[P, R]) -> Task[P, R]:
    """A layer's step as its task: transient failures retried, refusals failing quietly."""
    return task(name=name, retries=2, retry_delay_seconds=2, retry_condition_fn=retry_unless_bad_input)(
        refusals_fail_quietly(step)
    )


bronze_layer = layer_task("bronze", bronze_report)
silver_layer = layer_task("silver", silver_report)
quality_layer = layer_task("quality", quality_report)
gold_layer = layer_task("gold", gold_kpis)


def failed_file_taken_out(
    warehouse: Warehouse, file_id: str, error: BaseException, pipeline: PipelineSettings, gold_moved: bool
) -> None:
    """The failed file entered failed in the ledger and taken back out of every layer its run reached; a failure
    here is logged, so the run's own error stays the one reported (even when a full disk fails both)."""
    try:
        withdraw_failed_file(warehouse, file_id, error, pipeline, gold_moved=gold_moved)
    except Exception:
        get_run_logger().exception("taking the failed file %s back out of the warehouse failed", file_id[:12])


@task(name="withdraw-failed-file")
def failed_file_withdrawn(
    warehouse: Warehouse, file_id: str, error: BaseException, pipeline: PipelineSettings, gold_moved: bool
) -> None:
    """The failed file entered failed in the ledger and taken back out of every layer its run reached."""
    withdraw_failed_file(warehouse, file_id, error, pipeline, gold_moved=gold_moved)
