"""The layout check: the real tree keeps its layering, and made-up trees with each kind of fault fail it."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

from zeroserve.devtools import layering, layout, sizes
from zeroserve.devtools.import_graph import Where, package_graph, scan, units
from zeroserve.devtools.layering import Layer

REAL_PACKAGE = Path(layout.__file__).resolve().parents[1]


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Files under root/zeroserve, every folder given an __init__.py; returns the package directory."""
    package = root / "zeroserve"
    for name, text in {"__init__.py": "", **files}.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        for folder in [path.parent, *path.parent.parents]:
            if folder == package.parent:
                break
            (folder / "__init__.py").touch()
        path.write_text(text)
    return package


def check(package: Path, layers: tuple[Layer, ...], *, check_sizes: bool = False) -> tuple[int, str]:
    out = io.StringIO()
    status = layout.run(package, out, check_sizes=check_sizes, layers=layers, tolerated={})
    return status, out.getvalue()


def run_command(*args: str) -> subprocess.CompletedProcess[str]:
    # this checkout's sources first, as in the test process
    path = os.pathsep.join([str(REAL_PACKAGE.parent), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.run(
        [sys.executable, "-m", "zeroserve.devtools.layout", *args],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )


ONE_LAYER = (Layer("all", ("zeroserve", "a", "b"), "everything"),)
TWO_LAYERS = (Layer("low", ("zeroserve", "low"), "below"), Layer("high", ("high",), "above"))


def test_the_real_tree_has_no_import_cycle_and_no_import_of_a_layer_above() -> None:
    result = run_command()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: no import cycle" in result.stdout
    # the graph is printed: one line per unit, top layer first
    assert "  api                -> " in result.stdout
    assert result.stdout.index("entry points") < result.stdout.index("foundation")


def test_every_unit_of_the_real_tree_is_in_a_layer_and_in_one_only() -> None:
    placed = [unit for layer in layering.LAYERS for unit in layer.units]
    assert len(placed) == len(set(placed))
    assert units(scan(REAL_PACKAGE), layering.UNIT_OF_MODULE) <= set(placed)


def test_neither_the_server_process_nor_api_imports_torch_or_onnxruntime() -> None:
    assert layering.check_heavy_imports(scan(REAL_PACKAGE)) == []


def test_a_cycle_between_two_packages_fails_the_command(tmp_path: Path) -> None:
    # Real unit names, so the command's own layering applies; the import back sits inside a function,
    # which hides it from Python's import machinery but not from the layering.
    package = write_tree(tmp_path, {
        "database/rows.py": "from zeroserve.scheduler.pool import Pool\n",
        "scheduler/pool.py": "class Pool:\n    def rows(self):\n        from zeroserve.database import rows",
    })
    result = run_command("--src", str(package))
    assert result.returncode == layout.LAYERING_BROKEN, result.stdout
    assert "import cycle: database -> scheduler -> database" in result.stdout
    assert "database imports scheduler, a layer above it: zeroserve.database.rows:1" in result.stdout


def test_a_cycle_inside_one_layer_fails_the_check(tmp_path: Path) -> None:
    package = write_tree(tmp_path, {"a/x.py": "from zeroserve.b import y", "b/y.py": "import zeroserve.a.x"})
    status, out = check(package, ONE_LAYER)
    assert status == layout.LAYERING_BROKEN
    assert "[cycle] import cycle: a -> b -> a" in out


def test_a_cycle_made_only_by_a_type_checking_import_fails_the_check(tmp_path: Path) -> None:
    package = write_tree(tmp_path, {
        "a/x.py": "from zeroserve.b import y\n",
        "b/y.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from zeroserve.a.x import X\n",
    })
    edges = package_graph(scan(package), {})
    assert [i.where for i in edges[("b", "a")].imports] == [Where.TYPE_CHECKING]
    assert edges[("b", "a")].label == "a(type)"
    status, out = check(package, ONE_LAYER)
    assert status == layout.LAYERING_BROKEN
    assert "import cycle: a -> b -> a" in out


def test_a_package_importing_a_layer_above_fails_the_check(tmp_path: Path) -> None:
    package = write_tree(tmp_path, {"low/m.py": "def f():\n    from ..high import n\n", "high/n.py": ""})
    status, out = check(package, TWO_LAYERS)
    assert status == layout.LAYERING_BROKEN
    assert "[upward] low imports high, a layer above it: zeroserve.low.m:2 imports zeroserve.high.n" in out


def test_a_package_importing_a_layer_below_passes(tmp_path: Path) -> None:
    package = write_tree(tmp_path, {"high/n.py": "from zeroserve.low import m\n", "low/m.py": ""})
    status, out = check(package, TWO_LAYERS)
    assert status == 0, out
    assert "  high               -> low" in out


def test_a_package_in_no_layer_fails_the_check(tmp_path: Path) -> None:
    package = write_tree(tmp_path, {"low/m.py": "", "stray/s.py": ""})
    status, out = check(package, TWO_LAYERS)
    assert status == layout.LAYERING_BROKEN
    assert "[unplaced] stray is in no layer" in out


def test_a_toleration_that_no_longer_applies_fails_the_check(tmp_path: Path) -> None:
    package = write_tree(tmp_path, {"high/n.py": "", "low/m.py": ""})
    tree = scan(package)
    edges = package_graph(tree, {})
    findings = layering.check_graph(edges, units(tree, {}), TWO_LAYERS, {("low", "high"): "fixed since"})
    assert [f.kind for f in findings] == ["stale"]


def test_a_tolerated_upward_import_is_printed_and_passes(tmp_path: Path) -> None:
    package = write_tree(tmp_path, {"low/m.py": "import zeroserve.high.n\n", "high/n.py": ""})
    out = io.StringIO()
    status = layout.run(package, out, layers=TWO_LAYERS, tolerated={("low", "high"): "waits for a fix"})
    assert status == 0, out.getvalue()
    assert "low -> high: waits for a fix" in out.getvalue()


def test_torch_in_a_module_the_server_loads_or_onnxruntime_in_api_fails_the_check(tmp_path: Path) -> None:
    package = write_tree(tmp_path, {
        "http_server.py": "from zeroserve.runtimes import model\n",
        "runtimes/model.py": "def load():\n    import torch\n",
        "runtimes/worker_only.py": "import onnxruntime\n",  # the server never loads it: allowed
        "api/app.py": "def f():\n    import onnxruntime.capi\n",
    })
    messages = [f.message for f in layering.check_heavy_imports(scan(package))]
    assert messages == [
        "zeroserve.api.app:2 imports onnxruntime.capi",
        "zeroserve.runtimes.model:2 imports torch (function level), and the server process loads that module",
    ]


def test_modules_and_functions_over_the_limits_are_reported_with_a_separate_status(tmp_path: Path) -> None:
    package = write_tree(tmp_path, {
        "a/big.py": "x = 1\n" * (sizes.MAX_MODULE_LINES + 1),
        "a/ok.py": "x = 1\n" * sizes.MAX_MODULE_LINES,
        "b/f.py": "class C:\n"
        + _indent(_function("too_long", sizes.MAX_FUNCTION_LINES + 1))
        + _indent(_function("fits", sizes.MAX_FUNCTION_LINES)),
    })
    status, out = check(package, ONE_LAYER, check_sizes=True)
    assert status == layout.TOO_LONG, out
    assert [(t.where, t.lines) for t in sizes.too_long(scan(package))] == [
        ("zeroserve/a/big.py", sizes.MAX_MODULE_LINES + 1),
        ("zeroserve/b/f.py:C.too_long", sizes.MAX_FUNCTION_LINES + 1),
    ]
    assert check(package, ONE_LAYER)[0] == 0  # without --sizes, size is not checked


def test_both_faults_set_both_exit_bits(tmp_path: Path) -> None:
    package = write_tree(tmp_path, {
        "a/x.py": "from zeroserve.b import y\n" + "x = 1\n" * sizes.MAX_MODULE_LINES,
        "b/y.py": "from zeroserve.a import x\n",
    })
    assert check(package, ONE_LAYER, check_sizes=True)[0] == layout.LAYERING_BROKEN | layout.TOO_LONG


def _function(name: str, lines: int) -> str:
    """A decorated function of exactly `lines` lines."""
    return f"@staticmethod\ndef {name}():\n" + "    x = 1\n" * (lines - 2)


def _indent(text: str) -> str:
    return "".join(f"    {line}\n" for line in text.splitlines())


def test_the_layering_table_in_docs_architecture_is_the_one_the_check_uses() -> None:
    doc = (Path(__file__).resolve().parents[3] / "docs" / "architecture.md").read_text()
    table = doc[doc.index("| layer | packages |"):].split("\n\n")[0].splitlines()[2:]
    documented = []
    for row in table:
        layer, packages = row.strip("|").split("|")
        units_cell = packages.split("(")[0]  # the first backticked names; what follows in () explains them
        documented.append((layer.strip(), re.findall(r"`([a-z0-9_]+)`", units_cell)))
    defined = [(f"{n} {layer.name}", list(layer.units)) for n, layer in enumerate(layering.LAYERS, start=1)]
    assert documented == defined
