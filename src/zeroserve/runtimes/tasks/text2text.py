"""text2text-generation, summarization and translation(_xx_to_yy), as transformers 4.51.3's
Text2TextGenerationPipeline and its two subclasses answer through the toolkit.

Each input string is tokenized alone, after the pipeline's prefix (T5's "summarize: " from
task_specific_params), with the tokenizer's special tokens, truncated only when `truncation` asks. The answer
holds the decoded output with special tokens skipped and without clean-up unless asked:
`[{"generated_text" | "summary_text" | "translation_text": ...}]`, one record per returned sequence; for a
list of inputs, one such list per input, flattened to one record per input when each has one.

`src_lang` / `tgt_lang` are taken, as the pipeline takes them; they change the tokenization only for
tokenizers with language codes (MBart, M2M100, NLLB), which zeroserve does not serve, so they change nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from zeroserve.runtimes import task_names as t
from zeroserve.runtimes.base import ClientInputError
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
    {"return_tensors", "return_text", "clean_up_tokenization_spaces", "truncation", "stop_sequence"}
)
_TRANSLATION_PARAMETERS = frozenset({"src_lang", "tgt_lang"})
_RETURN_NAMES = {
    t.TEXT2TEXT_GENERATION: "generated",
    t.SUMMARIZATION: "summary",
    t.TRANSLATION: "translation",
}


class Text2TextGeneration:
    def __init__(self, context: GenerationContext) -> None:
        self.context = context
        self.pipeline_task = t.pipeline_task(context.task)
        self.return_name = _RETURN_NAMES[self.pipeline_task]
        own = _OWN_PARAMETERS | (
            _TRANSLATION_PARAMETERS if self.pipeline_task == t.TRANSLATION else frozenset()
        )
        self.accepted = own | PIPELINE_PARAMETERS

    def example(self) -> tuple[Any, dict[str, Any]]:
        return WARM_UP_TEXT, {"max_new_tokens": 1}

    def plan(self, inputs: Any, parameters: Mapping[str, Any]) -> GenerationPlan:
        generate_kwargs = checked_generate_kwargs(parameters, self.accepted)
        for name in _TRANSLATION_PARAMETERS & set(parameters):
            if not isinstance(parameters[name], str | None):
                raise ClientInputError(f"parameter `{name}` must be a string")
        # Text2TextGenerationPipeline: any return_tensors asks for ids (if true), return_text is ignored.
        tensors = bool(parameters.get("return_tensors"))
        clean_up = bool_parameter(parameters, "clean_up_tokenization_spaces") or False
        bool_parameter(parameters, "return_text")
        truncation = check_truncation(parameters.get("truncation"))
        texts, batched = self._parse_inputs(inputs)

        context = self.context
        eos_override = _stop_token(context.tokenizer, parameters.get("stop_sequence"))
        limit = truncation_length(context, truncation, None)
        prefix = context.checkpoint.prefix or ""
        jobs = []
        for text in texts:
            ids = tuple(context.tokenizer.encode(prefix + text, max_length=limit))
            check_window(context, ids)
            settings = resolve_settings(
                context.checkpoint,
                generate_kwargs,
                input_length=1,
                limits=context.limits,
                eos_override=eos_override,
            )
            jobs.append(GenerationJob(prompt_ids=ids, settings=settings))
        answers = _Answers(jobs, context.tokenizer, self.return_name, tensors, clean_up, batched)
        return GenerationPlan(jobs=jobs, finish=answers.finish, detokenizer=answers.detokenizer)

    def _parse_inputs(self, inputs: Any) -> tuple[list[str], bool]:
        if isinstance(inputs, str):
            return [inputs], False
        if isinstance(inputs, list) and inputs and all(isinstance(x, str) for x in inputs):
            return list(inputs), True
        raise ClientInputError(
            f"the {self.pipeline_task} `inputs` must be a string or a non-empty list of strings"
        )


def _stop_token(tokenizer: GenerativeTokenizer, stop: Any) -> tuple[int] | None:
    """The eos ids that `stop_sequence` puts in place of the checkpoint's: only its first token stops
    generation, as the pipeline warns."""
    if stop is None:
        return None
    if not isinstance(stop, str):
        raise ClientInputError("parameter `stop_sequence` must be a string")
    stop_ids = tokenizer.encode(stop, add_special_tokens=False)
    if not stop_ids:
        raise ClientInputError("parameter `stop_sequence` is no token at all")
    return (stop_ids[0],)


@dataclass(frozen=True)
class _Answers:
    """Generated ids back into the pipeline's answer: one record per sequence, `{return_name}_text` (or
    `_token_ids` for return_tensors), one list per input, flattened when every input has one record."""

    jobs: list[GenerationJob]
    tokenizer: GenerativeTokenizer
    return_name: str
    tensors: bool
    clean_up: bool
    batched: bool

    def finish(self, generated: Generated) -> Any:
        answers: list[list[dict[str, Any]]] = []
        for job, sequences in zip(self.jobs, generated, strict=True):
            rows = pad_sequences([_output_ids(job, new) for new in sequences], job.settings.pad_token_id)
            if self.tensors:
                answers.append([{f"{self.return_name}_token_ids": list(row)} for row in rows])
            else:
                answers.append([{f"{self.return_name}_text": self._decode(row)} for row in rows])
        if not self.batched:
            return answers[0]
        return [a[0] for a in answers] if all(len(a) == 1 for a in answers) else answers

    def detokenizer(self, index: int) -> IncrementalDetokenizer:
        job = self.jobs[index]
        return IncrementalDetokenizer(lambda ids: self._decode(_output_ids(job, ids)), clean_up=self.clean_up)

    def _decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(ids, clean_up_tokenization_spaces=self.clean_up)


def _output_ids(job: GenerationJob, new_ids: Sequence[int]) -> list[int]:
    """generate()'s output row: the decoder's start token first."""
    start = job.settings.decoder_start_token_id
    return [*([] if start is None else [start]), *new_ids]
