"""zeroserve's benchmark suite: `python -m bench` writes BENCHMARKS.md and bench/plots/*.png.

The repository root goes on sys.path so the suite can reuse the helpers in tests/ (server process, models).
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

# `tests` is a namespace package (no __init__.py), and a regular package of that name anywhere on sys.path
# wins over it: sagemaker's dependency smdebug-rulesconfig installs one into site-packages. Bind the name to
# the repository's folder before anything imports it.
if "tests" not in sys.modules:
    import types

    _tests = types.ModuleType("tests")
    _tests.__path__ = [str(REPO_ROOT / "tests")]
    sys.modules["tests"] = _tests
