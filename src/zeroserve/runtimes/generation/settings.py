"""What one generation runs with: `GenerationSettings`, resolved once from the model's
generation_config.json, its task_specific_params and the request's parameters (runtimes/tasks/ does that),
the way transformers 4.51.3's `GenerationConfig` + `generate()` read them. The decoding loop reads only this.

Lengths follow transformers: for a decoder-only model `max_length` and `min_length` count the prompt too, for
an encoder-decoder model they count the decoder's tokens (its start token included); `max_new_tokens` and
`min_new_tokens`, when set, win over them and count generated tokens only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

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
    # Encoder-decoder models: the decoder's first token, and the tokens forced at the first / last position
    # (BART's forced_bos_token_id / forced_eos_token_id).
    decoder_start_token_id: int | None = None
    forced_bos_token_id: int | None = None
    forced_eos_token_id: int | None = None
    # Token sequences never generated (Marian's generation config bans its pad token this way).
    bad_words_ids: tuple[tuple[int, ...], ...] = field(default_factory=tuple)
    # Sampling only: a seed makes a sampled answer repeatable; None draws fresh entropy.
    seed: int | None = None
