"""The one place that defines the six deployments; `prefect.yaml` is checked against it by a test."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deployments import names
from medallion.runs import RunMode

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment


@dataclass(frozen=True)
class DeploymentSpec:
    name: str
    entrypoint: str
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)
    cron: str | None = None
    tags: tuple[str, ...] = ()

    @property
    def flow_name(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def short_name(self) -> str:
        return self.name.split("/", 1)[1]


# Module paths, so a run imports the installed project and needs no copy of the flow files.
FILE_ENTRYPOINT = "flows.service.medallion_file"

SPECS: tuple[DeploymentSpec, ...] = (
    DeploymentSpec(
        name=names.FILE_DROP,
        entrypoint=FILE_ENTRYPOINT,
        description="A file dropped into RAW_DATA_PATH: bronze, silver, quality, gold, then moved to processed.",
        parameters={"mode": RunMode.STANDARD.value},
        tags=("medallion", "file-drop"),
    ),
    DeploymentSpec(
        name=names.LARGE_FILE,
        entrypoint=FILE_ENTRYPOINT,
        description=(
            "A file over LARGE_FILE_BYTES: streamed by DuckDB within its memory limit, "
            "live enrichment deferred to the daily run."
        ),
        parameters={"mode": RunMode.LARGE.value},
        tags=("medallion", "large-file"),
    ),
    DeploymentSpec(
        name=names.ERROR_RETRY,
        entrypoint=FILE_ENTRYPOINT,
        description="A failed, retryable file from raw/errors: conservative settings, less memory, no live calls.",
        parameters={"mode": RunMode.CONSERVATIVE.value},
        tags=("medallion", "error-retry"),
    ),
    DeploymentSpec(
        name=names.INCREMENTAL,
        entrypoint="flows.service.incremental_processing",
        description="Daily: catch up on files the watcher missed, refresh expired enrichment, rebuild gold.",
        cron="0 2 * * *",
        tags=("medallion", "maintenance"),
    ),
    DeploymentSpec(
        name=names.QUALITY_MONITORING,
        entrypoint="flows.service.data_quality_monitoring",
        description="Every 6 hours: score the whole silver table, record it, alert below QUALITY_ALERT_THRESHOLD.",
        cron="0 */6 * * *",
        tags=("medallion", "maintenance", "quality"),
    ),
    DeploymentSpec(
        name=names.HISTORICAL,
        entrypoint="flows.service.historical_reprocessing",
        description="Weekly: rebuild silver and gold from bronze, each swapped in atomically.",
        cron="0 3 * * 0",
        tags=("medallion", "maintenance"),
    ),
)


def runner_deployments() -> list[RunnerDeployment]:
    """The six deployments, ready for `serve` (flows are imported by module path, so runs need no file storage)."""
    from prefect.deployments.runner import EntrypointType

    built = []
    for spec in SPECS:
        module_name, function = spec.entrypoint.rsplit(".", 1)
        flow = getattr(importlib.import_module(module_name), function)
        built.append(
            flow.to_deployment(
                name=spec.short_name,
                description=spec.description,
                parameters=dict(spec.parameters),
                cron=spec.cron,
                tags=list(spec.tags),
                entrypoint_type=EntrypointType.MODULE_PATH,
            )
        )
    return built
