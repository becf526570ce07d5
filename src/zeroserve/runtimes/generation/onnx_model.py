"""`OnnxNextTokenModel`: the `NextTokenModel` port over the exported generative graphs, on onnxruntime.

numpy only (no torch). The KV cache lives in `OnnxDecoderState` as numpy arrays; each step feeds the past
and keeps the present the graph returns. Rows of a decoder-only batch may have prompts of different
lengths: they are left-padded, so every row's next token sits at the last position, and the attention mask
(which grows with the cache) hides the padding while the position ids count real tokens only, as
transformers' `generate` does. Encoder-decoder rows share the decoder's length by construction; their
encoder input is right-padded and each layer's cross-attention K/V, computed once by encoder.onnx, ride in
the state. The graphs' tensor names are in runtimes/generation/graphs.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from zeroserve.runtimes.generation.graphs import GenerativeGraphs, read_graphs_metadata
from zeroserve.runtimes.generation.model import Logits, TokenIds
from zeroserve.runtimes.onnx import OnnxModel

Int64Array = npt.NDArray[np.int64]
Float32Array = npt.NDArray[np.float32]


@dataclass(frozen=True)
class OnnxDecoderState:
    past: tuple[Float32Array, ...]  # per layer key, value: [rows, kv_heads, P, head_dim]
    # Decoder-only: the mask over the P cached positions (0 where left padding) and each row's next position.
    attention_mask: Int64Array | None = None
    next_position: Int64Array | None = None
    # Encoder-decoder: each decoder layer's cross-attention key, value, and the encoder's padding mask.
    cross: tuple[Float32Array, ...] = ()
    encoder_mask: Int64Array | None = None

    @property
    def rows(self) -> int:
        return int(self.past[0].shape[0])

    @property
    def length(self) -> int:
        """Positions cached so far (padding included)."""
        return int(self.past[0].shape[2])


class OnnxNextTokenModel:
    def __init__(self, graphs_dir: Path, threads: int | None = None, graphs: GenerativeGraphs | None = None):
        self.graphs = graphs or read_graphs_metadata(graphs_dir)
        self.is_encoder_decoder = self.graphs.is_encoder_decoder
        self.vocab_size = self.graphs.vocab_size
        self._decoder = OnnxModel(graphs_dir / self.graphs.decoder.file, self.graphs.decoder.outputs, threads)
        self._encoder = (
            OnnxModel(graphs_dir / self.graphs.encoder.file, self.graphs.encoder.outputs, threads)
            if self.graphs.encoder is not None
            else None
        )
        # Any id the embedding has works for padding (the mask hides it); the model's pad id reads best.
        self._pad_id = next(
            (i for i in (self.graphs.pad_token_id, *self.graphs.eos_token_ids) if i is not None), 0
        )

    def start(
        self, prompts: Sequence[Sequence[int]], decoder_start_token_id: int | None = None
    ) -> tuple[Logits, OnnxDecoderState]:
        """`decoder_start_token_id`: the generation's (the request's settings), else the model's own."""
        if not prompts:
            raise ValueError("start needs at least one prompt")
        if any(len(prompt) == 0 for prompt in prompts):
            raise ValueError("a prompt has no tokens")
        if self.is_encoder_decoder:
            return self._start_encoder_decoder(prompts, decoder_start_token_id)
        width = max(len(prompt) for prompt in prompts)
        input_ids = np.full((len(prompts), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(prompts), width), dtype=np.int64)
        for row, prompt in enumerate(prompts):
            input_ids[row, width - len(prompt) :] = prompt
            mask[row, width - len(prompt) :] = 1
        positions = np.maximum(mask.cumsum(-1) - 1, 0)
        empty = self._empty_past(len(prompts))
        return self._decode(input_ids, mask, positions, empty, mask.sum(-1))

    def step(self, state: OnnxDecoderState, tokens: TokenIds) -> tuple[Logits, OnnxDecoderState]:
        input_ids = np.asarray(tokens, dtype=np.int64).reshape(state.rows, 1)
        if self.is_encoder_decoder:
            return self._decode_encoder_decoder(input_ids, state.past, state.cross, state.encoder_mask)
        if state.attention_mask is None or state.next_position is None:
            raise ValueError("a decoder-only state without its attention mask")
        mask = np.concatenate([state.attention_mask, np.ones((state.rows, 1), dtype=np.int64)], axis=1)
        positions = state.next_position.reshape(state.rows, 1)
        return self._decode(input_ids, mask, positions, state.past, state.next_position + 1)

    def select(self, state: OnnxDecoderState, rows: npt.NDArray[np.int64]) -> OnnxDecoderState:
        index = np.asarray(rows, dtype=np.int64)

        def take(array: npt.NDArray[np.generic] | None) -> npt.NDArray[np.generic] | None:
            return None if array is None else np.take(array, index, axis=0)

        return OnnxDecoderState(
            past=tuple(np.take(array, index, axis=0) for array in state.past),
            attention_mask=take(state.attention_mask),  # type: ignore[arg-type]
            next_position=take(state.next_position),  # type: ignore[arg-type]
            cross=tuple(np.take(array, index, axis=0) for array in state.cross),
            encoder_mask=take(state.encoder_mask),  # type: ignore[arg-type]
        )

    def _empty_past(self, rows: int) -> tuple[Float32Array, ...]:
        shape = (rows, self.graphs.num_kv_heads, 0, self.graphs.head_dim)
        return tuple(np.zeros(shape, dtype=np.float32) for _ in self.graphs.past_inputs)

    def _decode(
        self,
        input_ids: Int64Array,
        mask: Int64Array,
        positions: Int64Array,
        past: tuple[Float32Array, ...],
        next_position: Int64Array,
    ) -> tuple[Logits, OnnxDecoderState]:
        feeds: dict[str, np.ndarray] = {
            "input_ids": input_ids,
            "attention_mask": mask,
            "position_ids": np.ascontiguousarray(positions, dtype=np.int64),
        }
        feeds.update(zip(self.graphs.past_inputs, past, strict=True))
        out = self._decoder.forward(feeds)
        present = tuple(out[name] for name in self.graphs.present_outputs)
        state = OnnxDecoderState(past=present, attention_mask=mask, next_position=next_position)
        return out["logits"], state

    def _start_encoder_decoder(
        self, prompts: Sequence[Sequence[int]], start_id: int | None
    ) -> tuple[Logits, OnnxDecoderState]:
        if self._encoder is None:
            raise ValueError("an encoder-decoder model without encoder.onnx")
        width = max(len(prompt) for prompt in prompts)
        input_ids = np.full((len(prompts), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(prompts), width), dtype=np.int64)
        for row, prompt in enumerate(prompts):
            input_ids[row, : len(prompt)] = prompt
            mask[row, : len(prompt)] = 1
        encoded = self._encoder.forward({"input_ids": input_ids, "attention_mask": mask})
        cross = tuple(encoded[name] for name in self.graphs.cross_names)
        start_id = self.graphs.decoder_start_token_id if start_id is None else start_id
        if start_id is None:
            raise ValueError("the model has no decoder_start_token_id")
        starts = np.full((len(prompts), 1), start_id, dtype=np.int64)
        return self._decode_encoder_decoder(starts, self._empty_past(len(prompts)), cross, mask)

    def _decode_encoder_decoder(
        self,
        input_ids: Int64Array,
        past: tuple[Float32Array, ...],
        cross: tuple[Float32Array, ...],
        encoder_mask: Int64Array | None,
    ) -> tuple[Logits, OnnxDecoderState]:
        if encoder_mask is None:
            raise ValueError("an encoder-decoder state without its encoder mask")
        feeds: dict[str, np.ndarray] = {
            "decoder_input_ids": input_ids,
            "encoder_attention_mask": encoder_mask,
        }
        feeds.update(zip(self.graphs.past_inputs, past, strict=True))
        feeds.update(zip(self.graphs.cross_names, cross, strict=True))
        out = self._decoder.forward(feeds)
        present = tuple(out[name] for name in self.graphs.present_outputs)
        return out["logits"], OnnxDecoderState(past=present, cross=cross, encoder_mask=encoder_mask)
