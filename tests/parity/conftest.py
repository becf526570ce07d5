"""Fixtures for the parity suite: the real toolkit's answers to every case, computed once per session."""

from __future__ import annotations

import pytest
from parity_cases import CASES
from parity_models import checkpoint, task_of
from toolkit_reference import ToolkitAnswer, parity_python, run_toolkit


@pytest.fixture(scope="session")
def toolkit_answers() -> dict[str, list[ToolkitAnswer]]:
    python = parity_python()
    if python is None:
        pytest.skip("the reference toolkit's venv is absent: run `make parity-venv` (make test builds it)")
    names = list(CASES)
    models = [
        {
            "model_dir": checkpoint(name),
            "task": task_of(name),
            "cases": [(body, content_type, accept) for _, body, content_type, accept in CASES[name]],
        }
        for name in names
    ]
    return dict(zip(names, run_toolkit(python, models), strict=True))
