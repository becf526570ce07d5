"""The two ways every peer serves the sentiment model, so framework overhead and runtime are separated:

- `pipeline`: transformers `pipeline("text-classification")` on the checkpoint, as people write it;
- `onnx`: zeroserve's int8 ONNX bundle run with plain onnxruntime + tokenizers (no zeroserve code).

A peer runs with its own defaults unless PEER_* variables (see `tuning`) ask for its best documented
configuration (batching, several workers). Runs inside bench/.venv-peers. Both take `inputs` (a string or
a list) and return one {label, score} per text.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

Classify = Callable[[Any], list[dict[str, Any]]]


def pipeline_classifier(checkpoint: str) -> Classify:
    from transformers import pipeline

    classify: Classify = pipeline("text-classification", model=checkpoint, device=-1)
    return classify


class OnnxClassifier:
    """onnxruntime session on the bundle's model.onnx, the bundle's tokenizer.json, softmax on the logits."""

    def __init__(self, bundle_dir: str) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = Path(bundle_dir)
        manifest = json.loads((folder / "bundle.json").read_text())
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=manifest["max_length"])
        self.tokenizer.enable_padding(pad_id=manifest["pad_token_id"], pad_token=manifest["pad_token"])
        options = ort.SessionOptions()
        threads = tuning("PEER_ORT_THREADS")
        if threads:  # a tuned configuration with several workers gives each its share of the cores
            options.intra_op_num_threads = int(threads)
        self.session = ort.InferenceSession(
            str(folder / manifest["model_file"]), options, providers=["CPUExecutionProvider"]
        )
        self.input_names = list(manifest["input_names"])
        self.labels = {int(k): v for k, v in manifest["id2label"].items()}

    def __call__(self, inputs: Any) -> list[dict[str, Any]]:
        import numpy as np

        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        encodings = self.tokenizer.encode_batch(texts)
        arrays = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        (logits,) = self.session.run(None, {name: arrays[name] for name in self.input_names})[:1]
        exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
        probs = exp / exp.sum(axis=-1, keepdims=True)
        return [{"label": self.labels[int(p.argmax())], "score": float(p.max())} for p in probs]


def tuning(name: str, default: float = 0) -> float:
    """A peer's tuned setting from the environment (PEER_MAX_BATCH_SIZE, PEER_BATCH_WAIT_MS, PEER_WORKERS,
    PEER_ORT_THREADS, PEER_MAX_ONGOING, PEER_FAST_QUEUE); `default` (their own default) when unset."""
    import os

    raw = os.environ.get(name, "")
    return float(raw) if raw else default


def build(mode: str, checkpoint: str, bundle_dir: str) -> Classify:
    if mode == "pipeline":
        return pipeline_classifier(checkpoint)
    if mode == "onnx":
        return OnnxClassifier(bundle_dir)
    raise ValueError(f"unknown mode {mode!r}")


def arguments(argv: list[str] | None = None) -> Any:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=("pipeline", "onnx"), required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--port", type=int, required=True)
    return parser.parse_args(argv)
