"""The tiny seeded generative models, saved once per session, and their torch `NextTokenModel` adapters."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_generators import KINDS, TorchNextTokenModel, build_tiny_model, load_tiny_model


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("tiny_generators")
    return {kind: build_tiny_model(kind, directory) for kind in KINDS}


@pytest.fixture(scope="session")
def torch_models(tiny_models: dict[str, Path]) -> dict[str, TorchNextTokenModel]:
    return {kind: TorchNextTokenModel(load_tiny_model(path)) for kind, path in tiny_models.items()}
