"""Shared fixtures: a real server process, real boto3 clients, tiny real models."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from models import make_tiny_bert
from server import ServerProcess, deploy, pack_model

TINY_LABELS = {0: "NEGATIVE", 1: "POSITIVE"}


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("tiny") / "model", id2label=TINY_LABELS)


@pytest.fixture(scope="session")
def tiny_tarball(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pack_model(tiny_model_dir, tmp_path_factory.mktemp("artifacts") / "model.tar.gz")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("server") / "data") as running:
        yield running


@pytest.fixture(scope="session")
def sm(server: ServerProcess) -> Any:
    return server.sagemaker()


@pytest.fixture(scope="session")
def rt(server: ServerProcess) -> Any:
    return server.runtime()


@pytest.fixture(scope="session")
def tiny_endpoint(sm: Any, tiny_tarball: Path) -> str:
    """An InService endpoint serving the tiny classifier, shared by the tests that only invoke it."""
    described = deploy(sm, "tiny", str(tiny_tarball))
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    return "tiny"
