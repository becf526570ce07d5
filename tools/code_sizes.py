"""List the functions over 60 lines and the modules over 400 lines, the sizes past which a room stops being
easy to find one's way in (issue 19). Exit status 1 when there are any.

    python tools/code_sizes.py [folder ...]       # default: src/zeroserve

A function's length counts its decorators, docstring and comments; a module's, all its lines.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400


def oversized(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    found = []
    lines = len(text.splitlines())
    if lines > MAX_MODULE_LINES:
        found.append(f"{path}: module of {lines} lines")
    for node in ast.walk(ast.parse(text, str(path))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno is not None:
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            length = node.end_lineno - start + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"{path}:{node.lineno}: {node.name} of {length} lines")
    return found


def main(folders: list[str]) -> int:
    paths = [path for folder in folders for path in sorted(Path(folder).rglob("*.py"))]
    found = [line for path in paths for line in oversized(path)]
    print("\n".join(found) or "nothing over the limits")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["src/zeroserve"]))
