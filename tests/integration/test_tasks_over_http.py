"""The Hugging Face inference-toolkit contract through the whole stack: HF_TASK picks the task, the PyTorch
runtime serves what ONNX would, and parameters reach the task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from models import make_tiny_bert
from server import deploy, invoke_json, pack_model


@pytest.fixture(scope="module")
def feature_tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = make_tiny_bert(tmp_path_factory.mktemp("features") / "model", task="feature-extraction")
    return pack_model(folder, folder.parent / "model.tar.gz")


def test_torch_runtime_answers_like_onnx(sm: Any, rt: Any, tiny_tarball: Path, tiny_endpoint: str) -> None:
    env = {"HF_TASK": "text-classification", "ZEROSERVE_RUNTIME": "torch", "ZEROSERVE_QUANTIZE": "false"}
    assert deploy(sm, "tiny-torch", str(tiny_tarball), env=env)["EndpointStatus"] == "InService"
    fp32 = {"HF_TASK": "text-classification", "ZEROSERVE_QUANTIZE": "false"}
    assert deploy(sm, "tiny-onnx-fp32", str(tiny_tarball), env=fp32)["EndpointStatus"] == "InService"
    texts = ["a fine film", "dull and long", "I would watch it again"]
    by_torch = invoke_json(rt, "tiny-torch", {"inputs": texts})
    by_onnx = invoke_json(rt, "tiny-onnx-fp32", {"inputs": texts})
    for torch_answer, onnx_answer in zip(by_torch, by_onnx, strict=True):
        assert torch_answer["label"] == onnx_answer["label"]
        assert torch_answer["score"] == pytest.approx(onnx_answer["score"], abs=1e-4)


def test_top_k_returns_every_label_ranked(rt: Any, tiny_endpoint: str) -> None:
    answer = invoke_json(rt, tiny_endpoint, {"inputs": "so so", "parameters": {"top_k": None}})
    labels = [item["label"] for item in answer]
    assert sorted(labels) == ["NEGATIVE", "POSITIVE"]
    assert answer[0]["score"] >= answer[1]["score"]
    assert sum(item["score"] for item in answer) == pytest.approx(1.0, abs=1e-4)


def test_feature_extraction_inferred_from_config_returns_token_embeddings(
    sm: Any, rt: Any, feature_tarball: Path
) -> None:
    # No HF_TASK: the task comes from config.json's architectures (BertModel), as the inference toolkit does.
    assert deploy(sm, "features", str(feature_tarball), env={})["EndpointStatus"] == "InService"
    answer = invoke_json(rt, "features", {"inputs": "hello world"})
    assert len(answer) == 1  # one input
    tokens = answer[0]
    assert len(tokens) == 4  # [CLS] hello world [SEP]
    assert all(len(vector) == 32 for vector in tokens)  # the tiny model's hidden size
