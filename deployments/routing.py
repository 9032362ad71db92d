"""Which deployment a file goes to, with what parameters, key, run name and tags (no Prefect here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from deployments.names import ERROR_RETRY, FILE_DROP, LARGE_FILE
from medallion.settings import Settings


@dataclass(frozen=True)
class Submission:
    deployment: str
    path: Path
    sha256: str
    parameters: dict[str, object]
    run_name: str
    tags: tuple[str, ...]
    idempotency_key: str = field(default="")
    signature: tuple[int, int] | None = None

    def key(self) -> str:
        return self.idempotency_key or f"{self.deployment}/{self.sha256}"


def _short(deployment: str) -> str:
    return deployment.split("/", 1)[1]


def file_submission(
    path: Path, size_bytes: int, sha256: str, settings: Settings, signature: tuple[int, int] | None = None
) -> Submission:
    """A dropped file: large files stream in batches with live enrichment deferred."""
    large = size_bytes > settings.large_file_bytes
    deployment = LARGE_FILE if large else FILE_DROP
    return Submission(
        deployment=deployment,
        path=path,
        sha256=sha256,
        parameters={"path": str(path), "mode": "large" if large else "standard"},
        run_name=f"{_short(deployment)}: {path.name}",
        tags=("medallion", _short(deployment), "large" if large else "small"),
        signature=signature,
    )


def retry_submission(path: Path, sha256: str, attempt: int) -> Submission:
    """A failed, retryable file from `raw/errors/`, run again with conservative settings."""
    return Submission(
        deployment=ERROR_RETRY,
        path=path,
        sha256=sha256,
        parameters={"path": str(path), "mode": "conservative", "attempt": attempt},
        run_name=f"{_short(ERROR_RETRY)} #{attempt}: {path.name}",
        tags=("medallion", _short(ERROR_RETRY), f"attempt-{attempt}"),
        idempotency_key=f"{ERROR_RETRY}/{sha256}/attempt-{attempt}",
    )
