"""`python -m zeroserve.devtools.layout [--sizes] [--src DIR]`: print the package import graph and check it.

Exit status, as bits: 1 when an import breaks the layering (a cycle between packages, a package importing
a layer above it, a package in no layer, torch or onnxruntime where the server or api/ would load it, a
stale toleration); 2 with `--sizes` when a module or function is over the size limits. The size report is
separate because the layering must hold on every commit, while oversized code is fixed over time.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from zeroserve.devtools import layering, sizes
from zeroserve.devtools.import_graph import Edge, package_graph, scan, units

LAYERING_BROKEN = 1
TOO_LONG = 2


def run(
    package_dir: Path,
    out: TextIO,
    *,
    check_sizes: bool = False,
    layers: Sequence[layering.Layer] = layering.LAYERS,
    tolerated: Mapping[tuple[str, str], str] = layering.TOLERATED,
) -> int:
    """Print the graph and what is wrong with it; returns the exit status."""
    tree = scan(package_dir)
    edges = package_graph(tree, layering.UNIT_OF_MODULE)
    all_units = units(tree, layering.UNIT_OF_MODULE)
    _print_graph(edges, all_units, layers, out)
    findings = layering.check_graph(edges, all_units, layers, tolerated) + layering.check_heavy_imports(tree)
    present = {key: why for key, why in tolerated.items() if key in edges}
    if present:
        print("\ntolerated for now (TOLERATED in zeroserve/devtools/layering.py):", file=out)
        for (a, b), why in sorted(present.items()):
            print(f"  {a} -> {b}: {why}", file=out)
    status = 0
    if findings:
        status |= LAYERING_BROKEN
        print(f"\nFAIL: {len(findings)} layering problem(s):", file=out)
        for finding in findings:
            print(f"  [{finding.kind}] {finding.message}", file=out)
    else:
        print("\nOK: no import cycle between packages, no import of a layer above, no torch/onnxruntime "
              "in the server process or api/", file=out)
    if check_sizes:
        status |= _report_sizes(sizes.too_long(tree), out)
    return status


def _print_graph(
    edges: Mapping[tuple[str, str], Edge], all_units: set[str], layers: Sequence[layering.Layer], out: TextIO
) -> None:
    imports: dict[str, list[Edge]] = {}
    for (importer, _), edge in sorted(edges.items()):
        imports.setdefault(importer, []).append(edge)
    placed = {unit for layer in layers for unit in layer.units}
    print(f"{len(all_units)} units; each imports (fn: only inside functions, type: only for type checking)",
          file=out)
    for n, layer in reversed(list(enumerate(layers, start=1))):
        print(f"layer {n}, {layer.name}: {layer.holds}", file=out)
        for unit in layer.units:
            if unit in all_units:
                print(f"  {unit:<18} -> {_targets(imports.get(unit, []))}", file=out)
    for unit in sorted(all_units - placed):
        print(f"in no layer:\n  {unit:<18} -> {_targets(imports.get(unit, []))}", file=out)


def _targets(edges: list[Edge]) -> str:
    return " ".join(edge.label for edge in edges) or "-"


def _report_sizes(found: list[sizes.TooLong], out: TextIO) -> int:
    limits = f"{sizes.MAX_MODULE_LINES} lines a module, {sizes.MAX_FUNCTION_LINES} a function"
    if not found:
        print(f"sizes OK: nothing over {limits}", file=out)
        return 0
    print(f"\nover the size limits ({limits}):", file=out)
    for item in found:
        print(f"  {item.where:<60} {item.lines} lines", file=out)
    return TOO_LONG


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m zeroserve.devtools.layout",
        description="Print zeroserve's package import graph and check it against its layering.",
    )
    parser.add_argument(
        "--sizes", action="store_true", help="also report modules and functions over the size limits (exit 2)"
    )
    parser.add_argument(
        "--src", type=Path, default=Path(__file__).resolve().parents[1],
        help="the package directory to read (default: this zeroserve's)",
    )
    args = parser.parse_args(argv)
    return run(args.src, sys.stdout, check_sizes=args.sizes)


if __name__ == "__main__":
    sys.exit(main())
