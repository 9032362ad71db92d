"""Thin tasks for the service: moving a file after its run, its artifacts, the quality event, and the steps the
scheduled flows run on a warehouse they hold."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.events import emit_event
from prefect.runtime import deployment, flow_run

from deployments import lifecycle, reporting
from deployments.names import QUALITY_EVENT
from medallion import steps
from medallion.quality import QualityScores
from medallion.runs import GoldKpis, RunSummary
from medallion.settings import PipelineSettings, Settings
from medallion.warehouse import Warehouse


@task(name="move-to-processed")
def processed_file(path: str, pipeline: PipelineSettings, loaded: lifecycle.Signature | None) -> str | None:
    destination = lifecycle.move_to_processed(Path(path), pipeline, expected=loaded)
    if destination is None:
        get_run_logger().info("%s left where it is (outside the watched folders, or changed since)", path)
        return None
    get_run_logger().info("moved %s to %s", Path(path).name, destination)
    return str(destination)


@task(name="move-to-errors")
def errored_file(
    path: str,
    error: BaseException,
    attempts: int,
    settings: Settings,
    loaded: lifecycle.Signature | None,
    summary_artifact: bool = True,
) -> str | None:
    """The file moved to errors with its sidecar, and (unless a batch's summary tells it) its failure artifact."""
    source = Path(path)
    record = lifecycle.error_record(
        source,
        error,
        attempts=attempts,
        flow_run_id=flow_run.get_id(),
        deployment=_deployment_name(),
        service=settings.service,
        sha256=lifecycle.content_sha256(source) if source.is_file() else None,
    )
    destination = lifecycle.move_to_errors(source, settings.pipeline, record, expected=loaded)
    logger = get_run_logger()
    if destination is None:
        logger.info("%s left where it is (outside the watched folders, or changed since)", path)
    else:
        retry = f"retry due {record.next_attempt_at:%H:%M:%S} UTC" if record.next_attempt_at else "no retry"
        logger.warning("moved %s to %s (%s): %s", source.name, destination, retry, record.reason)
    if not summary_artifact:
        return str(destination) if destination else None
    _ = create_markdown_artifact(
        key=reporting.artifact_key("medallion-file-summary"),
        markdown=reporting.failure_markdown(
            source.name, record.reason, record.retryable, attempts, str(destination) if destination else None
        ),
        description=f"Failed: {source.name}",
    )
    return str(destination) if destination else None


@task(name="publish-artifacts")
def file_artifacts(summary: RunSummary, destination: str | None, timings: dict[str, float]) -> None:
    file_summary_artifact(summary, destination, timings)
    quality_rows = reporting.quality_rows(summary)
    if quality_rows:
        _ = create_table_artifact(
            key=reporting.artifact_key("medallion-file-quality"),
            table=quality_rows,
            description=f"Quality dimensions of {summary.file_name}",
        )
    if summary.gold is not None:
        gold_kpis_artifact(summary.gold, summary.file_name)


def batch_summary_artifact(batch: reporting.BatchRun) -> None:
    """A batch run's summary: a row per file."""
    names = [item.file_name for item in batch.files]
    _ = create_markdown_artifact(
        key=reporting.artifact_key("medallion-file-summary"),
        markdown=reporting.batch_summary_markdown(batch, _deployment_name()),
        description=f"Last batch: {len(names)} files ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})",
    )


def file_summary_artifact(summary: RunSummary, destination: str | None, timings: dict[str, float]) -> None:
    """The file's summary: rows per layer, quality, enrichment, where it went."""
    _ = create_markdown_artifact(
        key=reporting.artifact_key("medallion-file-summary"),
        markdown=reporting.file_summary_markdown(summary, _deployment_name(), timings, destination),
        description=f"Last file: {summary.file_name}",
    )


def gold_kpis_artifact(kpis: GoldKpis, after: str) -> None:
    """Gold's KPIs after a file (or a batch, `after` naming it) loaded."""
    _ = create_table_artifact(
        key=reporting.artifact_key("medallion-gold-kpis"),
        table=reporting.kpi_rows(kpis),
        description=f"Gold KPIs after {after}",
    )


@task(name="quality-alert")
def quality_alert(scope: str, score: float, threshold: float, subject_name: str, file_id: str | None) -> None:
    """Emit the below-threshold event that the service's automation turns into a webhook call."""
    emit_event(
        event=QUALITY_EVENT,
        resource={
            "prefect.resource.id": f"medallion.quality.{file_id or 'dataset'}",
            "prefect.resource.name": subject_name,
        },
        payload={"scope": scope, "score": round(score, 2), "threshold": threshold, "name": subject_name},
    )
    get_run_logger().warning(
        "quality %.1f of %s is below the threshold %.0f: event %s emitted",
        score,
        subject_name,
        threshold,
        QUALITY_EVENT,
    )


def _deployment_name() -> str | None:
    flow_name = flow_run.get_flow_name()
    name = deployment.get_name()
    return f"{flow_name}/{name}" if flow_name and name else None


@task(name="gold", retries=2, retry_delay_seconds=2)
def gold_rebuild(warehouse: Warehouse, pipeline: PipelineSettings) -> GoldKpis:
    kpis = steps.load_gold(warehouse, pipeline)
    get_run_logger().info("gold rebuilt: net revenue %s over %s orders", kpis.net_revenue, kpis.orders)
    return kpis


@task(name="dataset-quality", retries=2, retry_delay_seconds=2)
def dataset_quality(warehouse: Warehouse, pipeline: PipelineSettings) -> QualityScores:
    scores = steps.score_dataset(warehouse, pipeline)
    get_run_logger().info("whole silver table scores %.1f: %s", scores.score, scores.model_dump())
    return scores


@task(name="silver-rebuild")
def silver_rebuild(warehouse: Warehouse, pipeline: PipelineSettings) -> steps.RebuildReport:
    report = steps.rebuild_silver(warehouse, pipeline)
    get_run_logger().info("silver rebuilt from bronze: %s", report)
    return report
