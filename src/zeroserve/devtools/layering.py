"""The layering of zeroserve's packages, as data, and the checks that hold the tree to it.

docs/architecture.md describes the same table in prose; this module is where it is defined. A unit (a
top-level package, or a top-level module) may import units in its own layer or the layers below, never one
above, and no two units may import each other, directly or around a loop. Imports under `if TYPE_CHECKING:`
count for both: they do not run, but a reader and mypy still follow them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from zeroserve.devtools.import_graph import Edge, Tree, Where, module_closure, unit_of


@dataclass(frozen=True)
class Layer:
    name: str
    units: tuple[str, ...]
    holds: str


# Lowest first.
LAYERS: tuple[Layer, ...] = (
    Layer("foundation", ("zeroserve", "config", "errors", "error_codes", "error_messages"),
          "settings, the domain errors, their codes and their wording"),
    Layer("libraries", ("database", "artifacts", "metrics", "sentiment_trainer"),
          "SQLite records, the artifact cache, metering and events, the default model's trainer"),
    Layer("shapes and models", ("aws", "runtimes"),
          "AWS request shapes (validation, listing, ARNs); serve-time model code"),
    Layer("processes", ("conversion", "workers", "local_s3", "logs"),
          "deploy-time conversion, the zygote and workers, the local S3 store, log groups"),
    Layer("scheduling", ("scheduler",), "admission, autoscaling, pools of workers, routing"),
    Layer("orchestration", ("control", "cluster"), "the endpoint lifecycle and control actions; Ray nodes"),
    Layer("training jobs", ("training_jobs",), "SageMaker script-mode training jobs"),
    Layer("composition", ("wiring",), "the composition root: builds and starts every service"),
    Layer("http", ("api",), "the HTTP routes of every plane"),
    Layer("server", ("http_server",), "uvicorn around the app, the bind checks"),
    Layer("entry points", ("cli",), "the `zeroserve` command line"),
    Layer("tools", ("devtools",), "checks for developers; nothing imports them"),
)

# Modules that belong to another unit than their top-level name says: cli.py is the root of the command
# line whose commands live in commands/ and attach to cli.app on import, so the three are one unit.
UNIT_OF_MODULE: dict[str, str] = {
    "zeroserve.cli": "cli",
    "zeroserve.__main__": "cli",
    "zeroserve.commands": "cli",
}

# Known violations, each with what it is and the fix it waits for. A listed edge is printed, not failed;
# one that no longer violates anything fails the check until it is taken off this list.
TOLERATED: dict[tuple[str, str], str] = {
    ("metrics", "scheduler"): (
        "metrics/prometheus.py names scheduler.nodes.NodeSummary (type only; the cycle metrics <-> "
        "scheduler); the collector should declare the shape it reads"
    ),
}

# What the server process must never load: entry points of `zeroserve serve` / `zeroserve up`, and the
# packages no module they load may import (at module level or in a function).
SERVER_ENTRIES: tuple[str, ...] = ("zeroserve.cli", "zeroserve.http_server", "zeroserve.commands.up")
NOT_IN_SERVER: tuple[str, ...] = ("torch", "onnxruntime", "onnx", "transformers", "ray")
# Units that never import these, wherever the import sits.
NEVER_IMPORTS: dict[str, tuple[str, ...]] = {"api": ("torch", "onnxruntime", "onnx", "transformers")}


@dataclass(frozen=True)
class Finding:
    kind: str  # "cycle", "upward", "unplaced", "heavy", "stale"
    message: str


def layer_index(layers: Sequence[Layer]) -> dict[str, int]:
    return {unit: n for n, layer in enumerate(layers) for unit in layer.units}


def check_graph(
    edges: Mapping[tuple[str, str], Edge],
    all_units: Iterable[str],
    layers: Sequence[Layer] = LAYERS,
    tolerated: Mapping[tuple[str, str], str] = TOLERATED,
) -> list[Finding]:
    """Units missing from the layering, imports of a layer above, cycles, and stale tolerations."""
    index = layer_index(layers)
    findings = [
        Finding("unplaced", f"{unit} is in no layer: add it to LAYERS (and docs/architecture.md)")
        for unit in sorted(set(all_units) - index.keys())
    ]
    violating: set[tuple[str, str]] = set()
    for (importer, target), edge in sorted(edges.items()):
        if importer in index and target in index and index[target] > index[importer]:
            violating.add((importer, target))
            if (importer, target) not in tolerated:
                message = f"{importer} imports {target}, a layer above it: {_where(edge)}"
                findings.append(Finding("upward", message))
    for cycle in find_cycles(edges):
        loop = list(zip(cycle, [*cycle[1:], cycle[0]], strict=True))
        violating.update(loop)
        if not any(step in tolerated for step in loop):
            findings.append(Finding("cycle", "import cycle: " + " -> ".join([*cycle, cycle[0]])))
    findings.extend(
        Finding("stale", f"TOLERATED lists {a} -> {b}, which no longer violates the layering: remove it")
        for a, b in sorted(tolerated.keys() - violating)
    )
    return findings


def find_cycles(edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """One loop through each strongly connected group of units (Tarjan), each starting at its least name."""
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    groups = _strongly_connected(graph)
    return [_loop_in(group, graph) for group in groups if len(group) > 1]


def check_heavy_imports(tree: Tree) -> list[Finding]:
    """The server's modules import none of NOT_IN_SERVER; the units in NEVER_IMPORTS none of theirs."""
    server = module_closure(tree, SERVER_ENTRIES)
    findings = []
    for imp in tree.third_party():
        top = imp.target.split(".")[0]
        if imp.importer in server and top in NOT_IN_SERVER and imp.where is not Where.TYPE_CHECKING:
            findings.append(Finding(
                "heavy", f"{imp.importer}:{imp.line} imports {imp.target} ({imp.where.value} level), and the "
                "server process loads that module",
            ))
        if top in NEVER_IMPORTS.get(unit_of(imp.importer, UNIT_OF_MODULE), ()):
            findings.append(Finding("heavy", f"{imp.importer}:{imp.line} imports {imp.target}"))
    return findings


def _where(edge: Edge) -> str:
    first = edge.imports[0]
    more = f" (+{len(edge.imports) - 1} more)" if len(edge.imports) > 1 else ""
    return f"{first.importer}:{first.line} imports {first.target}{more}"


def _strongly_connected(graph: Mapping[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def _loop_in(group: list[str], graph: Mapping[str, set[str]]) -> list[str]:
    """A shortest loop from the group's first member back to it, inside the group (breadth first)."""
    start, members = group[0], set(group)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph[node] & members):
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return path[::-1]
                if nxt not in came_from:
                    came_from[nxt] = node
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"{group} is not strongly connected")
