"""Every `import` of the package's own modules, read with `ast` (nothing is imported), and the graph they
make between its top-level units.

An import is recorded with where it runs: at module level (paid by whoever imports the module), inside a
function (paid only when that code runs, which is how the server keeps torch out of its process), or under
`if TYPE_CHECKING:` (never at run time, but still a dependency a reader and mypy follow).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path


class Where(Enum):
    MODULE = "module"
    FUNCTION = "function"
    TYPE_CHECKING = "type"


@dataclass(frozen=True)
class Import:
    """`importer` imports `target` (a dotted name, ours or a third party's) at `line`."""

    importer: str
    target: str
    line: int
    where: Where


@dataclass(frozen=True)
class SourceModule:
    name: str
    path: Path
    is_package: bool


@dataclass
class Tree:
    """The modules under one package directory and every import they make."""

    root_package: str
    modules: dict[str, SourceModule] = field(default_factory=dict)
    imports: list[Import] = field(default_factory=list)

    def ours(self) -> list[Import]:
        return [i for i in self.imports if _top(i.target) == self.root_package]

    def third_party(self) -> list[Import]:
        return [i for i in self.imports if _top(i.target) != self.root_package]


def scan(package_dir: Path) -> Tree:
    """Read every module under `package_dir` (a directory with an `__init__.py`)."""
    tree = Tree(root_package=package_dir.name)
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        module = SourceModule(".".join(parts), path, is_package)
        tree.modules[module.name] = module
    for module in tree.modules.values():
        syntax = ast.parse(module.path.read_text(encoding="utf-8"), filename=str(module.path))
        finder = _ImportFinder(module, tree.modules)
        finder.visit(syntax)
        tree.imports.extend(finder.found)
    return tree


def unit_of(module: str, overrides: Mapping[str, str]) -> str:
    """The top-level unit a module belongs to: its top-level package (`zeroserve.api.runtime` -> `api`),
    a top-level module's own name (`zeroserve.config` -> `config`), or, for a module or package named in
    `overrides` and everything under it, the unit given there."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        owner = overrides.get(".".join(parts[:n]))
        if owner is not None:
            return owner
    return parts[1] if len(parts) > 1 else parts[0]


@dataclass
class Edge:
    """One package importing another, and every import that makes it."""

    importer: str
    target: str
    imports: list[Import] = field(default_factory=list)

    @property
    def runtime(self) -> bool:
        """Whether any of its imports runs (not only under TYPE_CHECKING)."""
        return any(i.where is not Where.TYPE_CHECKING for i in self.imports)

    @property
    def label(self) -> str:
        """`target`, or `target(fn)` / `target(type)` when no import of it runs at module level."""
        wheres = {i.where for i in self.imports}
        if Where.MODULE in wheres:
            return self.target
        return f"{self.target}(fn)" if Where.FUNCTION in wheres else f"{self.target}(type)"


def package_graph(tree: Tree, overrides: Mapping[str, str]) -> dict[tuple[str, str], Edge]:
    """Imports between different units, aggregated per (importer unit, imported unit)."""
    edges: dict[tuple[str, str], Edge] = {}
    for imp in tree.ours():
        key = (unit_of(imp.importer, overrides), unit_of(imp.target, overrides))
        if key[0] != key[1]:
            edges.setdefault(key, Edge(*key)).imports.append(imp)
    return edges


def units(tree: Tree, overrides: Mapping[str, str]) -> set[str]:
    return {unit_of(name, overrides) for name in tree.modules}


def module_closure(tree: Tree, start: Iterable[str]) -> set[str]:
    """The modules of ours that importing `start` executes: module-level imports, followed transitively,
    with each module's parent packages (importing `a.b.c` runs `a/__init__` and `a/b/__init__`)."""
    by_importer: dict[str, list[str]] = {}
    for imp in tree.ours():
        if imp.where is Where.MODULE:
            by_importer.setdefault(imp.importer, []).append(imp.target)
    seen: set[str] = set()
    todo = list(start)
    while todo:
        name = todo.pop()
        if name in seen or name not in tree.modules:
            continue
        seen.add(name)
        parts = name.split(".")
        todo.extend(".".join(parts[:n]) for n in range(1, len(parts)))
        todo.extend(by_importer.get(name, []))
    return seen


def _top(dotted: str) -> str:
    return dotted.split(".", 1)[0]


class _ImportFinder(ast.NodeVisitor):
    def __init__(self, module: SourceModule, modules: Mapping[str, SourceModule]) -> None:
        self.module = module
        self.modules = modules
        self.found: list[Import] = []
        self._function_depth = 0
        self._type_checking_depth = 0

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._in_function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._in_function(node)

    def _in_function(self, node: ast.AST) -> None:
        self._function_depth += 1
        self.generic_visit(node)
        self._function_depth -= 1

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node.test):
            self.generic_visit(node)
            return
        self._type_checking_depth += 1
        for child in node.body:
            self.visit(child)
        self._type_checking_depth -= 1
        for child in node.orelse:
            self.visit(child)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = self._resolve(node.module, node.level)
        for alias in node.names:
            # `from zeroserve import errors` imports the module zeroserve.errors; `from x import name` the
            # module x.
            submodule = f"{base}.{alias.name}"
            self._add(submodule if submodule in self.modules else base, node.lineno)

    def _resolve(self, name: str | None, level: int) -> str:
        if level == 0:
            return name or ""
        package = self.module.name if self.module.is_package else self.module.name.rpartition(".")[0]
        parts = package.split(".")
        parts = parts[: len(parts) - (level - 1)]
        return ".".join([*parts, name] if name else parts)

    def _add(self, target: str, line: int) -> None:
        if self._type_checking_depth:
            where = Where.TYPE_CHECKING
        elif self._function_depth:
            where = Where.FUNCTION
        else:
            where = Where.MODULE
        found = Import(self.module.name, target, line, where)
        if found not in self.found[-1:]:  # `from x import a, b` is one import of x
            self.found.append(found)


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
