"""Server-side set-up at start: the warehouse concurrency limit, the quality alert automation, crash recovery."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import get_client
from prefect.automations import EventTrigger, Posture
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
from prefect.client.schemas.filters import (
    DeploymentFilter,
    FlowRunFilter,
)
from prefect.client.schemas.objects import StateType
from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import AutomationCore
from prefect.exceptions import ObjectNotFound
from prefect.states import Crashed

from deployments import names
from medallion.settings import ServiceSettings

logger = logging.getLogger(__name__)

IN_FLIGHT = [StateType.RUNNING, StateType.PENDING, StateType.CANCELLING]


class LimitError(RuntimeError):
    """The warehouse concurrency limit is missing or not what the service needs after set-up."""


@dataclass(frozen=True)
class OrphanedRun:
    flow_run_id: str
    deployment: str
    parameters: dict[str, Any]

    @property
    def paths(self) -> list[Path]:
        """The file it was loading (`path`), or the files of its batch (`paths`)."""
        value = self.parameters.get("path")
        if value:
            return [Path(str(value))]
        return [Path(str(item)) for item in self.parameters.get("paths") or []]


async def ensure_warehouse_limit(service: ServiceSettings) -> None:
    """Create the one-slot limit that serialises warehouse writers, and check it really exists and is active."""
    name = service.warehouse_limit_name
    async with get_client() as client:
        try:
            current = await client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            await client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate.parse_obj({"name": name, "limit": 1, "active": True})
            )
            logger.info("created the global concurrency limit %r (1 slot)", name)
        else:
            if current.limit != 1 or not current.active:
                await client.update_global_concurrency_limit(
                    name, GlobalConcurrencyLimitUpdate.parse_obj({"limit": 1, "active": True})
                )
                logger.info("reset the global concurrency limit %r to 1 active slot", name)
        verified = await client.read_global_concurrency_limit_by_name(name)
    if verified.name != name or verified.limit != 1 or not verified.active:
        raise LimitError(f"the global concurrency limit {name!r} is not a single active slot after set-up")


async def release_leaked_slots(service: ServiceSettings) -> int:
    """Slots held by runs that died with the service are never released by Prefect 2: free them at start."""
    name = service.warehouse_limit_name
    async with get_client() as client:
        current = await client.read_global_concurrency_limit_by_name(name)
        if current.active_slots:
            await client.update_global_concurrency_limit(
                name, GlobalConcurrencyLimitUpdate.parse_obj({"active_slots": 0})
            )
            logger.warning("released %d warehouse slot(s) held by runs that did not finish", current.active_slots)
        return int(current.active_slots)


async def configure_quality_alert(service: ServiceSettings) -> bool:
    """An automation that posts to ALERT_WEBHOOK_URL on every quality-below-threshold event; removed when unset."""
    async with get_client() as client:
        for existing in await client.read_automations_by_name(names.ALERT_AUTOMATION):
            await client.delete_automation(existing.id)
        if service.alert_webhook_url is None:
            logger.info("ALERT_WEBHOOK_URL is not set: quality events are recorded, no webhook is called")
            return False
        block = CustomWebhookNotificationBlock.parse_obj(
            {
                "name": names.ALERT_BLOCK,
                "url": "{{webhook_url}}",
                "method": "POST",
                "json_data": {"subject": "{{subject}}", "body": "{{body}}", "source": "{{name}}"},
                "secrets": {"webhook_url": service.alert_webhook_url.get_secret_value()},
            }
        )
        block_id = await block.save(names.ALERT_BLOCK, overwrite=True)
        trigger = EventTrigger.parse_obj(
            {
                "expect": {names.QUALITY_EVENT},
                "match": {"prefect.resource.id": "medallion.quality.*"},
                "posture": Posture.Reactive,
                "threshold": 1,
            }
        )
        notification = SendNotification(
            block_document_id=block_id,
            subject="Medallion data quality below threshold",
            body=(
                "Quality of {{ event.payload.name }} ({{ event.payload.scope }}) is "
                "{{ event.payload.score }}, below the threshold {{ event.payload.threshold }}."
            ),
        )
        automation = AutomationCore.parse_obj(
            {
                "name": names.ALERT_AUTOMATION,
                "description": "Quality of a file or of the whole silver table fell below QUALITY_ALERT_THRESHOLD.",
                "trigger": trigger,
                "actions": [notification],
            }
        )
        await client.create_automation(automation)
    logger.info("quality alerts go to the webhook in ALERT_WEBHOOK_URL (automation %r)", names.ALERT_AUTOMATION)
    return True


async def crash_orphaned_runs() -> list[OrphanedRun]:
    """Mark runs of our deployments that were in flight when the service died as Crashed, and return them."""
    orphaned: list[OrphanedRun] = []
    async with get_client() as client:
        deployments: dict[Any, str] = {}
        for name in names.ALL_DEPLOYMENTS:
            try:
                deployments[(await client.read_deployment_by_name(name)).id] = name
            except ObjectNotFound:
                continue
        if not deployments:
            return []
        runs = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter.parse_obj({"state": {"type": {"any_": IN_FLIGHT}}}),
            deployment_filter=DeploymentFilter.parse_obj({"id": {"any_": list(deployments)}}),
        )
        for run in runs:
            await client.set_flow_run_state(
                run.id,
                Crashed(message="the service stopped while this run was in flight; its file is resubmitted"),
                force=True,
            )
            deployment = deployments[run.deployment_id]
            orphaned.append(OrphanedRun(str(run.id), deployment, dict(run.parameters)))
            logger.warning("marked run %s (%s, %s) Crashed: the service died under it", run.name, deployment, run.id)
    return orphaned
