"""The watcher's heartbeat: the keyed `medallion-watcher` artifact, republished when the watcher's status changes and
every HEARTBEAT_S anyway, and marked stopped on a clean shutdown.

One thread makes every call, one or two at a time (Prefect 2's SQLite server reports "database is locked" under
concurrent writes). Each new version replaces the previous one, which is deleted, so the key keeps one version
instead of thousands a day.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

from prefect import get_client
from prefect.client.schemas.actions import ArtifactCreate
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.objects import Artifact
from prefect.client.schemas.sorting import ArtifactSort
from prefect.exceptions import ObjectNotFound

from deployments import watcher_status
from deployments.watcher_status import WatcherStatus

logger = logging.getLogger(__name__)

WATCHER_KEY = "medallion-watcher"
HEARTBEAT_S = 15.0
# Changes closer together than this are published together (a burst of drops is one update, not twenty).
_SETTLE_S = 1.0
_TICK_S = 0.25
_OLD_VERSIONS = 50


class Heartbeat:
    """Publishes `status` from a thread of its own until `stop` is set; `stopped()` then says so."""

    def __init__(
        self,
        status: WatcherStatus,
        stop: threading.Event,
        *,
        ui_url: str | None = None,
        interval_s: float = HEARTBEAT_S,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._status = status
        self._stop = stop
        self._ui_url = ui_url
        self._interval_s = interval_s
        self._clock = clock
        self._published: list[UUID] = []

    def previous_watcher(self) -> None:
        """Read the last watcher's artifact: if it never said stopped, the service died under it; say so."""
        previous = asyncio.run(self._previous())
        self._published = [artifact.id for artifact in previous]
        if not previous or watcher_status.stopped_cleanly(previous[0].description):
            return
        last = previous[0].updated or previous[0].created
        when = f"its last heartbeat was at {last:%H:%M:%S} UTC on {last:%Y-%m-%d}" if last else "no heartbeat known"
        self._status.previous_unclean = when
        logger.warning("the previous watcher stopped without a clean shutdown (%s)", when)

    def run(self) -> None:
        last_beat = -self._interval_s
        while not self._stop.wait(_TICK_S):
            due = time.monotonic() - last_beat >= self._interval_s
            if not due and not self._status.take_change():
                continue
            if not due:
                self._stop.wait(_SETTLE_S)
                self._status.take_change()
            heartbeat = self._clock()
            markdown = watcher_status.alive_markdown(self._status.snapshot(), heartbeat, self._interval_s, self._ui_url)
            self._publish(markdown, watcher_status.alive_description(heartbeat))
            last_beat = time.monotonic()

    def stopped(self) -> None:
        """The artifact marked stopped: called once the watcher's threads have ended."""
        stopped_at = self._clock()
        markdown = watcher_status.stopped_markdown(self._status.snapshot(), stopped_at, self._ui_url)
        self._publish(markdown, watcher_status.stopped_description(stopped_at))

    def _publish(self, markdown: str, description: str) -> None:
        try:
            self._published = [asyncio.run(self._replace(markdown, description, self._published))]
        except Exception as error:
            # The watcher goes on without its status page; the next beat tries again.
            logger.warning("could not publish the watcher's status: %s", error)

    async def _previous(self) -> list[Artifact]:
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[WATCHER_KEY])),
                sort=ArtifactSort.UPDATED_DESC,
                limit=_OLD_VERSIONS,
            )

    @staticmethod
    async def _replace(markdown: str, description: str, superseded: list[UUID]) -> UUID:
        async with get_client() as client:
            created = await client.create_artifact(
                ArtifactCreate.parse_obj(
                    {"key": WATCHER_KEY, "type": "markdown", "description": description, "data": markdown}
                )
            )
            for artifact_id in superseded:
                try:
                    await client.delete_artifact(artifact_id)
                except ObjectNotFound:
                    continue
        return created.id
