"""How long each prompt's answer may and must be: transformers 4.51.3's `_prepare_generated_length` and
`_validate_generated_length`, per prompt, since the toolkit's pipelines run each input alone.

The decoder's prefix is what its `input_ids` hold before the first generated token: the prompt for a
decoder-only model, the start token (length 1) for an encoder-decoder model.
"""

from __future__ import annotations

from dataclasses import dataclass

from zeroserve.runtimes.base import ClientInputError
from zeroserve.runtimes.generation.settings import GenerationSettings


@dataclass(frozen=True)
class LengthLimits:
    """In tokens of the decoder's sequence, prefix included, as transformers' `input_ids.shape[-1]`."""

    max_length: int  # the sequence ends once it is this long
    min_length: int  # eos is banned while the sequence is shorter (0: no ban)

    def max_new_tokens(self, prefix_length: int) -> int:
        return self.max_length - prefix_length


def length_limits(
    settings: GenerationSettings, prefix_length: int, *, is_encoder_decoder: bool
) -> LengthLimits:
    max_length = settings.max_length
    if settings.max_new_tokens is not None:
        max_length = settings.max_new_tokens + prefix_length
    min_length = settings.min_length
    if settings.min_new_tokens is not None:
        min_length = settings.min_new_tokens + prefix_length
    if prefix_length >= max_length:
        name = "decoder_input_ids" if is_encoder_decoder else "input_ids"
        raise ClientInputError(
            f"Input length of {name} is {prefix_length}, but `max_length` is set to {max_length}. This can "
            "lead to unexpected behavior. You should consider increasing `max_length` or, better yet, "
            "setting `max_new_tokens`."
        )
    return LengthLimits(max_length=max_length, min_length=min_length)


def decoder_prefixes(
    prompts: list[list[int]], settings: GenerationSettings, *, is_encoder_decoder: bool
) -> list[list[int]]:
    """What each prompt's decoder holds before the first generated token."""
    if not is_encoder_decoder:
        return prompts
    if settings.decoder_start_token_id is None:
        raise ClientInputError(
            "`decoder_start_token_id` or `bos_token_id` has to be defined for encoder-decoder generation."
        )
    return [[settings.decoder_start_token_id] for _ in prompts]
