"""Tiny bundles for the runtime and conversion tests, built once and cached (see tests/models.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from models import tiny_bundle

NER_LABELS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}


@pytest.fixture(scope="session")
def bundle_for() -> Callable[..., Path]:
    """bundle_for(task, quantize=False, **options): fp32 by default so comparisons with transformers are
    tight; the int8 path has its own tests."""

    def build(task: str, *, quantize: bool = False, **options: Any) -> Path:
        if task == "token-classification":
            options.setdefault("id2label", NER_LABELS)
        return tiny_bundle(task=task, quantize=quantize, **options)

    return build
