"""The two ways in: `stream()` for greedy decoding and sampling token by token, `generate()` for final
sequences whatever the strategy (beam search has no stream: its best hypothesis is known only at the end)."""

from __future__ import annotations

from collections.abc import Sequence

from zeroserve.runtimes.generation.beam_search import beam_search
from zeroserve.runtimes.generation.model import NextTokenModel
from zeroserve.runtimes.generation.outputs import PromptOutput
from zeroserve.runtimes.generation.settings import GenerationSettings
from zeroserve.runtimes.generation.stepwise import TokenStream


def stream(
    model: NextTokenModel, prompts: Sequence[Sequence[int]], settings: GenerationSettings
) -> TokenStream:
    """Nothing runs until the first step is asked for."""
    return TokenStream(model, prompts, settings)


def generate(
    model: NextTokenModel, prompts: Sequence[Sequence[int]], settings: GenerationSettings
) -> list[PromptOutput]:
    """One output per prompt, each as transformers 4.51.3's generate() returns it for that prompt alone."""
    if settings.is_beam_search:
        return beam_search(model, prompts, settings)
    return TokenStream(model, prompts, settings).result()
