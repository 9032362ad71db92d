"""Fail naming every module over the line limit and every function over its own limit, in the source folders.

`make lint` runs it; ruff's complexity rules count branches and statements, this counts lines, which is what a
reader pays for.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

SOURCE_FOLDERS = ("medallion", "flows", "tasks", "enrichment", "deployments")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


@dataclass(frozen=True)
class Oversize:
    """One module or function longer than its limit."""

    path: Path
    line: int
    name: str
    lines: int
    limit: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.name} has {self.lines} lines (limit {self.limit})"


def python_files(paths: Sequence[Path]) -> Iterator[Path]:
    """Every .py file under the given folders (or the files themselves), in a stable order."""
    for path in paths:
        if path.is_dir():
            yield from sorted(path.rglob("*.py"))
        elif path.suffix == ".py":
            yield path


def function_spans(tree: ast.AST) -> Iterator[tuple[str, int, int]]:
    """(qualified name, first line, last line) of every function and method, nested ones included."""

    def visit(node: ast.AST, prefix: str) -> Iterator[tuple[str, int, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                # The span starts at the first decorator: a decorator's arguments are part of what is read.
                first = min([child.lineno, *(decorator.lineno for decorator in child.decorator_list)])
                yield name, first, child.end_lineno or child.lineno
                yield from visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                yield from visit(child, f"{prefix}{child.name}.")
            else:
                yield from visit(child, prefix)

    yield from visit(tree, "")


def oversizes(path: Path, max_module_lines: int, max_function_lines: int) -> Iterator[Oversize]:
    """The limits one file breaks."""
    text = path.read_text(encoding="utf-8")
    module_lines = len(text.splitlines())
    if module_lines > max_module_lines:
        yield Oversize(path, 1, "module", module_lines, max_module_lines)
    for name, first, last in function_spans(ast.parse(text, filename=str(path))):
        lines = last - first + 1
        if lines > max_function_lines:
            yield Oversize(path, first, f"function {name}", lines, max_function_lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[Path(folder) for folder in SOURCE_FOLDERS])
    parser.add_argument("--max-module-lines", type=int, default=MAX_MODULE_LINES)
    parser.add_argument("--max-function-lines", type=int, default=MAX_FUNCTION_LINES)
    arguments = parser.parse_args(argv)
    missing = [path for path in arguments.paths if not path.exists()]
    if missing:
        parser.error(f"no such file or folder: {', '.join(map(str, missing))}")
    found = [
        oversize
        for path in python_files(arguments.paths)
        for oversize in oversizes(path, arguments.max_module_lines, arguments.max_function_lines)
    ]
    for oversize in found:
        print(oversize)
    if found:
        print(f"check_size: {len(found)} over the limits", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
