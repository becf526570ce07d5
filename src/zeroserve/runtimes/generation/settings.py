"""What one generation runs with: `GenerationSettings`, resolved once from the model's
generation_config.json, its task_specific_params and the request's parameters (runtimes/tasks/ does that), the
way transformers 4.51.3's `GenerationConfig` + `generate()` read them. The decoding loop reads only this.

Lengths follow transformers: for a decoder-only model `max_length` and `min_length` count the prompt too, for
an encoder-decoder model they count the decoder's tokens (its start token included); `max_new_tokens` and
`min_new_tokens`, when set, win over them and count generated tokens only. generate()'s "nothing set: 20 new
tokens" rule (a `max_length` equal to the default 20 that neither the request nor the model's config changed
means `20 + prompt length`, capped at max_position_embeddings) is the resolver's to apply: it knows what was
set.

`__post_init__` refuses what transformers 4.51.3 refuses before generating, with its wording (the toolkit
answers those messages with a 400).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from zeroserve.runtimes.base import ClientInputError

EarlyStopping = bool | Literal["never"]


@dataclass(frozen=True)
class GenerationSettings:
    max_length: int = 20
    max_new_tokens: int | None = None
    min_length: int = 0
    min_new_tokens: int | None = None
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 50
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    num_beams: int = 1
    num_return_sequences: int = 1
    early_stopping: EarlyStopping = False
    length_penalty: float = 1.0
    # Any of these ends a sequence (transformers accepts a list; the first is the one padding is done with
    # when pad_token_id is unset).
    eos_token_ids: tuple[int, ...] = ()
    pad_token_id: int | None = None
    bos_token_id: int | None = None
    # Encoder-decoder models: the decoder's first token (the loop hands it to the model and counts it in the
    # decoder's length), and the tokens forced at the first / last position (BART's forced_bos_token_id /
    # forced_eos_token_id).
    decoder_start_token_id: int | None = None
    forced_bos_token_id: int | None = None
    forced_eos_token_id: int | None = None
    # Token sequences never generated (Marian's generation config bans its pad token this way).
    bad_words_ids: tuple[tuple[int, ...], ...] = field(default_factory=tuple)
    # Sampling only: a seed makes a sampled answer repeatable; None draws fresh entropy.
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.num_beams < 1:
            raise ClientInputError(
                f"`num_beams` has to be a strictly positive integer, but is {self.num_beams}"
            )
        if self.num_return_sequences != 1:
            if self.num_beams == 1 and not self.do_sample:
                raise ClientInputError(
                    "Greedy methods without beam search do not support `num_return_sequences` different "
                    f"than 1 (got {self.num_return_sequences})."
                )
            if self.num_beams > 1 and self.num_return_sequences > self.num_beams:
                raise ClientInputError(
                    f"`num_return_sequences` ({self.num_return_sequences}) has to be smaller or equal to "
                    f"`num_beams` ({self.num_beams})."
                )
        if self.do_sample and self.temperature != 1.0 and not self.temperature > 0:
            message = (
                f"`temperature` (={self.temperature}) has to be a strictly positive float, otherwise your "
                "next token scores will be invalid."
            )
            if self.temperature == 0.0:
                message += " If you're looking for greedy decoding strategies, set `do_sample=False`."
            raise ClientInputError(message)
        if self.do_sample and not 0.0 <= self.top_p <= 1.0:
            raise ClientInputError(f"`top_p` has to be a float > 0 and < 1, but is {self.top_p}")
        if self.do_sample and self.top_k < 0:
            raise ClientInputError(f"`top_k` has to be a strictly positive integer, but is {self.top_k}")
        if self.repetition_penalty != 1.0 and not self.repetition_penalty > 0:
            raise ClientInputError(
                f"`penalty` has to be a strictly positive float, but is {self.repetition_penalty}"
            )
        if any(not sequence or min(sequence) < 0 for sequence in self.bad_words_ids):
            raise ClientInputError(
                "Each list in `bad_words_ids` has to be a list of positive integers, but is "
                f"{[list(sequence) for sequence in self.bad_words_ids]}."
            )

    @property
    def is_beam_search(self) -> bool:
        return self.num_beams > 1
