"""zeroserve's benchmark suite: `python -m bench` writes BENCHMARKS.md and bench/plots/*.png.

The repository root goes on sys.path so the suite can reuse the helpers in tests/ (server process, models).
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
