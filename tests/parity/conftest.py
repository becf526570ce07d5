"""Fixtures for the parity suite: the real toolkit's answers to every case, computed once per session."""

from __future__ import annotations

import pytest
from parity_cases import CASES
from parity_models import bundle
from toolkit_reference import ToolkitAnswer, parity_python, run_toolkit

from models import source_of


@pytest.fixture(scope="session")
def toolkit_answers() -> dict[str, list[ToolkitAnswer]]:
    python = parity_python()
    if python is None:
        pytest.skip("the reference toolkit's venv is absent: run `make parity-venv` (make test builds it)")
    tasks = list(CASES)
    models = [
        {
            "model_dir": source_of(bundle(task, "onnx")),
            "task": task,
            "cases": [(body, content_type, accept) for _, body, content_type, accept in CASES[task]],
        }
        for task in tasks
    ]
    return dict(zip(tasks, run_toolkit(python, models), strict=True))
