"""The port between the decoding loop and whatever computes logits: `NextTokenModel`.

The loop never sees sessions, graphs or tensors' names. A model keeps its KV cache inside a `DecoderState`
that only it reads; the loop only asks it to run one step or to keep, reorder or repeat rows (beam search).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

Logits = npt.NDArray[np.float32]  # [rows, vocab]: the scores of the next token of each row
TokenIds = npt.NDArray[np.int64]  # [rows]


class DecoderState(Protocol):
    """The KV cache (and for encoder-decoder models the encoder's output) of a batch of rows."""

    @property
    def rows(self) -> int: ...


State = TypeVar("State", bound=DecoderState)


class NextTokenModelOf(Protocol[State]):
    """Generic in its state type, so that an implementation's methods may take its own state class."""

    is_encoder_decoder: bool
    vocab_size: int

    def start(
        self, prompts: Sequence[Sequence[int]], decoder_start_token_id: int | None = None
    ) -> tuple[Logits, State]:
        """Prefill, one row per prompt. Decoder-only: the prompt's tokens, the logits are those after its last
        token (`decoder_start_token_id` is None). Encoder-decoder: the prompt is the encoder's input and the
        decoder starts from `decoder_start_token_id` (the settings' one, so that the loop and the model agree
        on the token the logits processors see first), the logits are those after that token."""
        ...

    def step(self, state: State, tokens: TokenIds) -> tuple[Logits, State]:
        """Append one token to each row and return the next logits; the state given is not used again."""
        ...

    def select(self, state: State, rows: npt.NDArray[np.int64]) -> State:
        """The state of `rows` (indices into the state's rows, repeats allowed): beam search's reorder, the
        expansion of one prompt into its beams or its return sequences, finished rows leaving the batch."""
        ...


# What the decoding loop takes: a model of any state type.
NextTokenModel = NextTokenModelOf[Any]
