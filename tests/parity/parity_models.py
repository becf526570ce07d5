"""The checkpoints the parity suite serves with zeroserve and with the toolkit (same files for both): a seeded
tiny BERT per task, and the packaged MiniLM (real weights) where accuracy matters."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from models import _exporter_fingerprint, default_cache_dir, minilm_dir, source_of, tiny_bundle

NER_LABELS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}
SENTIMENT_LABELS = {0: "NEGATIVE", 1: "POSITIVE"}
MINILM = "minilm-feature-extraction"
CUSTOM = "custom-script"
# A SageMaker inference script: the hooks see what the toolkit hands them (body type, content type, Accept).
CUSTOM_SCRIPT = """
import json


def input_fn(input_data, content_type):
    data = json.loads(input_data)
    return {"inputs": data["text"], "body": type(input_data).__name__, "content_type": content_type}


def predict_fn(data, model):
    if data["inputs"] == "boom":
        raise ValueError("user code exploded")
    labels = model(data["inputs"], top_k=None)
    return {"body": data["body"], "content_type": data["content_type"], "labels": labels}


def output_fn(prediction, accept):
    return json.dumps({**prediction, "accept": accept})
"""


def task_of(model: str) -> str:
    return {MINILM: "feature-extraction", CUSTOM: "text-classification"}.get(model, model)


def checkpoint(model: str) -> Path:
    """The folder the toolkit loads for `model`."""
    return minilm_dir() if model == MINILM else source_of(bundle(model, "onnx"))


def bundle(model: str, runtime: str) -> Path:
    """fp32 bundle of `model` (a task name for its tiny BERT, or MINILM) for `runtime`."""
    if model == MINILM:
        return _minilm_bundle(runtime)
    if model == CUSTOM:
        return tiny_bundle(
            task="text-classification",
            runtime=runtime,
            quantize=False,
            id2label=SENTIMENT_LABELS,
            code_files={"inference.py": CUSTOM_SCRIPT},
        )
    labels = {"token-classification": NER_LABELS, "text-classification": SENTIMENT_LABELS}.get(model)
    return tiny_bundle(task=model, runtime=runtime, quantize=False, id2label=labels)


def _minilm_bundle(runtime: str) -> Path:
    from zeroserve.conversion.export import build_bundle

    root = default_cache_dir()
    target = root / f"minilm-feature-extraction-{runtime}-{_exporter_fingerprint()}"
    if not (target / "bundle.json").is_file():
        root.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".minilm.", dir=root))
        build_bundle(minilm_dir(), scratch / "b", task="feature-extraction", runtime=runtime, quantize=False)
        with contextlib.suppress(OSError):  # a concurrent test process published it first
            os.rename(scratch / "b", target)
        shutil.rmtree(scratch, ignore_errors=True)
    return target
