"""Which deployment a file goes to, with what parameters, key, run name and tags (no Prefect here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from deployments.names import ERROR_RETRY, FILE_DROP, LARGE_FILE
from medallion.runs import RunMode
from medallion.settings import PipelineSettings


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


def file_mode(size_bytes: int, pipeline: PipelineSettings) -> RunMode:
    """Large files stream in batches with live enrichment deferred."""
    return RunMode.LARGE if size_bytes > pipeline.large_file_bytes else RunMode.STANDARD


def file_submission(
    path: Path, size_bytes: int, sha256: str, pipeline: PipelineSettings, signature: tuple[int, int] | None = None
) -> Submission:
    """A dropped file, to the deployment of its mode."""
    mode = file_mode(size_bytes, pipeline)
    large = mode is RunMode.LARGE
    deployment = LARGE_FILE if large else FILE_DROP
    return Submission(
        deployment=deployment,
        path=path,
        sha256=sha256,
        parameters={"path": str(path), "mode": mode.value},
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
        parameters={"path": str(path), "mode": RunMode.CONSERVATIVE.value, "attempt": attempt},
        run_name=f"{_short(ERROR_RETRY)} #{attempt}: {path.name}",
        tags=("medallion", _short(ERROR_RETRY), f"attempt-{attempt}"),
        idempotency_key=f"{ERROR_RETRY}/{sha256}/attempt-{attempt}",
    )
