"""Activation smoothing (conversion/smoothing.py): exact in fp32, factors from outlier channels only, peaks
per text over its own tokens, and the packaged calibration texts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from zeroserve.conversion import convert, smoothing


def _two_matmuls_on_one_input(path: Path, weights: list[np.ndarray]) -> None:
    """x [batch, tokens, 4] -> x @ W0 and x @ W1 (two MatMuls sharing an input, like Q and K)."""
    nodes = [helper.make_node("MatMul", ["x", f"w{i}"], [f"y{i}"], name=f"mm{i}") for i in range(2)]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["b", "t", 4])],
        [helper.make_tensor_value_info(f"y{i}", onnx.TensorProto.FLOAT, None) for i in range(2)],
        [numpy_helper.from_array(w, f"w{i}") for i, w in enumerate(weights)],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_smoothing_computes_the_same_products_and_divides_the_outlier_channel(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=(4, 3)).astype(np.float32) for _ in range(2)]
    _two_matmuls_on_one_input(tmp_path / "in.onnx", weights)
    x = rng.normal(size=(2, 5, 4)).astype(np.float32)
    x[:, :, 1] *= 36.0  # channel 1 peaks ~36x the others
    count = smoothing.smooth(tmp_path / "in.onnx", tmp_path / "out.onnx", [{"x": x}])
    assert count == 1  # one shared input, one Mul
    before = convert.run_onnx(tmp_path / "in.onnx", {"x": x})
    after = convert.run_onnx(tmp_path / "out.onnx", {"x": x})
    for want, got in zip(before, after, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    graph = onnx.load(str(tmp_path / "out.onnx")).graph
    assert [n.op_type for n in graph.node] == ["Mul", "MatMul", "MatMul"]
    inverse = numpy_helper.to_array(next(i for i in graph.initializer if i.name.endswith("_inverse")))
    assert inverse[1] < 0.25 and np.all(inverse[[0, 2, 3]] > 0.5)


def test_smoothing_needs_no_node_names(tmp_path: Path) -> None:
    # Node names are optional in ONNX: two unnamed MatMuls on two inputs, each smoothed before its own.
    rng = np.random.default_rng(2)
    nodes = [helper.make_node("MatMul", [f"x{i}", f"w{i}"], [f"y{i}"]) for i in range(2)]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(f"x{i}", onnx.TensorProto.FLOAT, ["b", "t", 4]) for i in range(2)],
        [helper.make_tensor_value_info(f"y{i}", onnx.TensorProto.FLOAT, None) for i in range(2)],
        [numpy_helper.from_array(rng.normal(size=(4, 3)).astype(np.float32), f"w{i}") for i in range(2)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(tmp_path / "in.onnx"))
    feeds = {f"x{i}": rng.normal(size=(1, 5, 4)).astype(np.float32) for i in range(2)}
    for x in feeds.values():
        x[:, :, 2] *= 30.0
    assert smoothing.smooth(tmp_path / "in.onnx", tmp_path / "out.onnx", [feeds]) == 2
    ops = [n.op_type for n in onnx.load(str(tmp_path / "out.onnx")).graph.node]
    assert ops == ["Mul", "MatMul", "Mul", "MatMul"]
    before, after = (convert.run_onnx(tmp_path / p, feeds) for p in ("in.onnx", "out.onnx"))
    for want, got in zip(before, after, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_an_input_without_outlier_channels_is_left_alone(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    _two_matmuls_on_one_input(tmp_path / "in.onnx", [rng.normal(size=(4, 3)).astype(np.float32)] * 2)
    x = rng.normal(size=(1, 6, 4)).astype(np.float32)
    assert smoothing.smooth(tmp_path / "in.onnx", tmp_path / "out.onnx", [{"x": x}]) == 0
    assert [n.op_type for n in onnx.load(str(tmp_path / "out.onnx")).graph.node] == ["MatMul", "MatMul"]


def test_factors_are_the_root_of_each_channels_ratio_to_the_median_and_never_below_one() -> None:
    factors = smoothing._factors(np.array([1.0, 1.0, 16.0, 0.5, 1.0]), 0.5, 5.0)
    assert factors is not None
    np.testing.assert_allclose(factors, [1.0, 1.0, 4.0, 1.0, 1.0])
    assert smoothing._factors(np.array([1.0, 1.0, 4.0]), 0.5, 5.0) is None  # under the outlier ratio


def test_a_texts_peak_is_taken_over_its_own_tokens_not_its_padding() -> None:
    magnitude = np.ones((2, 3, 2))
    magnitude[1, 2] = 100.0  # a padded position of the second text
    mask = np.array([[1, 1, 1], [1, 1, 0]])
    np.testing.assert_allclose(smoothing._peaks_per_text(magnitude, 2, mask), [[1, 1], [1, 1]])
    np.testing.assert_allclose(smoothing._peaks_per_text(magnitude, 2, None)[1], [100, 100])
    # The same rows flattened to [texts * tokens, channels], as some exports feed their MatMuls
    np.testing.assert_allclose(smoothing._peaks_per_text(magnitude.reshape(6, 2), 2, None)[1], [100, 100])


def test_smoothing_without_calibration_text_is_refused(tmp_path: Path) -> None:
    _two_matmuls_on_one_input(tmp_path / "in.onnx", [np.eye(4, 3, dtype=np.float32)] * 2)
    with pytest.raises(ValueError, match="at least one calibration input"):
        smoothing.smooth(tmp_path / "in.onnx", tmp_path / "out.onnx", [])


def test_the_packaged_calibration_texts_are_spread_over_the_file() -> None:
    every = smoothing.calibration_texts()
    assert len(every) >= 100 and all(text.isascii() and text.strip() == text for text in every)
    some = smoothing.calibration_texts(32)
    assert len(some) == 32 and some[0] == every[0] and some[-1] in every[-len(every) // 32 :]
