"""Tiny seeded generative models for the decoding-loop tests, and `TorchNextTokenModel`: the `NextTokenModel`
port over a torch transformers model, recomputing each row's whole sequence at every step (correct, not fast;
logits are memoized per sequence since beams and cases share prefixes)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    BartConfig,
    BartForConditionalGeneration,
    GenerationConfig,
    LlamaConfig,
    LlamaForCausalLM,
    T5Config,
    T5ForConditionalGeneration,
)

VOCAB = 64
KINDS = ("llama", "t5", "bart")
# Special tokens each tiny model is saved with (the tests pass them to both sides explicitly).
SPECIAL_TOKENS: dict[str, dict[str, int]] = {
    "llama": {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0},
    "t5": {"eos_token_id": 1, "pad_token_id": 0, "decoder_start_token_id": 0},
    "bart": {"bos_token_id": 0, "pad_token_id": 1, "eos_token_id": 2, "decoder_start_token_id": 2},
}


def build_tiny_model(kind: str, directory: Path, seed: int = 0) -> Path:
    """Random weights from a fixed seed, larger than the usual init so that logits are peaked (fewer
    near-ties), saved with save_pretrained for the reference interpreter to load the same weights."""
    torch.manual_seed(seed)
    special = SPECIAL_TOKENS[kind]
    model: Any
    if kind == "llama":
        config = LlamaConfig(
            vocab_size=VOCAB,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=128,
            initializer_range=0.3,
            **special,
        )
        model = LlamaForCausalLM(config)
    elif kind == "t5":
        config = T5Config(
            vocab_size=VOCAB,
            d_model=32,
            d_kv=8,
            d_ff=64,
            num_layers=2,
            num_heads=4,
            initializer_factor=3.0,
            **special,
        )
        model = T5ForConditionalGeneration(config)
    elif kind == "bart":
        config = BartConfig(
            vocab_size=VOCAB,
            d_model=32,
            encoder_layers=2,
            decoder_layers=2,
            encoder_attention_heads=4,
            decoder_attention_heads=4,
            encoder_ffn_dim=64,
            decoder_ffn_dim=64,
            max_position_embeddings=128,
            init_std=0.3,
            forced_eos_token_id=None,
            forced_bos_token_id=None,
            **special,
        )
        model = BartForConditionalGeneration(config)
    else:
        raise ValueError(kind)
    model.generation_config = GenerationConfig(**special)
    model.eval()
    path = directory / kind
    model.save_pretrained(path)
    return path


def load_tiny_model(path: Path) -> Any:
    loader = AutoModelForSeq2SeqLM if path.name in ("t5", "bart") else AutoModelForCausalLM
    return loader.from_pretrained(path).eval()


@dataclass(frozen=True)
class _Rows:
    encoder_inputs: tuple[tuple[int, ...], ...]  # empty tuples for a decoder-only model
    decoder_tokens: tuple[tuple[int, ...], ...]

    @property
    def rows(self) -> int:
        return len(self.decoder_tokens)


class TorchNextTokenModel:
    def __init__(self, model: Any) -> None:
        self._model = model
        self.is_encoder_decoder: bool = bool(model.config.is_encoder_decoder)
        self.vocab_size: int = int(model.config.vocab_size)
        self._memo: dict[tuple[tuple[int, ...], tuple[int, ...]], npt.NDArray[np.float32]] = {}
        self.forward_calls = 0

    def start(
        self, prompts: Sequence[Sequence[int]], decoder_start_token_id: int | None = None
    ) -> tuple[npt.NDArray[np.float32], _Rows]:
        if self.is_encoder_decoder:
            assert decoder_start_token_id is not None
            rows = _Rows(tuple(tuple(p) for p in prompts), tuple((decoder_start_token_id,) for _ in prompts))
        else:
            rows = _Rows(tuple(() for _ in prompts), tuple(tuple(p) for p in prompts))
        return self._logits(rows), rows

    def step(self, state: _Rows, tokens: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.float32], _Rows]:
        assert len(tokens) == state.rows
        rows = _Rows(
            state.encoder_inputs,
            tuple((*seq, int(t)) for seq, t in zip(state.decoder_tokens, tokens.tolist(), strict=True)),
        )
        return self._logits(rows), rows

    def select(self, state: _Rows, rows: npt.NDArray[np.int64]) -> _Rows:
        picked = rows.tolist()
        return _Rows(
            tuple(state.encoder_inputs[r] for r in picked), tuple(state.decoder_tokens[r] for r in picked)
        )

    def _logits(self, rows: _Rows) -> npt.NDArray[np.float32]:
        out = np.empty((rows.rows, self.vocab_size), dtype=np.float32)
        for i, key in enumerate(zip(rows.encoder_inputs, rows.decoder_tokens, strict=True)):
            if key not in self._memo:
                self._memo[key] = self._forward(*key)
            out[i] = self._memo[key]
        return out

    @torch.no_grad()
    def _forward(
        self, encoder_input: tuple[int, ...], decoder_tokens: tuple[int, ...]
    ) -> npt.NDArray[np.float32]:
        self.forward_calls += 1
        if self.is_encoder_decoder:
            logits = self._model(
                input_ids=torch.tensor([encoder_input]), decoder_input_ids=torch.tensor([decoder_tokens])
            ).logits
        else:
            logits = self._model(input_ids=torch.tensor([decoder_tokens])).logits
        result: npt.NDArray[np.float32] = logits[0, -1].float().numpy()
        return result
