"""The artifacts a file run publishes, as plain Markdown and table rows (no Prefect here)."""

from __future__ import annotations

from typing import Any

QUALITY_DIMENSIONS = ("completeness", "validity", "uniqueness", "consistency", "score")


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
    summary: dict[str, Any], deployment: str | None, timings: dict[str, float], destination: str | None
) -> str:
    lines = [
        f"## {summary.get('file_name', 'file')}: {summary.get('status', 'unknown')}",
        "",
        f"Deployment `{deployment or 'ad hoc'}`; file id `{str(summary.get('file_id', ''))[:16]}`; "
        f"moved to `{destination or 'left in place'}`.",
        "",
        "| layer | rows |",
        "|---|---:|",
    ]
    for label, key in (
        ("bronze", "bronze_rows"),
        ("silver", "silver_rows"),
        ("rejected", "rejected_rows"),
        ("duplicates removed", "duplicate_rows"),
    ):
        lines.append(f"| {label} | {_number(summary.get(key))} |")
    rejected = summary.get("rejected_by_reason") or {}
    if rejected:
        lines += ["", "Rejected by reason: " + ", ".join(f"{k} {_number(v)}" for k, v in sorted(rejected.items()))]
    enrichment = summary.get("enrichment")
    if isinstance(enrichment, dict) and enrichment:
        lines += ["", "Enrichment: " + "; ".join(f"{source} {value}" for source, value in sorted(enrichment.items()))]
    if summary.get("quality_score") is not None:
        flag = " (below threshold)" if summary.get("quality_below_threshold") else ""
        lines += [
            "",
            f"Quality {_number(summary.get('quality_score'))}{flag}; "
            f"whole dataset {_number(summary.get('dataset_quality_score'))}.",
        ]
    if timings:
        lines += ["", "Timings: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in timings.items())]
    return "\n".join(lines)


def quality_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    quality = summary.get("quality") or {}
    return [
        {"dimension": name, "percent": round(float(quality[name]), 2)}
        for name in QUALITY_DIMENSIONS
        if quality.get(name) is not None
    ]


def kpi_rows(kpis: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"kpi": name, "value": "" if value is None else str(value)} for name, value in kpis.items()]


def failure_markdown(file_name: str, reason: str, retryable: bool, attempts: int, destination: str | None) -> str:
    next_step = "it will be retried with conservative settings" if retryable else "retrying cannot help"
    return (
        f"## {file_name}: failed\n\n{reason}\n\nAttempt {attempts}; {next_step}. "
        f"The file is in `{destination or 'its original place'}` with a `.error.json` sidecar."
    )
