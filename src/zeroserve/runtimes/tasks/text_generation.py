"""text-generation, as transformers 4.51.3's TextGenerationPipeline answers through the toolkit.

Inputs: a string, a list of strings, a chat (a list of {role, content}) or a list of chats. A string is
tokenized with the tokenizer's special tokens (unless `add_special_tokens: false`), after the pipeline's
prefix; a chat goes through the chat template (with a generation prompt, or continuing a final assistant
message) and is tokenized without special tokens. Answer: `[{"generated_text": ...}]` per input, a list of
those for a list of inputs; the full text (prompt + new text) unless `return_full_text: false`; for a chat,
the messages with the assistant's reply appended. The new text is cut from the decoded whole by the length of
the decoded prompt, as the pipeline does.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from zeroserve.runtimes import task_names as t
from zeroserve.runtimes.base import ClientInputError
from zeroserve.runtimes.tasks.chat_template import pick_template, render_chat
from zeroserve.runtimes.tasks.detokenize import IncrementalDetokenizer
from zeroserve.runtimes.tasks.generation_parameters import resolve_settings
from zeroserve.runtimes.tasks.generation_plan import (
    Generated,
    GenerationContext,
    GenerationJob,
    GenerationPlan,
    bool_parameter,
    check_truncation,
    check_window,
    checked_generate_kwargs,
    pad_sequences,
    truncation_length,
)
from zeroserve.runtimes.tasks.generative_tokenizer import GenerativeTokenizer
from zeroserve.runtimes.tasks.plan import PIPELINE_PARAMETERS, WARM_UP_TEXT

_OWN_PARAMETERS = frozenset(
    {"return_full_text", "return_tensors", "return_text", "clean_up_tokenization_spaces", "stop_sequence",
     "truncation", "add_special_tokens", "continue_final_message", "padding"}
)  # fmt: skip


class ReturnType(enum.Enum):
    TENSORS = 0
    NEW_TEXT = 1
    FULL_TEXT = 2


@dataclass(frozen=True)
class _Prompt:
    text: str | None  # the string input, or None for a chat
    messages: list[dict[str, Any]] | None
    ids: tuple[int, ...]
    # The pipeline passes no input ids for an empty prompt: generation starts from bos, nothing is stripped.
    empty: bool = False


class TextGeneration:
    def __init__(self, context: GenerationContext) -> None:
        self.context = context

    def example(self) -> tuple[Any, dict[str, Any]]:
        return WARM_UP_TEXT, {"max_new_tokens": 1}

    def plan(self, inputs: Any, parameters: Mapping[str, Any]) -> GenerationPlan:
        generate_kwargs = checked_generate_kwargs(parameters, _OWN_PARAMETERS | PIPELINE_PARAMETERS)
        return_type = _return_type(parameters)
        clean_up = bool_parameter(parameters, "clean_up_tokenization_spaces")
        clean_up = True if clean_up is None else clean_up
        continue_final = bool_parameter(parameters, "continue_final_message")
        add_special = bool_parameter(parameters, "add_special_tokens")
        truncation = check_truncation(parameters.get("truncation"))
        if parameters.get("padding") not in (None, False, True, "longest", "do_not_pad"):
            raise ClientInputError("parameter `padding` must be true, false, longest or do_not_pad")
        items, batched = _parse_inputs(inputs)

        tokenizer, checkpoint = self.context.tokenizer, self.context.checkpoint
        eos_override = _stop_ids(tokenizer, parameters.get("stop_sequence"))
        prefix = checkpoint.prefix or ""
        prefix_length = len(tokenizer.encode(prefix, add_special_tokens=bool(add_special))) if prefix else 0
        limit = truncation_length(self.context, truncation, generate_kwargs.get("max_length"))

        prompts = [self._prompt(item, prefix, add_special, continue_final, limit) for item in items]
        jobs = []
        for prompt in prompts:
            check_window(self.context, prompt.ids)
            settings = resolve_settings(
                checkpoint,
                generate_kwargs,
                input_length=len(prompt.ids),
                limits=self.context.limits,
                eos_override=eos_override,
                prefix_length=prefix_length,
            )
            jobs.append(GenerationJob(prompt_ids=prompt.ids, settings=settings))
        answers = _Answers(prompts, jobs, tokenizer, return_type, clean_up, continue_final, batched)
        return GenerationPlan(jobs=jobs, finish=answers.finish, detokenizer=answers.detokenizer)

    def _prompt(
        self,
        item: str | list[dict[str, Any]],
        prefix: str,
        add_special: bool | None,
        continue_final: bool | None,
        limit: int | None,
    ) -> _Prompt:
        tokenizer = self.context.tokenizer
        if isinstance(item, str):
            ids = tokenizer.encode(
                prefix + item, add_special_tokens=add_special is not False, max_length=limit
            )
            if not ids:
                bos = self.context.checkpoint.defaults.get("bos_token_id")
                if bos is None:
                    raise ClientInputError(
                        "`bos_token_id` has to be defined when no `input_ids` are provided."
                    )
                return _Prompt(text=item, messages=None, ids=(int(bos),), empty=True)
            return _Prompt(text=item, messages=None, ids=tuple(ids))
        template = pick_template(tokenizer.chat_template)
        if continue_final is None:
            continue_final = item[-1]["role"] == "assistant"
        rendered = render_chat(
            template, item, tokenizer.template_variables(), continue_final_message=continue_final
        )
        ids = tokenizer.encode(rendered, add_special_tokens=False, max_length=limit)
        return _Prompt(text=None, messages=item, ids=tuple(ids))


def _stop_ids(tokenizer: GenerativeTokenizer, stop: Any) -> tuple[int, ...] | None:
    """The eos ids that `stop_sequence` puts in place of the checkpoint's: all of its tokens."""
    if stop is None:
        return None
    if not isinstance(stop, str):
        raise ClientInputError("parameter `stop_sequence` must be a string")
    return tuple(tokenizer.encode(stop, add_special_tokens=False))


@dataclass(frozen=True)
class _Answers:
    """Generated ids back into TextGenerationPipeline's answer: one record per sequence, a list per input."""

    prompts: list[_Prompt]
    jobs: list[GenerationJob]
    tokenizer: GenerativeTokenizer
    return_type: ReturnType
    clean_up: bool
    continue_final: bool | None
    batched: bool

    def new_text(self, index: int, new_ids: Sequence[int]) -> str:
        """The pipeline's new text: the decoded whole, less as many characters as the decoded prompt has."""
        prompt = self.prompts[index]
        text = self.tokenizer.decode([*prompt.ids, *new_ids], clean_up_tokenization_spaces=self.clean_up)
        start = (
            0
            if prompt.empty
            else len(self.tokenizer.decode(prompt.ids, clean_up_tokenization_spaces=self.clean_up))
        )
        return text[start:]

    def finish(self, generated: Generated) -> Any:
        tensors = self.return_type == ReturnType.TENSORS
        answers = []
        for index, (prompt, job) in enumerate(zip(self.prompts, self.jobs, strict=True)):
            rows = pad_sequences([[*prompt.ids, *new] for new in generated[index]], job.settings.pad_token_id)
            n = len(prompt.ids)
            answers.append(
                [
                    _record(
                        prompt,
                        row,
                        "" if tensors else self.new_text(index, row[n:]),
                        self.return_type,
                        self.continue_final,
                    )
                    for row in rows
                ]
            )
        return answers if self.batched else answers[0]

    def detokenizer(self, index: int) -> IncrementalDetokenizer:
        return IncrementalDetokenizer(lambda ids: self.new_text(index, ids), clean_up=self.clean_up)


def _record(
    prompt: _Prompt, row: list[int], text: str, return_type: ReturnType, continue_final: bool | None
) -> dict[str, Any]:
    """One answer of TextGenerationPipeline.postprocess."""
    if return_type == ReturnType.TENSORS:
        return {"generated_token_ids": row}
    if return_type == ReturnType.NEW_TEXT:
        return {"generated_text": text}
    if prompt.messages is None:
        return {"generated_text": (prompt.text or "") + text}
    messages = prompt.messages
    if continue_final is None:
        continue_final = messages[-1]["role"] == "assistant"
    if continue_final:
        last = messages[-1]
        return {"generated_text": [*messages[:-1], {"role": last["role"], "content": last["content"] + text}]}
    return {"generated_text": [*messages, {"role": "assistant", "content": text}]}


def _return_type(parameters: Mapping[str, Any]) -> ReturnType:
    """TextGenerationPipeline._sanitize_parameters' reading of return_full_text / return_tensors /
    return_text (any return_tensors value, false included, asks for tensors)."""
    full, tensors, text = (
        parameters.get(name) for name in ("return_full_text", "return_tensors", "return_text")
    )
    if full is not None:
        if text is not None:
            raise ClientInputError("`return_text` is mutually exclusive with `return_full_text`")
        if tensors is not None:
            raise ClientInputError("`return_full_text` is mutually exclusive with `return_tensors`")
        return ReturnType.FULL_TEXT if full else ReturnType.NEW_TEXT
    if tensors is not None:
        if text is not None:
            raise ClientInputError("`return_text` is mutually exclusive with `return_tensors`")
        return ReturnType.TENSORS
    return ReturnType.FULL_TEXT


def _parse_inputs(inputs: Any) -> tuple[list[str | list[dict[str, Any]]], bool]:
    """(prompts, batched): a string, a chat, or a list of either."""
    if isinstance(inputs, str):
        return [inputs], False
    if not isinstance(inputs, list):
        raise ClientInputError(
            f"the {t.TEXT_GENERATION} `inputs` must be a string, a list of strings or chat messages"
        )
    if not inputs:
        raise ClientInputError("`inputs` is an empty list")
    if isinstance(inputs[0], dict):
        return [_chat(inputs)], False
    if isinstance(inputs[0], list):
        return [_chat(chat) for chat in inputs], True
    if all(isinstance(x, str) for x in inputs):
        return list(inputs), True
    raise ClientInputError(
        f"the {t.TEXT_GENERATION} `inputs` must be a string, a list of strings or chat messages"
    )


def _chat(messages: Any) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise ClientInputError('a chat must be a non-empty list of {"role": ..., "content": ...} messages')
    for message in messages:
        if not ("role" in message and "content" in message):
            raise ClientInputError(
                "When passing chat dicts as input, each dict must have a 'role' and 'content' key."
            )
    return [dict(m) for m in messages]
