"""What the service's runs report: the models its flows return, and a file run's artifacts as plain Markdown and
table rows (no Prefect here)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from enrichment import EnrichmentStats
from medallion.runs import GoldKpis, RunSummary
from medallion.steps import RebuildReport

QUALITY_DIMENSIONS = ("completeness", "validity", "uniqueness", "consistency", "score")


class FiledRun(BaseModel):
    """A file's run through the layers and where the file went after it."""

    summary: RunSummary
    moved_to: str | None
    attempt: int


class BatchFile(BaseModel):
    """One file of a batch run: its summary when it loaded, its one-line reason when it failed, where it went, and
    the warehouse tables its load wrote."""

    file_name: str
    moved_to: str | None
    summary: RunSummary | None = None
    failure: str | None = None
    changed_tables: list[str] = []


class BatchRun(BaseModel):
    """A run of the file-drop deployment that loaded several files one after another."""

    files: list[BatchFile]
    attempt: int

    def failures_in_words(self) -> str | None:
        """E.g. "2 of 12 files failed: a.csv: missing column ...; b.csv: ...", or None when none failed."""
        failed = [(item.file_name, item.failure) for item in self.files if item.failure is not None]
        if not failed:
            return None
        reasons = "; ".join(reason if reason.startswith(name) else f"{name}: {reason}" for name, reason in failed)
        return f"{len(failed)} of {len(self.files)} files failed: {reasons}"

    def low_quality_in_words(self) -> str | None:
        """E.g. "2 of 12 files scored below the quality threshold: a.csv 71.3, b.csv 80.0", or None."""
        low = [item.summary for item in self.files if item.summary is not None and item.summary.below_threshold]
        if not low:
            return None
        scores = ", ".join(f"{summary.file_name} {summary.quality.score:.1f}" for summary in low if summary.quality)
        return f"{len(low)} of {len(self.files)} files scored below the quality threshold: {scores}"

    def gold(self) -> GoldKpis | None:
        """Gold's KPIs after the last file that moved it."""
        moved = [item.summary.gold for item in self.files if item.summary is not None and item.summary.gold]
        return moved[-1] if moved else None

    def changed_tables(self) -> list[str]:
        """Every table any of its files wrote, once each."""
        return sorted({table for item in self.files for table in item.changed_tables})


class CaughtUpFile(BaseModel):
    """A file the watcher missed, run by the daily flow, and the end state of its run."""

    file_name: str
    state: str


class DailyRun(BaseModel):
    caught_up: list[CaughtUpFile]
    enrichment: EnrichmentStats
    gold: GoldKpis


class WeeklyRun(BaseModel):
    silver: RebuildReport
    gold: GoldKpis


def artifact_key(*parts: str) -> str:
    """A Prefect artifact key: lowercase letters, digits and dashes only."""
    text = "-".join(parts).lower()
    cleaned = "".join(c if c.isascii() and c.isalnum() else "-" for c in text)
    return "-".join(part for part in cleaned.split("-") if part)[:100] or "medallion"


def _number(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return str(value)


def file_summary_markdown(
    summary: RunSummary, deployment: str | None, timings: dict[str, float], destination: str | None
) -> str:
    lines = [
        f"## {summary.file_name}: {summary.status.value}",
        "",
        f"Deployment `{deployment or 'ad hoc'}`; file id `{summary.file_id[:16]}`; "
        f"moved to `{destination or 'left in place'}`.",
        "",
        "| layer | rows |",
        "|---|---:|",
        f"| bronze | {_number(summary.bronze_rows)} |",
        f"| silver | {_number(summary.silver_rows)} |",
        f"| rejected | {_number(summary.rejected_rows)} |",
        f"| duplicates removed | {_number(summary.duplicate_rows)} |",
        f"| overlaps with other files | {_number(summary.overlap_rows)} |",
    ]
    rejected = summary.rejected_by_reason
    if rejected:
        lines += ["", "Rejected by reason: " + ", ".join(f"{k} {_number(v)}" for k, v in sorted(rejected.items()))]
    if summary.enrichment:
        lines += ["", f"Enrichment look-ups: {summary.enrichment_in_words()}."]
    if summary.quality is not None:
        flag = " (below threshold)" if summary.below_threshold else ""
        dataset = summary.dataset_quality.score if summary.dataset_quality is not None else None
        lines += ["", f"Quality {_number(summary.quality.score)}{flag}; whole dataset {_number(dataset)}."]
    if timings:
        lines += ["", "Timings: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in timings.items())]
    return "\n".join(lines)


def batch_summary_markdown(batch: BatchRun, deployment: str | None) -> str:
    """A batch run's files, one row each: how it went, its rows per layer, its quality and where it went."""
    failed = sum(1 for item in batch.files if item.failure is not None)
    lines = [
        f"## {len(batch.files)} files: {len(batch.files) - failed} loaded or found loaded, {failed} failed",
        "",
        f"Deployment `{deployment or 'ad hoc'}`; attempt {batch.attempt}.",
        "",
        "| file | outcome | bronze | silver | rejected | duplicates | overlaps | quality | moved to |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for item in batch.files:
        summary, moved = item.summary, f"`{item.moved_to or 'left in place'}`"
        if summary is None or item.failure is not None:
            lines.append(f"| {_cell(item.file_name)} | failed: {_cell(item.failure or '')} | | | | | | | {moved} |")
            continue
        quality = _number(summary.quality.score) if summary.quality is not None else ""
        flag = " (below threshold)" if summary.below_threshold else ""
        counts = (summary.bronze_rows, summary.silver_rows, summary.rejected_rows)
        removed = (summary.duplicate_rows, summary.overlap_rows)
        lines.append(
            f"| {_cell(item.file_name)} | {summary.status.value} | "
            + " | ".join(_number(count) for count in (*counts, *removed))
            + f" | {quality}{flag} | {moved} |"
        )
    return "\n".join(lines)


def _cell(text: str) -> str:
    """Text for a markdown table cell: no pipe or line break of its own."""
    return text.replace("|", "\\|").replace("\n", " ")


def quality_rows(summary: RunSummary) -> list[dict[str, Any]]:
    if summary.quality is None:
        return []
    scores = summary.quality.model_dump()
    return [{"dimension": name, "percent": round(float(scores[name]), 2)} for name in QUALITY_DIMENSIONS]


def kpi_rows(kpis: GoldKpis) -> list[dict[str, Any]]:
    return [{"kpi": name, "value": "" if value is None else str(value)} for name, value in kpis.model_dump().items()]


def failure_markdown(file_name: str, reason: str, retryable: bool, attempts: int, destination: str | None) -> str:
    next_step = "it will be retried with conservative settings" if retryable else "retrying cannot help"
    return (
        f"## {file_name}: failed\n\n{reason}\n\nAttempt {attempts}; {next_step}. "
        f"The file is in `{destination or 'its original place'}` with a `.error.json` sidecar."
    )
