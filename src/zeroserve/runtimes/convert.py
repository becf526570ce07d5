"""Checkpoint -> ONNX file the worker can load fast: export, check, quantize, pre-optimize.

Runs only at deploy, in the exporter subprocess, so it may import torch and transformers (lazily, so that
importing this module stays cheap). Every step that is slow at load time is done here once instead: graph
optimization above all (a pre-optimized file opens in ~29 ms with optimizations off, against ~83 ms).
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zeroserve.runtimes import task_names as t

# The transformers Auto class that carries the right head for each task.
HEAD_CLASSES = {
    t.TEXT_CLASSIFICATION: "AutoModelForSequenceClassification",
    t.ZERO_SHOT_CLASSIFICATION: "AutoModelForSequenceClassification",
    t.TOKEN_CLASSIFICATION: "AutoModelForTokenClassification",
    t.QUESTION_ANSWERING: "AutoModelForQuestionAnswering",
    t.FILL_MASK: "AutoModelForMaskedLM",
    t.FEATURE_EXTRACTION: "AutoModel",
}

OUTPUT_NAMES = {
    t.TEXT_CLASSIFICATION: ("logits",),
    t.ZERO_SHOT_CLASSIFICATION: ("logits",),
    t.TOKEN_CLASSIFICATION: ("logits",),
    t.QUESTION_ANSWERING: ("start_logits", "end_logits"),
    t.FILL_MASK: ("logits",),
    t.FEATURE_EXTRACTION: ("last_hidden_state",),
}

# Outputs with one row per token get a dynamic sequence axis; the rest are per sequence.
_TOKEN_LEVEL = {"start_logits", "end_logits", "last_hidden_state"}
_TOKEN_LEVEL_TASKS = {t.TOKEN_CLASSIFICATION, t.FILL_MASK}

OPSET = 17


class ExportMismatch(RuntimeError):
    """The exported graph does not compute what the PyTorch model computes."""


@dataclass(frozen=True)
class ExportedModel:
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]


def load_torch_model(checkpoint: Path, task: str) -> Any:
    """The checkpoint with the task's head, in eval mode. Eager attention traces into plain ONNX ops."""
    import transformers

    head = getattr(transformers, HEAD_CLASSES[task])
    try:
        model = head.from_pretrained(checkpoint, attn_implementation="eager")
    except (TypeError, ValueError):
        model = head.from_pretrained(checkpoint)
    return model.eval()


def accepts_token_type_ids(model: Any) -> bool:
    return "token_type_ids" in inspect.signature(model.forward).parameters


def export_onnx(model: Any, task: str, sample: Mapping[str, np.ndarray], out_path: Path) -> ExportedModel:
    """Trace `model` to ONNX with dynamic batch and sequence axes, then check it against PyTorch on `sample`
    (which should contain padding, the case tracing most easily gets wrong)."""
    import torch

    input_names = tuple(sample)
    output_names = OUTPUT_NAMES[task]

    class _Wrapper(torch.nn.Module):
        # A positional forward with a fixed output tuple: what the TorchScript exporter can trace.
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *tensors: Any) -> tuple[Any, ...]:
            out = self.inner(**dict(zip(input_names, tensors, strict=True)), return_dict=True)
            return tuple(out[name] for name in output_names)

    dynamic_axes: dict[str, dict[int, str]] = {name: {0: "batch", 1: "sequence"} for name in input_names}
    for name in output_names:
        token_level = name in _TOKEN_LEVEL or task in _TOKEN_LEVEL_TASKS
        dynamic_axes[name] = {0: "batch", 1: "sequence"} if token_level else {0: "batch"}
    tensors = tuple(torch.from_numpy(sample[name]) for name in input_names)
    with torch.inference_mode():
        expected = [o.numpy() for o in _Wrapper(model)(*tensors)]
    with warnings.catch_warnings():
        # Tracer and deprecation chatter would end up in the deployer's logs on every deploy.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Wrapper(model),
            tensors,
            str(out_path),
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_axes=dynamic_axes,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    actual = run_onnx(out_path, sample)
    for name, want, got in zip(output_names, expected, actual, strict=True):
        tolerance = 1e-3 * max(1.0, float(np.abs(want).max()))
        if want.shape != got.shape or not np.allclose(want, got, atol=tolerance, rtol=1e-3):
            diff = float(np.abs(want - got).max()) if want.shape == got.shape else float("nan")
            raise ExportMismatch(f"ONNX output {name!r} differs from PyTorch (max abs diff {diff:.3g})")
    return ExportedModel(input_names=input_names, output_names=output_names)


def quantize_int8(fp32_path: Path, out_path: Path) -> None:
    """Dynamic int8 quantization, per-channel weights: about 4x smaller and ~2x faster on CPU, while
    activations stay float at the boundaries so no calibration data is needed."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(fp32_path, out_path, per_channel=True, weight_type=QuantType.QInt8)


def optimize(in_path: Path, out_path: Path) -> None:
    """Apply onnxruntime's full graph optimization once and save the result, so workers can open the
    model with optimizations disabled. The saved graph targets this machine's CPU execution provider,
    which is fine: deploy and serve happen on the same host."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(out_path)
    ort.InferenceSession(str(in_path), options, providers=["CPUExecutionProvider"])


def run_onnx(path: Path, feeds: Mapping[str, np.ndarray], disable_optimizations: bool = False) -> list[Any]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    if disable_optimizations:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return list(session.run(None, dict(feeds)))


def sample_inputs(encode: Any, input_names: Sequence[str]) -> dict[str, np.ndarray]:
    """Two sequences of different lengths, padded: `encode(texts) -> {name: int64 array}`."""
    arrays: dict[str, np.ndarray] = encode(
        ["zeroserve export check", "a somewhat longer sentence, so that the first one is padded."]
    )
    return {name: arrays[name] for name in input_names}
