"""The two int8 schemes of conversion/convert.py: what each does to the graph, and how closely each follows
fp32 on a real model with BERT's activation outliers (the packaged MiniLM)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from models import minilm_dir
from zeroserve.conversion import convert, smoothing
from zeroserve.runtimes.tokenizer import TextEncoder
from zeroserve.runtimes.torch_model import load_torch_model

TEXTS = [
    "The service answered the first request quickly.",
    "A plot that never quite comes together, but the score is lovely.",
    "Dull.",
]


def test_block_quantize_stores_transposed_zero_padded_blocks_within_half_a_step() -> None:
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(40, 3)).astype(np.float32)  # K = 40: a full block of 32 and a padded one
    weight[32:, 2] = 0.0  # an all-zero block must not divide by zero
    packed, scales = convert._block_quantize(weight, 32)
    assert packed.shape == (3, 2, 32) and packed.dtype == np.uint8 and scales.shape == (6,)
    steps = scales.reshape(3, 2)
    restored = (packed.astype(np.float32) - 128) * steps[:, :, None]
    restored = restored.reshape(3, 64).T
    assert np.all(restored[40:] == 0)  # the padding holds zeros
    error = np.abs(restored[:40] - weight)
    assert np.all(error <= np.repeat(steps.T, 32, axis=0)[:40] / 2 + 1e-7)
    assert steps[2, 1] == 1.0 and np.all(packed[2, 1, :8] == 128)


@pytest.fixture(scope="module")
def minilm_graphs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("minilm-int8")
    model = load_torch_model(minilm_dir(), "feature-extraction")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    encoder = TextEncoder.from_file(
        minilm_dir() / "tokenizer.json", max_length=128, pad_token="[PAD]", pad_token_id=0, input_names=names
    )
    sample = convert.sample_inputs(lambda texts: encoder.encode(texts).arrays, names)
    paths = {"fp32": folder / "fp32.onnx", "prepared": folder / "prepared.onnx"}
    convert.export_onnx(model, "feature-extraction", sample, paths["fp32"])
    convert.prepare(paths["fp32"], paths["prepared"])
    for scheme in convert.INT8_SCHEMES:
        paths[scheme] = folder / f"{scheme}.onnx"
        convert.quantize_int8(paths["prepared"], paths[scheme], scheme)
    # What a deploy makes: dynamic int8 after smoothing on the packaged calibration texts.
    calibration = [encoder.encode([text]).arrays for text in smoothing.calibration_texts(32)]
    paths["smoothed"] = folder / "smoothed.onnx"
    convert.quantize_int8(paths["prepared"], paths["smoothed"], convert.DYNAMIC, calibration)
    paths["feeds"] = folder / "feeds.npz"
    np.savez(paths["feeds"], **encoder.encode(TEXTS).arrays)
    return paths


def _ops(path: Path) -> list[str]:
    return [node.op_type for node in onnx.load(str(path)).graph.node]


def test_blockwise_replaces_every_weight_matmul_and_keeps_activation_matmuls_float(
    minilm_graphs: dict[str, Path],
) -> None:
    prepared, blockwise = _ops(minilm_graphs["prepared"]), _ops(minilm_graphs["blockwise"])
    # MiniLM: 6 layers x (query, key, value, attention output, FFN in, FFN out).
    assert blockwise.count("MatMulNBits") == 36
    # Attention's activation x activation products have no weight to quantize and stay as they were.
    assert (
        blockwise.count("MatMul") + blockwise.count("FusedMatMul")
        == prepared.count("MatMul") + prepared.count("FusedMatMul") - 36
    )
    weights = {init.name for init in onnx.load(str(minilm_graphs["blockwise"])).graph.initializer}
    assert not any(name.startswith("onnx::MatMul") for name in weights)  # the fp32 copies were dropped


def test_blockwise_follows_fp32_far_more_closely_than_dynamic(minilm_graphs: dict[str, Path]) -> None:
    feeds = dict(np.load(minilm_graphs["feeds"]))
    mask = feeds["attention_mask"].astype(bool)

    def embeddings(name: str) -> np.ndarray:
        out: np.ndarray = convert.run_onnx(minilm_graphs[name], feeds)[0]
        return out[mask].astype(np.float64)

    want = embeddings("fp32")

    def worst_cosine(name: str) -> float:
        got = embeddings(name)
        cosine = np.sum(want * got, axis=1) / (np.linalg.norm(want, axis=1) * np.linalg.norm(got, axis=1))
        return float(cosine.min())

    blockwise, dynamic = worst_cosine("blockwise"), worst_cosine("dynamic")
    assert blockwise >= 0.995 > dynamic


def test_smoothing_brings_dynamic_int8_closer_to_fp32(minilm_graphs: dict[str, Path]) -> None:
    feeds = dict(np.load(minilm_graphs["feeds"]))
    mask = feeds["attention_mask"].astype(bool)
    want = convert.run_onnx(minilm_graphs["fp32"], feeds)[0][mask].astype(np.float64)

    def error(name: str) -> float:
        got = convert.run_onnx(minilm_graphs[name], feeds)[0][mask].astype(np.float64)
        return float(np.linalg.norm(got - want) / np.linalg.norm(want))

    assert error("smoothed") < 0.75 * error("dynamic")
    ops = _ops(minilm_graphs["smoothed"])
    assert ops.count("DynamicQuantizeMatMul") == 36 and "Mul" in ops


@pytest.mark.parametrize(
    ("scheme", "matmul"), [("dynamic", "DynamicQuantizeMatMul"), ("blockwise", "MatMulNBits")]
)
def test_each_scheme_replaces_weight_matmuls_and_keeps_embedding_tables_in_fp16(
    minilm_graphs: dict[str, Path], scheme: str, matmul: str
) -> None:
    ops = _ops(minilm_graphs[scheme])
    assert ops.count(matmul) == 36
    # word, position and token-type embeddings: fp16 tables looked up, then cast to float
    assert ops.count("Cast") >= 3 and "DequantizeLinear" not in ops
    initializers = onnx.load(str(minilm_graphs[scheme])).graph.initializer
    tables = [i for i in initializers if i.name.endswith("_table")]
    assert len(tables) == 3 and all(t.data_type == onnx.TensorProto.FLOAT16 for t in tables)
    float_tables = [
        i.name for i in initializers if len(i.dims) == 2 and i.data_type == onnx.TensorProto.FLOAT
    ]
    assert not float_tables, "no fp32 copy of a table or weight is left"


def test_dynamic_matmuls_compute_what_onnxruntimes_quantize_dynamic_computes(tmp_path: Path) -> None:
    # One MatMul by a weight, on an input with an outlier column: ours against onnxruntime's own tool.
    # (On a whole model the two differ in embeddings, fp16 here and uint8 there, and per-tensor rounding
    # turns any input difference into a quantization-sized one.)
    import onnx as onnx_module
    from onnx import helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    rng = np.random.default_rng(3)
    weight = rng.normal(size=(64, 48)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
        "g",
        [helper.make_tensor_value_info("x", onnx_module.TensorProto.FLOAT, ["t", 64])],
        [helper.make_tensor_value_info("y", onnx_module.TensorProto.FLOAT, None)],
        [numpy_helper.from_array(weight, "w")],
    )
    source, ours, theirs = tmp_path / "fp32.onnx", tmp_path / "ours.onnx", tmp_path / "ort.onnx"
    onnx_module.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(source))
    assert convert.quantize_dynamic(source, ours) == 1
    quantize_dynamic(source, theirs, per_channel=True, weight_type=QuantType.QInt8)
    x = rng.normal(size=(16, 64)).astype(np.float32)
    x[:, 5] *= 20.0
    got, want, exact = (convert.run_onnx(p, {"x": x})[0] for p in (ours, theirs, source))
    # Equal up to float rounding, against a quantization error ~100x larger.
    assert np.abs(got - want).max() < 0.02 * np.abs(want - exact).max()


def test_an_unknown_scheme_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown int8 scheme 'int4'"):
        convert.quantize_int8(tmp_path / "in.onnx", tmp_path / "out.onnx", "int4")
