"""`OnnxNextTokenModel`: greedy decoding over the exported graphs gives torch `generate`'s tokens for each
family; rows of different lengths batch as if alone; `select` reorders and repeats rows; no torch at serve."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from generative_models import ARCHITECTURES, ENCODER_DECODER, exported_generative, generative_checkpoint
from zeroserve.runtimes.generation.onnx_model import OnnxNextTokenModel

_NEW_TOKENS = 12
_TEXTS = [
    "Absolutely loved it, would watch again tomorrow.",
    "The pasta was cold.",
    "Great battery life, terrible camera. Thanks so much for nothing at all, really.",
    "Hi",
]


def encode(name: str, texts: list[str]) -> list[list[int]]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(generative_checkpoint(name))
    return [tokenizer(text)["input_ids"] for text in texts]


def greedy(model: OnnxNextTokenModel, prompts: list[list[int]], new_tokens: int) -> list[list[int]]:
    """Plain greedy decoding for `new_tokens` steps (no stopping): the loop's simplest use of the port."""
    logits, state = model.start(prompts)
    out: list[list[int]] = [[] for _ in prompts]
    for step in range(new_tokens):
        chosen = logits.argmax(-1).astype(np.int64)
        for row, token in enumerate(chosen.tolist()):
            out[row].append(token)
        if step + 1 < new_tokens:
            logits, state = model.step(state, chosen)
    return out


def until_eos(tokens: list[int], eos: tuple[int, ...]) -> list[int]:
    for index, token in enumerate(tokens):
        if token in eos:
            return tokens[: index + 1]
    return tokens


def torch_generate(name: str, prompt: list[int]) -> list[int]:
    """transformers' greedy `generate`, with the checkpoint's generation_config switched to plain greedy (no
    sampling, forced or banned tokens, penalties or length floors), and only the new tokens returned."""
    import torch
    import transformers

    seq2seq = name in ENCODER_DECODER
    auto = transformers.AutoModelForSeq2SeqLM if seq2seq else transformers.AutoModelForCausalLM
    model: Any = auto.from_pretrained(generative_checkpoint(name)).eval()
    with torch.no_grad():
        sequence = model.generate(
            input_ids=torch.tensor([prompt]),
            attention_mask=torch.ones(1, len(prompt), dtype=torch.int64),
            do_sample=False,
            num_beams=1,
            max_new_tokens=_NEW_TOKENS,
            max_length=None,
            min_length=0,
            no_repeat_ngram_size=0,
            repetition_penalty=1.0,
            forced_bos_token_id=None,
            forced_eos_token_id=None,
            bad_words_ids=None,
            pad_token_id=model.generation_config.pad_token_id or 0,
        )[0].tolist()
    # The decoder's start token (encoder-decoder) or the prompt (decoder-only) comes first.
    return sequence[1:] if name in ENCODER_DECODER else sequence[len(prompt) :]


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_greedy_tokens_are_those_of_torch_generate(name: str) -> None:
    model = OnnxNextTokenModel(exported_generative(name), threads=1)
    eos = model.graphs.eos_token_ids

    for prompt in encode(name, _TEXTS):
        ours = until_eos(greedy(model, [prompt], _NEW_TOKENS)[0], eos)
        assert ours == torch_generate(name, prompt)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_rows_of_different_lengths_decode_in_one_batch_as_they_do_alone(name: str) -> None:
    model = OnnxNextTokenModel(exported_generative(name), threads=1)
    prompts = encode(name, _TEXTS)
    assert len({len(prompt) for prompt in prompts}) == len(prompts)

    batched = greedy(model, prompts, 8)

    assert batched == [greedy(model, [prompt], 8)[0] for prompt in prompts]


@pytest.mark.parametrize("name", ["llama", "bart"])
def test_select_reorders_and_repeats_rows_with_their_caches(name: str) -> None:
    model = OnnxNextTokenModel(exported_generative(name), threads=1)
    prompts = encode(name, _TEXTS[:2])
    logits, state = model.start(prompts)
    tokens = logits.argmax(-1).astype(np.int64)
    unselected_logits, _ = model.step(state, tokens)

    rows = np.array([1, 1, 0], dtype=np.int64)
    selected = model.select(state, rows)
    selected_logits, after = model.step(selected, tokens[rows])

    assert selected.rows == after.rows == 3
    np.testing.assert_allclose(selected_logits, unselected_logits[rows], atol=1e-5)


def test_an_encoder_decoder_starts_from_its_decoder_start_token_without_a_decoder_prompt() -> None:
    model = OnnxNextTokenModel(exported_generative("bart"), threads=1)
    logits, state = model.start(encode("bart", ["Hi"]))

    assert model.is_encoder_decoder
    assert logits.shape == (1, model.vocab_size)
    assert state.length == 1  # just the start token is cached


def test_serving_generation_imports_no_torch() -> None:
    graphs = exported_generative("gpt2")
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from zeroserve.runtimes.generation.onnx_model import OnnxNextTokenModel\n"
        f"model = OnnxNextTokenModel(Path({str(graphs)!r}), threads=1)\n"
        "logits, state = model.start([[5, 6, 7], [8]])\n"
        "model.step(state, logits.argmax(-1))\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )

    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)

    assert result.stdout.strip() == "[]"
