"""What the generative tasks share: the jobs a request turns into, the plan that turns generated ids back into
the answer, and the facts about the loaded checkpoint that both need.

A generative task never runs the model. `plan` validates a request and returns one `GenerationJob` per prompt
(its token ids and resolved settings); whoever runs the decoding loop hands back, for each job, its
`num_return_sequences` sequences of new token ids (without the prompt or the decoder's start token, with the
eos token when one ended the sequence) and `finish` makes the answer the toolkit would give.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from zeroserve.runtimes.base import ClientInputError
from zeroserve.runtimes.generation.settings import GenerationSettings
from zeroserve.runtimes.tasks.detokenize import IncrementalDetokenizer
from zeroserve.runtimes.tasks.generation_parameters import (
    GENERATE_PARAMETERS,
    CheckpointGeneration,
    Limits,
    check_generate_parameter,
    unknown_parameter,
)
from zeroserve.runtimes.tasks.generative_tokenizer import GenerativeTokenizer

# For each job, its sequences of new token ids.
Generated = Sequence[Sequence[Sequence[int]]]


@dataclass(frozen=True)
class GenerationJob:
    prompt_ids: tuple[int, ...]
    settings: GenerationSettings


@dataclass(frozen=True)
class GenerationPlan:
    jobs: list[GenerationJob]
    finish: Callable[[Generated], Any]
    # A streaming detokenizer for job i's first sequence: its deltas concatenate to that sequence's text in
    # the answer (the generated part: no prompt, whatever return_full_text says).
    detokenizer: Callable[[int], IncrementalDetokenizer]


@dataclass(frozen=True)
class GenerationContext:
    tokenizer: GenerativeTokenizer
    checkpoint: CheckpointGeneration
    # The task name as deployed (`translation_en_to_de` keeps its languages).
    task: str
    limits: Limits = field(default_factory=Limits)
    # The model Environment's ZEROSERVE_TRUNCATION: truncate over-long prompts when the request does not say.
    truncate_by_default: bool = False

    def window(self) -> int | None:
        """The longest prompt the model reads: its position table, else the tokenizer's model_max_length."""
        positions = self.checkpoint.max_positions
        return positions if positions is not None else self.tokenizer.model_max_length


def check_window(context: GenerationContext, prompt_ids: Sequence[int]) -> None:
    window = context.window()
    if window is not None and len(prompt_ids) > window:
        raise ClientInputError(
            f"the input is {len(prompt_ids)} tokens long, longer than this model's window of {window} "
            "tokens; "
            'shorten it or send "truncation": true'
        )


def truncation_length(context: GenerationContext, truncation: Any, max_length: int | None) -> int | None:
    """The length a transformers tokenizer truncates to, for the pipeline's `truncation` and `max_length`
    tokenizer arguments: `max_length` alone means truncate (longest_first, with a warning); truncation without
    a length means model_max_length, which may be unlimited."""
    if truncation is None:
        truncation = max_length is not None or context.truncate_by_default
    if isinstance(truncation, str):
        truncation = truncation != "do_not_truncate"
    if not truncation:
        return None
    return max_length if max_length is not None else context.tokenizer.model_max_length


def check_truncation(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value in {"longest_first", "only_first", "only_second", "do_not_truncate"}:
        return value
    raise ClientInputError("parameter `truncation` must be true, false or a truncation strategy name")


def checked_generate_kwargs(parameters: Mapping[str, Any], accepted: frozenset[str]) -> dict[str, Any]:
    """The request's generate() parameters, type-checked; a parameter neither generate() nor the task
    (`accepted`) takes is refused."""
    generate_kwargs = {}
    for name, value in parameters.items():
        if name in GENERATE_PARAMETERS:
            generate_kwargs[name] = check_generate_parameter(name, value)
        elif name not in accepted:
            raise unknown_parameter(name)
    return generate_kwargs


def bool_parameter(parameters: Mapping[str, Any], name: str) -> bool | None:
    value = parameters.get(name)
    if value is not None and not isinstance(value, bool):
        raise ClientInputError(f"parameter `{name}` must be true or false")
    return value


def pad_sequences(sequences: Sequence[Sequence[int]], pad_token_id: int | None) -> list[list[int]]:
    """generate()'s output rows: shorter sequences padded on the right to the longest."""
    width = max((len(s) for s in sequences), default=0)
    pad = 0 if pad_token_id is None else pad_token_id
    return [[*s, *([pad] * (width - len(s)))] for s in sequences]
