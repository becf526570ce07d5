"""The user's SageMaker inference script (`code/inference.py`): find it, list its hooks, import it.

Listing uses `ast`, so the deploy step learns which hooks exist without running untrusted code in the
exporter. Importing happens in the worker only.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from zeroserve.errors import ArtifactError

DEFAULT_PROGRAM = "inference.py"
HOOKS = ("model_fn", "input_fn", "predict_fn", "output_fn", "transform_fn")


def find_script(model_dir: Path, env: Mapping[str, str] | None = None) -> Path | None:
    """`code/<SAGEMAKER_PROGRAM or inference.py>` under `model_dir`, if it exists."""
    program = (env or {}).get("SAGEMAKER_PROGRAM") or DEFAULT_PROGRAM
    path = model_dir / "code" / Path(program).name
    return path if path.is_file() else None


def defined_hooks(script: Path) -> tuple[str, ...]:
    """The inference-toolkit hooks `script` defines at top level."""
    try:
        tree = ast.parse(script.read_bytes(), filename=str(script))
    except SyntaxError as exc:
        raise ArtifactError(f"code/{script.name} has a syntax error at line {exc.lineno}: {exc.msg}") from exc
    names = {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in HOOKS
    }
    return tuple(hook for hook in HOOKS if hook in names)


def import_script(script: Path) -> ModuleType:
    """Import `script` by path with its folder on sys.path, so its sibling modules import as in SageMaker."""
    code_dir = str(script.parent)
    if code_dir not in sys.path:
        sys.path.insert(0, code_dir)
    spec = importlib.util.spec_from_file_location(f"zeroserve_user_{script.stem}", script)
    if spec is None or spec.loader is None:
        raise ArtifactError(f"cannot import code/{script.name}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise ArtifactError(f"importing code/{script.name} failed: {type(exc).__name__}: {exc}") from exc
    return module


def hook(module: ModuleType, name: str) -> Callable[..., Any] | None:
    fn = getattr(module, name, None)
    return fn if callable(fn) else None


def call_hook(fn: Callable[..., Any], *args: Any) -> Any:
    """Call a hook, passing the toolkit's optional trailing `context` argument (None here) when the hook
    declares one more positional parameter than the classic signature."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return fn(*args)
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) == len(args) + 1 and positional[-1].default is inspect.Parameter.empty:
        return fn(*args, None)
    return fn(*args)
