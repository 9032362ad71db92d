"""Which deployment a file goes to, with what parameters, key, run name and tags (no Prefect here)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
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
    # The files a batch carries (each a submission of its own); empty for a run of one file.
    members: tuple[Submission, ...] = ()

    def key(self) -> str:
        return self.idempotency_key or f"{self.deployment}/{self.sha256}"

    def files(self) -> tuple[Submission, ...]:
        """The submissions of the files this run loads: its members, or itself."""
        return self.members or (self,)

    @property
    def label(self) -> str:
        """How logs name it: the file's name, or the batch's run name."""
        return self.run_name if self.members else repr(self.path.name)


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


def batched(submissions: Iterable[Submission]) -> Submission | None:
    """The file drops to submit together: one run of the file-drop deployment loading them one after another.

    Batches are flattened into their files and a path queued twice counts once (its latest submission); one file
    stays a submission of its own, so its run is the same as if it had come alone. The key comes from the sorted
    contents, so the same files submitted again find the same run.
    """
    latest: dict[Path, Submission] = {}
    for submission in submissions:
        for member in submission.files():
            latest.pop(member.path, None)
            latest[member.path] = member
    files = tuple(latest.values())
    if len(files) <= 1:
        return files[0] if files else None
    first = files[0]
    digest = hashlib.sha256("\n".join(sorted(member.sha256 for member in files)).encode()).hexdigest()
    short = _short(FILE_DROP)
    return Submission(
        deployment=FILE_DROP,
        path=first.path,
        sha256=digest,
        parameters={"paths": [str(member.path) for member in files], "mode": RunMode.STANDARD.value},
        run_name=f"{short}: {len(files)} files ({first.path.name}, ...)",
        tags=("medallion", short, "small", "batch"),
        idempotency_key=f"{FILE_DROP}/batch/{digest}",
        members=files,
    )
