"""The lineage as an SVG diagram drawn as text: one column per step from the source files, gold in the last column,
each node coloured by its schema and labelled with its rows."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from medallion.warehouse.catalog import BRONZE_FILES, GOLD_STATE, SOURCE_FILES, TableState, WarehouseState

_NODE_HEIGHT = 40
_ROW_GAP = 14
_COLUMN_GAP = 52
_MARGIN = 16
_LEGEND_HEIGHT = 28
_LANE_STEP = 9
_PADDING = 10
_TITLE_SIZE = 12
_DETAIL_SIZE = 10.5
# Average glyph widths in em of the sans-serif faces browsers fall back on; generous, so a label never overflows.
_BOLD_EM = 0.66
_REGULAR_EM = 0.58
_FONT = "DejaVu Sans, Verdana, Arial, sans-serif"
# (fill, stroke) per schema, and the legend's names for them.
_COLOURS: dict[str, tuple[str, str]] = {
    "source": ("#e8f5e9", "#43a047"),
    "bronze": ("#f6e3cf", "#a0522d"),
    "silver": ("#eceff1", "#607d8b"),
    "enrichment": ("#e3f2fd", "#1e88e5"),
    "gold_state": ("#fdf8e4", "#b59a3a"),
    "gold": ("#fff4c2", "#c9a227"),
    "ops": ("#f3e5f5", "#8e24aa"),
}
_LEGEND = {"source": "source files", "bronze": "bronze", "silver": "silver", "enrichment": "enrichment",
           "gold_state": "gold's state", "gold": "gold", "ops": "ledger"}  # fmt: skip


@dataclass
class _Node:
    """A box of the diagram; the layout sets its column, position and place."""

    name: str
    title: str
    detail: str
    schema: str
    column: int = 0
    x: float = 0
    y: float = 0
    width: float = 0
    missing: bool = False
    position: float = 0


def lineage_svg(state: WarehouseState) -> str:
    """The state's lineage as a standalone SVG document; its size is a viewBox only, so it scales to its place."""
    nodes = _nodes(state)
    if not nodes:
        return '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1" role="img"><title>No lineage</title></svg>'
    columns = _columns(state, nodes)
    _place(columns)
    lanes = _lanes(state, nodes)
    top = min([*(node.y for node in nodes.values()), *lanes.values()]) - _LANE_STEP
    bottom = max([*(node.y + _NODE_HEIGHT for node in nodes.values()), *lanes.values()]) + _LANE_STEP
    shift = _MARGIN + _LEGEND_HEIGHT - top
    for node in nodes.values():
        node.y += shift
    lanes = {name: y + shift for name, y in lanes.items()}
    width = max(node.x + node.width for node in nodes.values()) + _MARGIN
    height = bottom + shift + _MARGIN
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
            f'font-family="{_FONT}" role="img">',
            f"<title>Lineage: {len(nodes)} tables and views, {len(state.lineage)} steps</title>",
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
            'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#6b7280"/></marker></defs>',
            f'<rect width="{width:.0f}" height="{height:.0f}" fill="#ffffff"/>',
            *_legend(),
            *(_edge(nodes[edge.source], nodes[edge.target], lanes.get(edge.source)) for edge in state.lineage),
            *(_box(node) for node in nodes.values()),
            "</svg>",
        ]
    )


def _place(columns: list[list[_Node]]) -> None:
    """Columns side by side, each as wide as its widest label, its nodes centred on y = 0."""
    x = float(_MARGIN)
    for column in columns:
        width = max(node.width for node in column)
        for node in column:
            node.x, node.width = x, width
            node.y = node.position * (_NODE_HEIGHT + _ROW_GAP) - _NODE_HEIGHT / 2
        x += width + _COLUMN_GAP


def _nodes(state: WarehouseState) -> dict[str, _Node]:
    """A node for each name in the lineage, in the order the lineage names them."""
    tables = {table.name: table for table in state.tables}
    ledger_files = sum(state.files_by_status.values())
    nodes: dict[str, _Node] = {}
    for edge in state.lineage:
        for name in (edge.source, edge.target):
            if name not in nodes:
                nodes[name] = _node(name, tables.get(name), ledger_files)
    return nodes


def _node(name: str, table: TableState | None, ledger_files: int) -> _Node:
    schema, _, short = name.partition(".")
    if name == SOURCE_FILES:
        node = _Node(name, "source files", f"{ledger_files:,} in the ledger", "source")
    elif table is None:
        node = _Node(name, short, "not built yet", schema, missing=True)
    elif name == BRONZE_FILES:
        files = table.files or 0
        node = _Node(
            name, "a table per file", f"{files:,} file{'' if files == 1 else 's'}, {_rows(table.rows)}", schema
        )
    elif name == GOLD_STATE:
        tables = table.tables or 0
        node = _Node(name, "gold's state", f"{tables:,} table{'' if tables == 1 else 's'}, {_rows(table.rows)}", schema)
    else:
        node = _Node(name, short, f"{_rows(table.rows)}{' (view)' if table.kind == 'view' else ''}", schema)
    node.width = 2 * _PADDING + max(
        len(node.title) * _BOLD_EM * _TITLE_SIZE, len(node.detail) * _REGULAR_EM * _DETAIL_SIZE
    )
    return node


def _rows(count: int) -> str:
    return f"{count:,} row{'' if count == 1 else 's'}"


def _columns(state: WarehouseState, nodes: dict[str, _Node]) -> list[list[_Node]]:
    """Each node one column after its furthest source, gold in the last; in a column, nodes are ordered by the mean
    position of their sources, so few edges cross. A node's position counts rows from its column's middle."""
    for _ in nodes:  # a longest path has fewer edges than there are nodes
        for edge in state.lineage:
            nodes[edge.target].column = max(nodes[edge.target].column, nodes[edge.source].column + 1)
    last = max(node.column for node in nodes.values())
    for node in nodes.values():
        if node.schema == "gold":
            node.column = last
    order = {name: index for index, name in enumerate(nodes)}
    columns: list[list[_Node]] = []
    for index in range(last + 1):
        column = [node for node in nodes.values() if node.column == index]
        column.sort(key=lambda node: (_mean_source_position(state, nodes, node), order[node.name]))
        for row, node in enumerate(column):
            node.position = row - (len(column) - 1) / 2
        columns.append(column)
    return columns


def _mean_source_position(state: WarehouseState, nodes: dict[str, _Node], node: _Node) -> float:
    positions = [nodes[edge.source].position for edge in state.lineage if edge.target == node.name]
    return sum(positions) / len(positions) if positions else 0.0


def _lanes(state: WarehouseState, nodes: dict[str, _Node]) -> dict[str, float]:
    """The height of a lane above or below the columns an edge skips, one for each source whose edges skip a
    column: the edges run along it, never through a node."""
    skipping = {
        name: [
            nodes[edge.target] for edge in state.lineage
            if edge.source == name and nodes[edge.target].column > node.column + 1
        ]
        for name, node in nodes.items()
    }  # fmt: skip
    lanes: dict[str, float] = {}
    above = below = 0
    # The lanes of shorter spans lie nearer the nodes, inside the longer ones, so lanes do not cross.
    for name, targets in sorted(
        ((name, targets) for name, targets in skipping.items() if targets),
        key=lambda item: max(target.column for target in item[1]) - nodes[item[0]].column,
    ):
        node = nodes[name]
        skipped = range(node.column + 1, max(target.column for target in targets))
        passed = [other for other in nodes.values() if other.column in skipped]
        if node.position + sum(target.position for target in targets) / len(targets) <= 0:
            above += 1
            lanes[name] = min((other.y for other in passed), default=node.y) - _LANE_STEP * above
        else:
            below += 1
            lanes[name] = max((other.y + _NODE_HEIGHT for other in passed), default=node.y) + _LANE_STEP * below
    return lanes


def _edge(source: _Node, target: _Node, lane: float | None) -> str:
    """A curve from the source's right side to the target's left side; through the source's lane when it skips a
    column."""
    x1, y1 = source.x + source.width, source.y + _NODE_HEIGHT / 2
    x2, y2 = target.x, target.y + _NODE_HEIGHT / 2
    turn, gap = _COLUMN_GAP / 2, _COLUMN_GAP
    if target.column == source.column + 1 or lane is None:
        path = f"M{_at(x1, y1)} C{_at(x1 + turn, y1)} {_at(x2 - turn, y2)} {_at(x2, y2)}"
    else:
        path = (
            f"M{_at(x1, y1)} C{_at(x1 + turn, y1)} {_at(x1 + turn, lane)} {_at(x1 + gap, lane)} L{_at(x2 - gap, lane)}"
            f" C{_at(x2 - turn, lane)} {_at(x2 - turn, y2)} {_at(x2, y2)}"
        )
    return f'<path d="{path}" fill="none" stroke="#9ca3af" stroke-width="1.3" marker-end="url(#arrow)"/>'


def _at(x: float, y: float) -> str:
    return f"{x:.1f},{y:.1f}"


def _box(node: _Node) -> str:
    fill, stroke = _COLOURS.get(node.schema, _COLOURS["ops"])
    dashes = ' stroke-dasharray="4 3"' if node.missing else ""
    return (
        f"<g><title>{escape(node.name)}</title>"
        f'<rect x="{node.x:.1f}" y="{node.y:.1f}" width="{node.width:.1f}" height="{_NODE_HEIGHT}" rx="6" '
        f'fill="{fill}" stroke="{stroke}" stroke-width="1.4"{dashes}/>'
        f'<text x="{node.x + _PADDING:.1f}" y="{node.y + 17:.1f}" font-size="{_TITLE_SIZE}" font-weight="bold" '
        f'fill="#1f2937">{escape(node.title)}</text>'
        f'<text x="{node.x + _PADDING:.1f}" y="{node.y + 32:.1f}" font-size="{_DETAIL_SIZE}" '
        f'fill="#4b5563">{escape(node.detail)}</text></g>'
    )


def _legend() -> list[str]:
    parts = []
    x = float(_MARGIN)
    for schema, label in _LEGEND.items():
        fill, stroke = _COLOURS[schema]
        parts.append(
            f'<rect x="{x:.1f}" y="{_MARGIN}" width="14" height="14" rx="3" fill="{fill}" stroke="{stroke}"/>'
            f'<text x="{x + 20:.1f}" y="{_MARGIN + 11}" font-size="{_DETAIL_SIZE}" fill="#374151">'
            f"{escape(label)}</text>"
        )
        x += 28 + len(label) * _REGULAR_EM * _DETAIL_SIZE
    return parts
