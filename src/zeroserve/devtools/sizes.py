"""Modules and functions longer than the limits a reader can hold at once (issue 19: 400 lines per module,
60 per function). A function's length runs from its first decorator (or `def`) to its last line; a nested
function counts on its own and inside the function around it."""

from __future__ import annotations

import ast
from dataclasses import dataclass

from zeroserve.devtools.import_graph import Tree

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


@dataclass(frozen=True)
class TooLong:
    where: str  # "zeroserve/scheduler/pool.py" or "zeroserve/wiring.py:Services.start"
    lines: int
    limit: int


def too_long(
    tree: Tree, max_module_lines: int = MAX_MODULE_LINES, max_function_lines: int = MAX_FUNCTION_LINES
) -> list[TooLong]:
    found = []
    for module in sorted(tree.modules.values(), key=lambda m: m.name):
        text = module.path.read_text(encoding="utf-8")
        shown = module.name.replace(".", "/") + ("/__init__.py" if module.is_package else ".py")
        lines = len(text.splitlines())
        if lines > max_module_lines:
            found.append(TooLong(shown, lines, max_module_lines))
        for name, length in _functions(ast.parse(text)):
            if length > max_function_lines:
                found.append(TooLong(f"{shown}:{name}", length, max_function_lines))
    return found


def _functions(node: ast.AST, prefix: str = "") -> list[tuple[str, int]]:
    found = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            name = f"{prefix}{child.name}"
            first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
            found.append((name, (child.end_lineno or child.lineno) - first + 1))
            found.extend(_functions(child, f"{name}."))
        elif isinstance(child, ast.ClassDef):
            found.extend(_functions(child, f"{prefix}{child.name}."))
        else:
            found.extend(_functions(child, prefix))
    return found
