"""The generative exporter: graphs and metadata for each supported family, logits that match torch at
prefill and for ten greedy steps (a batch of two prompts of different lengths), a clear refusal otherwise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from generative_models import (
    ARCHITECTURES,
    ENCODER_DECODER,
    exported_generative,
    generative_checkpoint,
)
from zeroserve.conversion.generative.exporter import export_generative
from zeroserve.errors import ArtifactError, UnsupportedArchitecture
from zeroserve.runtimes.generation.graphs import read_graphs_metadata
from zeroserve.runtimes.generation.onnx_model import OnnxNextTokenModel


def torch_model(name: str) -> Any:
    import transformers

    seq2seq = name in ENCODER_DECODER
    auto = transformers.AutoModelForSeq2SeqLM if seq2seq else transformers.AutoModelForCausalLM
    return auto.from_pretrained(generative_checkpoint(name)).eval()


def torch_next_logits(
    model: Any, name: str, start_id: int | None, prompt: list[int], tokens: list[int]
) -> Any:
    """The next-token logits of one row, unpadded, with no cache: the plainest torch computation."""
    import torch

    with torch.no_grad():
        if name in ENCODER_DECODER:
            decoder_ids = torch.tensor([[start_id, *tokens]])
            out = model(input_ids=torch.tensor([prompt]), decoder_input_ids=decoder_ids)
        else:
            out = model(input_ids=torch.tensor([prompt + tokens]))
    return out.logits[0, -1].numpy()


def prompts_of(name: str) -> list[list[int]]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(generative_checkpoint(name))
    texts = ["The pasta was cold and the waiter ignored us for twenty minutes.", "Great battery life."]
    return [tokenizer(text)["input_ids"] for text in texts]


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_export_writes_graphs_and_the_metadata_the_serve_side_reads(name: str) -> None:
    graphs_dir = exported_generative(name)
    graphs = read_graphs_metadata(graphs_dir)
    checkpoint = generative_checkpoint(name)
    config = json.loads((checkpoint / "config.json").read_text())
    generation = json.loads((checkpoint / "generation_config.json").read_text())

    assert (graphs_dir / graphs.decoder.file).is_file()
    assert graphs.is_encoder_decoder == (name in ENCODER_DECODER)
    assert (graphs.encoder is not None) == graphs.is_encoder_decoder
    assert graphs.architecture == config["architectures"][0]
    assert graphs.vocab_size == config["vocab_size"]
    assert graphs.num_layers == 2
    eos = generation["eos_token_id"]
    assert graphs.eos_token_ids == tuple(eos if isinstance(eos, list) else [eos])
    if name in ("llama", "qwen2"):
        assert graphs.num_kv_heads == 2  # grouped-query attention: fewer KV heads than query heads
    if graphs.is_encoder_decoder:
        assert graphs.decoder_start_token_id == generation["decoder_start_token_id"]
    else:
        assert graphs.decoder.inputs[:3] == ("input_ids", "attention_mask", "position_ids")


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_onnx_logits_match_torch_at_prefill_and_ten_greedy_steps_in_a_batch_of_two_lengths(name: str) -> None:
    model = torch_model(name)
    onnx_model = OnnxNextTokenModel(exported_generative(name), threads=1)
    start_id = onnx_model.graphs.decoder_start_token_id
    prompts = prompts_of(name)
    assert len(prompts[0]) != len(prompts[1])

    logits, state = onnx_model.start(prompts)
    generated: list[list[int]] = [[], []]
    for _step in range(11):  # prefill + 10 decode steps
        for row, prompt in enumerate(prompts):
            want = torch_next_logits(model, name, start_id, prompt, generated[row])
            scale = max(1.0, float(np.abs(want).max()))
            np.testing.assert_allclose(logits[row], want, atol=2e-5 * scale, rtol=1e-4)
        chosen = logits.argmax(-1).astype(np.int64)
        for row, token in enumerate(chosen.tolist()):
            generated[row].append(token)
        logits, state = onnx_model.step(state, chosen)


def test_an_architecture_without_an_exporter_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(
        json.dumps({"model_type": "bloom", "architectures": ["BloomForCausalLM"]})
    )

    with pytest.raises(UnsupportedArchitecture, match="BloomForCausalLM") as raised:
        export_generative(tmp_path, tmp_path / "out")

    assert isinstance(raised.value, ArtifactError)  # so the deploy fails with it as the FailureReason
    assert "bloom" in str(raised.value)
    assert not (tmp_path / "out").exists()
