"""The peers' own environment, `bench/.venv-peers`: created on first use with the ordinary pip client.

torch is installed first and pinned (torch==2.13.0, the CPU wheel): left to itself, pip would pull a
multi-GB CUDA build as a dependency of the serving frameworks.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.context import log

VENV = Path(__file__).resolve().parent / ".venv-peers"
PYTHON = VENV / "bin" / "python"
BASE_PACKAGES = ("transformers", "fastapi", "uvicorn", "onnxruntime", "tokenizers", "numpy")
# framework -> (pip requirement, module that proves it is importable)
FRAMEWORKS = {"ray-serve": ("ray[serve]", "ray.serve"), "litserve": ("litserve", "litserve")}


def _pip(*args: str) -> tuple[bool, str]:
    done = subprocess.run([str(PYTHON), "-m", "pip", "install", "-q", *args], capture_output=True, text=True)
    lines = (done.stderr or done.stdout).strip().splitlines()
    return done.returncode == 0, lines[-1] if lines else ""


def importable(module: str) -> bool:
    if not PYTHON.exists():
        return False
    return subprocess.run([str(PYTHON), "-c", f"import {module}"], capture_output=True).returncode == 0


def ensure() -> dict[str, str]:
    """Make the environment; return {name: reason} for whatever could not be installed ("fastapi" for the
    base, else a framework name). Empty means everything is there."""
    problems: dict[str, str] = {}
    if not PYTHON.exists():
        log(f"peers: creating {VENV} (torch==2.13.0 first, then the peers; a few minutes, once)")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        ok, why = _pip("torch==2.13.0")
        if not ok:
            return {"fastapi": f"pip install torch==2.13.0 failed: {why}"}
    if not all(importable(m) for m in ("fastapi", "transformers", "onnxruntime", "uvicorn")):
        ok, why = _pip(*BASE_PACKAGES)
        if not ok:
            return {"fastapi": f"pip install {' '.join(BASE_PACKAGES)} failed: {why}"}
    for name, (requirement, module) in FRAMEWORKS.items():
        if importable(module):
            continue
        log(f"peers: installing {requirement}")
        ok, why = _pip(requirement)
        if not ok or not importable(module):
            problems[name] = f"pip install {requirement} failed: {why}"
    return problems
