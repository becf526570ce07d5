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
    # One intra-op thread: the sample is two short sentences, and with a thread per core torch's OpenMP
    # workers spin between the tiny ops, measured 1.1-1.4 s of CPU for this step against 0.55 s.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            expected = [o.numpy() for o in _Wrapper(model)(*tensors)]
        trace(_Wrapper(model), tensors, out_path, input_names, output_names, dynamic_axes)
    finally:
        torch.set_num_threads(threads)
    # The raw graph, unoptimized: the check is about tracing, and skipping optimization saves ~0.2 s.
    actual = run_onnx(out_path, sample, disable_optimizations=True)
    for name, want, got in zip(output_names, expected, actual, strict=True):
        tolerance = 1e-3 * max(1.0, float(np.abs(want).max()))
        if want.shape != got.shape or not np.allclose(want, got, atol=tolerance, rtol=1e-3):
            diff = float(np.abs(want - got).max()) if want.shape == got.shape else float("nan")
            raise ExportMismatch(f"ONNX output {name!r} differs from PyTorch (max abs diff {diff:.3g})")
    return ExportedModel(input_names=input_names, output_names=output_names)


def trace(
    module: Any,
    tensors: tuple[Any, ...],
    out_path: Path,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axes: Mapping[str, Mapping[int, str]],
) -> None:
    """TorchScript-trace `module` on `tensors` into `out_path`, the one exporter call of every graph."""
    import torch

    with warnings.catch_warnings():
        # Tracer and deprecation chatter would end up in the deployer's logs on every deploy.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            tensors,
            str(out_path),
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_axes={name: dict(axes) for name, axes in dynamic_axes.items()},
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )


# The int8 schemes the fidelity gate chooses from, fastest first (int8_gate.py).
DYNAMIC = "dynamic"
BLOCKWISE = "blockwise"
INT8_SCHEMES = (DYNAMIC, BLOCKWISE)
# Weights per scale in the blockwise scheme: 64 measured as fast as 128 and as exact as 32 (MiniLM).
BLOCK_SIZE = 64


def prepare(fp32_path: Path, out_path: Path) -> None:
    """The fp32 graph with onnxruntime's extended fusions applied (GELU + bias, scaled attention MatMuls,
    shape arithmetic folded): quantizing this graph rather than the raw export leaves fewer ops around the
    int8 MatMuls, measured ~15% faster than quantize-then-optimize at batch 1 and 16, same answers."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(out_path)
    options.log_severity_level = 3
    ort.InferenceSession(str(fp32_path), options, providers=["CPUExecutionProvider"])


def quantize_int8(
    fp32_path: Path,
    out_path: Path,
    scheme: str = DYNAMIC,
    calibration: Sequence[Mapping[str, np.ndarray]] = (),
) -> None:
    """int8 weights, 4x smaller, by one of two schemes:

    - dynamic: each MatMul quantizes its whole input with one scale at run time (DynamicQuantizeMatMul).
      Fastest (~2x fp32). One scale per tensor is coarse where a few channels carry outliers, so inputs
      with outlier channels are first smoothed on `calibration` (smoothing.py), which halves the error.
    - blockwise: int8 weights with a scale per 64 weights, and activations quantized per row and per
      block at run time (MatMulNBits, 8 bits, int8 compute). Tracks fp32 ~3x more closely than smoothed
      dynamic; ~1.5-2x faster than fp32 at batch 1, about as fast at batch 16.
    """
    if scheme == DYNAMIC:
        if calibration:
            import onnx

            from zeroserve.conversion import smoothing

            model = onnx.load(str(fp32_path))
            smoothing.smooth_model(model, calibration)
            quantize_dynamic(model, out_path)
        else:
            quantize_dynamic(fp32_path, out_path)
    elif scheme == BLOCKWISE:
        quantize_blockwise(fp32_path, out_path)
    else:
        raise ValueError(f"unknown int8 scheme {scheme!r}; use one of {', '.join(INT8_SCHEMES)}")


def quantize_dynamic(fp32: Path | Any, out_path: Path) -> int:
    """Every MatMul by a constant 2-D weight becomes a DynamicQuantizeMatMul (int8 weights, one scale per
    output column; uint8 activations with one scale per tensor, found at run time), and every embedding
    table an fp16 Gather + Cast; returns how many MatMuls. The MatMuls get the same numbers as
    onnxruntime's quantize_dynamic (per_channel, QInt8) once optimized, written directly: its per-channel
    loop in Python took ~1 s of CPU of each MiniLM deploy. Embeddings are fp16, not uint8 with one scale
    per table: that scale was a fifth of the int8 model's score error (measured), fp16's is negligible."""
    from onnx import helper, numpy_helper

    def matmul(node: Any, weight: np.ndarray, base: str) -> tuple[list[Any], list[Any]]:
        scales = np.abs(weight).max(axis=0) / 127.0
        scales[scales == 0] = 1.0
        quantized = np.clip(np.rint(weight / scales), -127, 127).astype(np.int8)
        tensors = [
            numpy_helper.from_array(quantized, f"{base}_B"),
            numpy_helper.from_array(scales.astype(np.float32), f"{base}_scale"),
            numpy_helper.from_array(np.zeros(scales.shape, np.int8), f"{base}_zero_point"),
        ]
        inputs = [node.input[0], f"{base}_B", f"{base}_scale", f"{base}_zero_point"]
        op = helper.make_node(
            "DynamicQuantizeMatMul", inputs, list(node.output), name=base, domain="com.microsoft"
        )
        return [op], tensors

    return _rewrite(fp32, out_path, {"MatMul": matmul, "Gather": _fp16_embedding})


def quantize_blockwise(fp32_path: Path, out_path: Path, block_size: int = BLOCK_SIZE) -> int:
    """Every MatMul by a constant 2-D weight becomes an 8-bit MatMulNBits with int8 compute
    (accuracy_level 4); returns how many. Symmetric per block: the implicit zero point is 128. Embedding
    tables become fp16 Gather + Cast, as in dynamic int8: half the size (MiniLM's bundle 60 -> 36 MB, and
    as much less resident memory per worker and template), no measurable change in the answers."""
    from onnx import helper, numpy_helper

    def matmul(node: Any, weight: np.ndarray, base: str) -> tuple[list[Any], list[Any]]:
        packed, scales = _block_quantize(weight, block_size)
        k, n = weight.shape
        tensors = [
            numpy_helper.from_array(packed, f"{base}_B"),
            numpy_helper.from_array(scales, f"{base}_scales"),
        ]
        op = helper.make_node(
            "MatMulNBits",
            [node.input[0], f"{base}_B", f"{base}_scales"],
            list(node.output),
            name=base,
            domain="com.microsoft",
            K=k,
            N=n,
            bits=8,
            block_size=block_size,
            accuracy_level=4,
        )
        return [op], tensors

    return _rewrite(fp32_path, out_path, {"MatMul": matmul, "Gather": _fp16_embedding})


def _fp16_embedding(node: Any, table: np.ndarray, base: str) -> tuple[list[Any], list[Any]]:
    """An embedding lookup from an fp16 copy of the table, cast back to float."""
    import onnx
    from onnx import helper, numpy_helper

    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    ops = [
        helper.make_node(
            "Gather", [f"{base}_table", node.input[1]], [f"{base}_half"], name=base, **attributes
        ),
        helper.make_node(
            "Cast", [f"{base}_half"], list(node.output), name=f"{base}_cast", to=onnx.TensorProto.FLOAT
        ),
    ]
    return ops, [numpy_helper.from_array(table.astype(np.float16), f"{base}_table")]


def _rewrite(fp32: Path | Any, out_path: Path, rules: Mapping[str, Any]) -> int:
    """Replace each node whose op has a rule and whose weight (MatMul input 1, Gather input 0) is a float
    2-D initializer by the rule's nodes and tensors; drop initializers no node uses any more. Returns how
    many MatMuls were replaced. `fp32`: the model's file, or the model itself (changed in place)."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(fp32)) if isinstance(fp32, Path) else fp32
    graph = model.graph
    weights = {init.name: init for init in graph.initializer}
    nodes: list[Any] = []
    added: list[Any] = []
    matmuls = 0
    for index, node in enumerate(graph.node):
        slot = {"MatMul": 1, "Gather": 0}.get(node.op_type)
        weight = weights.get(node.input[slot]) if slot is not None and node.op_type in rules else None
        if weight is None or len(weight.dims) != 2 or weight.data_type != onnx.TensorProto.FLOAT:
            nodes.append(node)
            continue
        base = f"{node.name or node.op_type}_{index}_q8"
        ops, tensors = rules[node.op_type](node, numpy_helper.to_array(weight).astype(np.float32), base)
        nodes.extend(ops)
        added.extend(tensors)
        matmuls += node.op_type == "MatMul"
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in graph.node for name in node.input}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept + added)
    if not any(opset.domain == "com.microsoft" for opset in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.save(model, str(out_path))
    return matmuls


def _block_quantize(weight: np.ndarray, block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """[K, N] float -> (uint8 [N, blocks, block_size], float32 scales [N * blocks]), as MatMulNBits
    stores them: transposed, K zero-padded to whole blocks, q + 128 for q in [-127, 127]."""
    k, n = weight.shape
    blocks = -(-k // block_size)
    padded = np.zeros((blocks * block_size, n), np.float32)
    padded[:k] = weight
    grouped = padded.T.reshape(n, blocks, block_size)
    scales = np.abs(grouped).max(axis=2) / 127.0
    scales[scales == 0] = 1.0
    quantized = np.clip(np.rint(grouped / scales[:, :, None]), -127, 127) + 128
    return quantized.astype(np.uint8), scales.reshape(-1).astype(np.float32)


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
