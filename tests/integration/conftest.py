"""Artifacts with custom code, for tests that need a model to misbehave on request."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from server import pack_model

# predict_fn overrides the default prediction (the inference toolkit contract); the input text picks a
# behaviour so one endpoint can sleep, crash or allocate on demand.
MISBEHAVING_INFERENCE = """
import os
import time

_HELD = []  # what "touch:" keeps resident, so the worker's RSS stays up after it answers


def predict_fn(data, model):
    text = data["inputs"]
    if text.startswith("sleep:"):
        time.sleep(float(text.split(":", 1)[1]))
        return [{"slept": True, "pid": os.getpid()}]
    if text == "crash":
        os._exit(3)
    if text.startswith("touch:"):  # resident, not just reserved: every page written
        _HELD.append(b"x" * (int(text.split(":", 1)[1]) * 1024 * 1024))
        return [{"touched_mb": len(_HELD[-1]) // (1024 * 1024), "pid": os.getpid()}]
    if text == "spin":
        while True:
            pass
    if text.startswith("alloc:"):
        blob = bytearray(int(text.split(":", 1)[1]) * 1024 * 1024)
        return [{"allocated_mb": len(blob) // (1024 * 1024)}]
    return [{"echo": text, "pid": os.getpid()}]
"""


@pytest.fixture(scope="session")
def misbehaving_tarball(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("misbehaving") / "model"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "code").mkdir()
    (folder / "code" / "inference.py").write_text(MISBEHAVING_INFERENCE)
    return pack_model(folder, folder.parent / "model.tar.gz")
