"""The `medallion-warehouse` artifact: every table's rows and last change, the ledger by status, and the lineage as a
diagram with the same facts as a table under it (for a reader that shows no images)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from medallion.dashboards.images import markdown_image
from medallion.dashboards.lineage import lineage_svg
from medallion.warehouse.catalog import TableState, WarehouseState

_ERROR_CHARACTERS = 200
_SPECIAL = frozenset("\\`*_{}[]()<>#+!~&")  # a pipe is escaped by _cell


def warehouse_markdown(state: WarehouseState, *, ui_url: str | None = None) -> str:
    """The state as Markdown; with the Prefect UI's address, each run that changed a table links to its page."""
    sections = [
        "# Warehouse",
        f"As of {_moment(state.measured_at)}.",
        "## Tables",
        "A view changes when a table it reads does; a change no run recorded is shown as not recorded.",
        _tables(state.tables, ui_url),
        "## Files in the ledger",
        _files(state),
        "## Lineage",
        "Where each table's rows come from, from the source files through bronze, silver and enrichment to gold's "
        "state, which each gold table is written from.",
        markdown_image("Lineage of the warehouse's tables", lineage_svg(state).encode(), "image/svg+xml"),
        _lineage_table(state),
    ]
    return "\n\n".join(sections) + "\n"


def _tables(tables: Sequence[TableState], ui_url: str | None) -> str:
    return _markdown_table(
        ("Table", "Kind", "Rows", "Last changed", "By run"),
        (
            (
                _code(table.label),
                table.kind,
                f"{table.rows:,}",
                _moment(table.changed_at) if table.changed_at else "not recorded",
                _run(table.flow_run_id, ui_url),
            )
            for table in tables
        ),
        right_aligned={2},
    )


def _files(state: WarehouseState) -> str:
    if not state.files_by_status:
        return "No file has been loaded yet."
    parts = [
        _markdown_table(
            ("Status", "Files"), ((status, f"{count:,}") for status, count in state.files_by_status.items()), {1}
        )
    ]
    if state.recent_failures:
        parts.append("### Latest failures")
        parts.append(
            _markdown_table(
                ("File", "Failed", "Retried", "Error"),
                (
                    (
                        _code(failure.file_name),
                        _moment(failure.failed_at) if failure.failed_at else "",
                        {True: "yes", False: "no", None: ""}[failure.retryable],
                        _text(_shortened(failure.error or "")),
                    )
                    for failure in state.recent_failures
                ),
            )
        )
    return "\n\n".join(parts)


def _lineage_table(state: WarehouseState) -> str:
    sources: dict[str, list[str]] = {}
    for edge in state.lineage:
        sources.setdefault(edge.target, []).append(edge.source)
    return _markdown_table(
        ("Table", "Made from"),
        ((_code(target), ", ".join(_code(source) for source in names)) for target, names in sources.items()),
    )


def _markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]], right_aligned: set[int] | None = None) -> str:
    aligned = right_aligned or set()
    lines = [
        _row(header),
        _row(["---:" if index in aligned else "---" for index in range(len(header))]),
        *(_row([_cell(value) for value in row]) for row in rows),
    ]
    return "\n".join(lines)


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _cell(value: str) -> str:
    """A table cell's text on one line, its pipes escaped so they do not end the cell."""
    return " ".join(value.split()).replace("|", "\\|")


def _code(text: str) -> str:
    """Text as a code span; a backtick inside would end it, so it becomes a quote."""
    return "`" + text.replace("`", "'") + "`"


def _text(text: str) -> str:
    """Free text (an error message) shown as written: Markdown's and HTML's special characters escaped."""
    return "".join("\\" + character if character in _SPECIAL else character for character in text)


def _shortened(text: str) -> str:
    one_line = " ".join(text.split())
    if len(one_line) <= _ERROR_CHARACTERS:
        return one_line
    return one_line[: _ERROR_CHARACTERS - 1] + "…"


def _moment(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def _run(flow_run_id: str | None, ui_url: str | None) -> str:
    if flow_run_id is None:
        return ""
    if ui_url is None:
        return f"`{flow_run_id[:8]}`"
    return f"[{flow_run_id[:8]}]({ui_url.rstrip('/')}/flow-runs/flow-run/{flow_run_id})"
