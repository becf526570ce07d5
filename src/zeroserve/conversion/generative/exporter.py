"""Export a generative checkpoint to ONNX graphs with a KV cache: `export_generative`.

Decoder-only models get one decoder.onnx for both prefill and decode steps (the past may be empty);
encoder-decoder models get encoder.onnx, which also computes every decoder layer's cross-attention K/V once
per request, and decoder.onnx, which takes them as inputs instead of recomputing them from the encoder's
output at each step (see the closing note of issue 20 for the measurement).

Export uses torch.onnx's TorchScript exporter over `wrappers`, with eager attention: it traces all six
supported families on transformers 5 in about a second each. After export the graphs are optimized once
(workers open them with optimizations off, as runtimes/onnx.py does) and checked against torch on a batch of
two prompts of different lengths, prefill and two decode steps; a mismatch fails the deploy.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zeroserve.conversion.convert import optimize, trace
from zeroserve.errors import ArtifactError, UnsupportedArchitecture
from zeroserve.runtimes.generation.graphs import (
    DECODER_FILE,
    ENCODER_FILE,
    GenerativeGraphs,
    GraphFile,
    past_names,
    write_graphs_metadata,
)

# model_type -> whether it is an encoder-decoder. Only families whose export is tested against torch here;
# others may well trace, but an untested one is refused rather than served wrong.
SUPPORTED_MODEL_TYPES: Mapping[str, bool] = {
    "gpt2": False,
    "llama": False,
    "qwen2": False,
    "t5": True,
    "bart": True,
    "marian": True,
}


def export_generative(checkpoint: Path, out_dir: Path, *, verify: bool = True) -> GenerativeGraphs:
    """Write decoder.onnx (and encoder.onnx) and generation.json for `checkpoint` into `out_dir`."""
    started_s = time.perf_counter()
    config = _read_json(checkpoint / "config.json")
    model_type = str(config.get("model_type", ""))
    architecture = str((config.get("architectures") or [model_type or "unknown"])[0])
    if model_type not in SUPPORTED_MODEL_TYPES:
        supported = ", ".join(SUPPORTED_MODEL_TYPES)
        raise UnsupportedArchitecture(
            f"cannot export {architecture} (model_type {model_type!r}) for generation; "
            f"supported model types: {supported}"
        )
    import torch

    out_dir.mkdir(parents=True, exist_ok=True)
    with _quiet_single_thread(torch), tempfile.TemporaryDirectory(prefix="zeroserve-gen-") as scratch:
        model = _load(checkpoint, encoder_decoder=SUPPORTED_MODEL_TYPES[model_type])
        raw = Path(scratch)
        if SUPPORTED_MODEL_TYPES[model_type]:
            graphs = _export_seq2seq(model, raw)
        else:
            graphs = _export_decoder_only(model, raw)
        for graph in (graphs.decoder, graphs.encoder):
            if graph is not None:
                optimize(raw / graph.file, out_dir / graph.file)
        generation = _read_json(checkpoint / "generation_config.json")
        graphs = _with_token_ids(graphs, config, generation, architecture, model_type)
        if verify:
            verify_against_torch(model, out_dir, graphs)
    graphs = _replace(graphs, export_s=round(time.perf_counter() - started_s, 3))
    write_graphs_metadata(out_dir, graphs)
    return graphs


def _load(checkpoint: Path, *, encoder_decoder: bool) -> Any:
    import torch
    import transformers

    auto = transformers.AutoModelForSeq2SeqLM if encoder_decoder else transformers.AutoModelForCausalLM
    try:
        # Eager attention: the SDPA path picks kernels from data-dependent checks that a trace would freeze.
        return auto.from_pretrained(checkpoint, attn_implementation="eager", dtype=torch.float32).eval()
    except (OSError, ValueError, KeyError) as exc:
        raise ArtifactError(f"cannot load the checkpoint for export: {exc}") from exc


def _export_decoder_only(model: Any, out_dir: Path) -> GenerativeGraphs:
    import torch

    from zeroserve.conversion.generative.wrappers import DecoderOnlyStep, output_cache

    probe = model(input_ids=torch.tensor([[1, 2]]), use_cache=True)
    layers = [(layer.keys, layer.values) for layer in output_cache(probe).layers]
    num_layers, (_, kv_heads, _, head_dim) = len(layers), layers[0][0].shape
    vocab_size = int(probe.logits.shape[-1])
    past, present = past_names(num_layers, "past"), past_names(num_layers, "present")
    inputs = ["input_ids", "attention_mask", "position_ids", *past]
    outputs = ["logits", *present]
    # A past longer than zero, so the trace goes through the cache's non-empty branch, which also serves an
    # empty past (its length is read from the tensor's shape, not frozen).
    batch, new, cached = 2, 3, 2
    sample = _decoder_only_feeds(vocab_size, batch, new, cached, kv_heads, head_dim, num_layers)
    axes: dict[str, dict[int, str]] = {
        "input_ids": {0: "batch", 1: "new"},
        "attention_mask": {0: "batch", 1: "total"},
        "position_ids": {0: "batch", 1: "new"},
        "logits": {0: "batch"},
    }
    axes.update({name: {0: "batch", 2: "past"} for name in past})
    axes.update({name: {0: "batch", 2: "total"} for name in present})
    _trace(
        DecoderOnlyStep(model, uses_position_ids=True),
        tuple(torch.from_numpy(sample[name]) for name in inputs),
        out_dir / DECODER_FILE,
        inputs,
        outputs,
        axes,
    )
    return GenerativeGraphs(
        architecture="",
        model_type="",
        is_encoder_decoder=False,
        num_layers=num_layers,
        num_kv_heads=int(kv_heads),
        head_dim=int(head_dim),
        vocab_size=vocab_size,
        decoder=GraphFile(DECODER_FILE, tuple(inputs), tuple(outputs)),
    )


def _export_seq2seq(model: Any, out_dir: Path) -> GenerativeGraphs:
    import torch

    from zeroserve.conversion.generative.wrappers import Seq2SeqDecoderStep

    attention_mask, cross_tensors, encoder_inputs = _export_cross_attention_encoder(model, out_dir)
    num_layers = len(cross_tensors) // 2
    batch, heads, _, head_dim = cross_tensors[0].shape
    cross = past_names(num_layers, "cross")
    past, present = past_names(num_layers, "past"), past_names(num_layers, "present")
    decoder_inputs = ["decoder_input_ids", "encoder_attention_mask", *past, *cross]
    outputs = ["logits", *present]
    cached = 2
    generator = np.random.default_rng(0)
    past_tensors = [
        torch.from_numpy(generator.standard_normal((batch, heads, cached, head_dim), dtype=np.float32))
        for _ in past
    ]
    decoder_ids = torch.full((batch, 1), 3, dtype=torch.int64)
    step = Seq2SeqDecoderStep(model, num_layers)
    vocab_size = int(step(decoder_ids, attention_mask, *past_tensors, *cross_tensors)[0].shape[-1])
    _trace(
        step,
        (decoder_ids, attention_mask, *past_tensors, *cross_tensors),
        out_dir / DECODER_FILE,
        decoder_inputs,
        outputs,
        {
            "decoder_input_ids": {0: "batch", 1: "new"},
            "encoder_attention_mask": {0: "batch", 1: "source"},
            "logits": {0: "batch"},
            **{name: {0: "batch", 2: "source"} for name in cross},
            **{name: {0: "batch", 2: "past"} for name in past},
            **{name: {0: "batch", 2: "total"} for name in present},
        },
    )
    return GenerativeGraphs(
        architecture="",
        model_type="",
        is_encoder_decoder=True,
        num_layers=num_layers,
        num_kv_heads=int(heads),
        head_dim=int(head_dim),
        vocab_size=vocab_size,
        decoder=GraphFile(DECODER_FILE, tuple(decoder_inputs), tuple(outputs)),
        encoder=GraphFile(ENCODER_FILE, tuple(encoder_inputs), tuple(cross)),
    )


def _export_cross_attention_encoder(model: Any, out_dir: Path) -> tuple[Any, tuple[Any, ...], list[str]]:
    """encoder.onnx: the source in, every decoder layer's cross-attention key and value out (computed once
    per request). Returns the sample's attention mask and outputs, which the decoder's trace reuses."""
    import torch

    from zeroserve.conversion.generative.wrappers import CrossAttentionKeys

    batch, source = 2, 5
    input_ids = (torch.arange(batch * source).reshape(batch, source) % 50 + 3).to(torch.int64)
    attention_mask = torch.ones(batch, source, dtype=torch.int64)
    attention_mask[1, 3:] = 0
    encoder = CrossAttentionKeys(model)
    cross_tensors = encoder(input_ids, attention_mask)
    cross = past_names(len(cross_tensors) // 2, "cross")
    encoder_inputs = ["input_ids", "attention_mask"]
    _trace(
        encoder,
        (input_ids, attention_mask),
        out_dir / ENCODER_FILE,
        encoder_inputs,
        cross,
        {
            "input_ids": {0: "batch", 1: "source"},
            "attention_mask": {0: "batch", 1: "source"},
            **{name: {0: "batch", 2: "source"} for name in cross},
        },
    )
    return attention_mask, tuple(cross_tensors), encoder_inputs


def _decoder_only_feeds(
    vocab_size: int, batch: int, new: int, cached: int, kv_heads: int, head_dim: int, num_layers: int
) -> dict[str, np.ndarray]:
    generator = np.random.default_rng(0)
    mask = np.ones((batch, cached + new), dtype=np.int64)
    mask[1, :1] = 0  # a left-padded row
    feeds: dict[str, np.ndarray] = {
        "input_ids": generator.integers(3, vocab_size, (batch, new), dtype=np.int64),
        "attention_mask": mask,
        "position_ids": (np.maximum(mask.cumsum(-1) - 1, 0))[:, cached:],
    }
    for name in past_names(num_layers, "past"):
        feeds[name] = generator.standard_normal((batch, kv_heads, cached, head_dim), dtype=np.float32)
    return feeds


def _trace(
    module: Any,
    tensors: tuple[Any, ...],
    out_path: Path,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axes: Mapping[str, Mapping[int, str]],
) -> None:
    try:
        trace(module, tensors, out_path, input_names, output_names, dynamic_axes)
    except Exception as exc:  # the tracer's errors have no common base; any of them fails the deploy
        raise ArtifactError(f"ONNX export of {out_path.name} failed: {type(exc).__name__}: {exc}") from exc


def verify_against_torch(model: Any, graphs_dir: Path, graphs: GenerativeGraphs) -> None:
    """Greedy-decode a batch of two prompts of different lengths (left-padded) for three tokens with the
    graphs, and compare each step's logits with torch's on the same tokens; raise ArtifactError on a
    mismatch."""

    from zeroserve.runtimes.generation.onnx_model import OnnxNextTokenModel

    onnx_model = OnnxNextTokenModel(graphs_dir, threads=1, graphs=graphs)
    vocab = graphs.vocab_size
    prompts = [[(7 * i + 3) % vocab for i in range(5)], [(11 * i + 5) % vocab for i in range(2)]]
    logits, state = onnx_model.start(prompts)
    tokens: list[list[int]] = [[] for _ in prompts]
    for step in range(3):
        want = _torch_logits(model, graphs, prompts, tokens)
        tolerance = 1e-3 * max(1.0, float(np.abs(want).max()))
        if not np.allclose(logits, want, atol=tolerance, rtol=1e-3):
            diff = float(np.abs(logits - want).max())
            raise ArtifactError(
                f"exported graphs differ from PyTorch at step {step} (max abs diff {diff:.3g})"
            )
        chosen = logits.argmax(-1).astype(np.int64)
        for row, token in zip(tokens, chosen.tolist(), strict=True):
            row.append(token)
        logits, state = onnx_model.step(state, chosen)


def _torch_logits(
    model: Any, graphs: GenerativeGraphs, prompts: list[list[int]], generated: list[list[int]]
) -> np.ndarray:
    """Next-token logits of each prompt + its generated tokens, one row at a time (no padding)."""
    import torch

    rows = []
    with torch.no_grad():
        for prompt, tokens in zip(prompts, generated, strict=True):
            if graphs.is_encoder_decoder:
                start = graphs.decoder_start_token_id or 0
                out = model(
                    input_ids=torch.tensor([prompt]), decoder_input_ids=torch.tensor([[start, *tokens]])
                )
            else:
                out = model(input_ids=torch.tensor([prompt + tokens]))
            rows.append(out.logits[0, -1].numpy())
    return np.stack(rows).astype(np.float32)


def _with_token_ids(
    graphs: GenerativeGraphs,
    config: Mapping[str, Any],
    generation: Mapping[str, Any],
    architecture: str,
    model_type: str,
) -> GenerativeGraphs:
    def pick(key: str) -> Any:
        value = generation.get(key)
        return config.get(key) if value is None else value

    eos = pick("eos_token_id")
    eos_ids = tuple(int(i) for i in eos) if isinstance(eos, list) else (() if eos is None else (int(eos),))
    max_positions = config.get("max_position_embeddings") or config.get("n_positions")
    start = _int_or_none(pick("decoder_start_token_id")) if graphs.is_encoder_decoder else None
    return _replace(
        graphs,
        architecture=architecture,
        model_type=model_type,
        eos_token_ids=eos_ids,
        pad_token_id=_int_or_none(pick("pad_token_id")),
        bos_token_id=_int_or_none(pick("bos_token_id")),
        decoder_start_token_id=start,
        # T5's positions are relative: no table to run off the end of.
        max_positions=None if model_type == "t5" else _int_or_none(max_positions),
    )


def _replace(graphs: GenerativeGraphs, **changes: Any) -> GenerativeGraphs:
    from dataclasses import replace

    return replace(graphs, **changes)


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"cannot read {path.name}: {exc}") from exc
    return loaded if isinstance(loaded, dict) else {}


@contextlib.contextmanager
def _quiet_single_thread(torch: Any) -> Iterator[None]:
    """One torch thread (the sample inputs are tiny; more threads only spin) and no tracer chatter in the
    deployer's logs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            yield
    finally:
        torch.set_num_threads(threads)


__all__ = ["SUPPORTED_MODEL_TYPES", "UnsupportedArchitecture", "export_generative"]
