"""The Handler of a generative model: toolkit requests in, toolkit answers out (`handle_batch`), and
`generate` for the streaming and OpenAI-compatible routes (the new text only, token by token when asked).

A generative task (runtimes/tasks/) turns a request into jobs (prompt ids + resolved settings) and the
generated ids back into the toolkit's answer; the decoding loop (runtimes/generation/) runs each job on the
model. Each prompt is generated on its own, as the toolkit's pipeline runs one input at a time (in one
batched generate() call, rows run on until all of them can stop, which changes the answers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from zeroserve.runtimes import codec
from zeroserve.runtimes.base import (
    ClientInputError,
    FinishReason,
    GeneratedSequence,
    GeneratedToken,
    Generation,
    Invocation,
    Outcome,
    TokenSink,
    as_model_server_error,
)
from zeroserve.runtimes.generation import decode
from zeroserve.runtimes.generation.model import NextTokenModel
from zeroserve.runtimes.generation.outputs import PromptOutput
from zeroserve.runtimes.tasks.generation_plan import GenerationJob, GenerationPlan
from zeroserve.runtimes.tasks.generative import GenerativeTask
from zeroserve.runtimes.tasks.text2text import Text2TextGeneration


class GenerativeModelHandler:
    def __init__(self, task: GenerativeTask, model: NextTokenModel) -> None:
        self.task = task
        self.model = model
        self._tokenizer = task.context.tokenizer

    def warm_up(self) -> None:
        """One prefill and one decode step of a one-token prompt: both graphs' code paths run once (what a
        cold start must not pay on its first request) for a few ms, not a whole example's generation."""
        token = self.task.context.tokenizer.encode("a", add_special_tokens=False)[:1] or [0]
        _, state = self.model.start([token])
        self.model.step(state, np.asarray([token[0]], dtype=np.int64))

    def handle_batch(self, invocations: Sequence[Invocation]) -> list[Outcome]:
        return [self._answer(invocation) for invocation in invocations]

    def _answer(self, invocation: Invocation) -> Outcome:
        try:
            codec.check_accept(invocation.accept)
            inputs, parameters = codec.split_request(
                codec.decode_body(invocation.body, invocation.content_type)
            )
            self._refuse_chat(inputs)
            plan = self.task.plan(inputs, parameters)
            outputs = self._run(plan)
            generated = [
                [output.generated(row) for row in range(len(output.sequences))] for output in outputs
            ]
            return codec.encode_reply(plan.finish(generated), invocation.accept)
        except Exception as exc:
            return as_model_server_error(exc)

    def _refuse_chat(self, inputs: Any) -> None:
        """Chat messages (the chat routes send nothing else) for a text2text model: its task would refuse
        them as a malformed `inputs`, which says nothing about why to someone who sent a chat."""
        if isinstance(self.task, Text2TextGeneration) and _is_chat(inputs):
            raise ClientInputError(
                f"this is a {self.task.context.task} model, which takes text, not chat messages: a chat "
                "needs a text-generation model whose tokenizer has a chat template; send `inputs` as text"
            )

    def _run(self, plan: GenerationPlan) -> list[PromptOutput]:
        return [decode.generate(self.model, [job.prompt_ids], job.settings)[0] for job in plan.jobs]

    def generate(self, invocation: Invocation, on_token: TokenSink | None = None) -> Generation:
        inputs, parameters = codec.split_request(codec.decode_body(invocation.body, invocation.content_type))
        stopping = parameters.get("stop_sequence") is not None
        self._refuse_chat(inputs)
        plan = self.task.plan(inputs, parameters)
        if on_token is not None:
            if len(plan.jobs) != 1 or plan.jobs[0].settings.num_return_sequences != 1:
                raise ClientInputError("a stream generates one sequence for one input")
            if plan.jobs[0].settings.num_beams > 1:
                return self._stream_beams(plan, plan.jobs[0], on_token, stopping)
            return self._stream(plan, plan.jobs[0], on_token, stopping)
        sequences = []
        for index, output in enumerate(self._run(plan)):
            for row in range(len(output.sequences)):
                detokenizer = plan.detokenizer(index)
                for token in output.generated(row):
                    detokenizer.add(token)
                detokenizer.finish()
                reason = _finish_reason(bool(output.ended_on_eos[row]), stopping)
                sequences.append(
                    GeneratedSequence(detokenizer.text, reason, int(output.generated_lengths[row]))
                )
        prompt_tokens = sum(len(job.prompt_ids) for job in plan.jobs)
        return Generation(sequences, prompt_tokens, plan.jobs[0].settings.seed if plan.jobs else None)

    def _stream(
        self, plan: GenerationPlan, job: GenerationJob, on_token: TokenSink, stopping: bool
    ) -> Generation:
        detokenizer = plan.detokenizer(0)
        count = 0
        reason: FinishReason = "length"
        for step in decode.stream(self.model, [job.prompt_ids], job.settings):
            token = int(step.tokens[0])
            count += 1
            text = detokenizer.add(token)
            finished = bool(step.finished[0])
            if finished:
                text += detokenizer.finish()
                reason = _finish_reason(bool(step.ended_on_eos[0]), stopping)
            event = GeneratedToken(
                index=count,
                id=token,
                text=text,
                logprob=float(step.logprobs[0]),
                special=self._tokenizer.is_special(token),
                last=finished,
            )
            if not on_token(event) or finished:
                break
        sequence = GeneratedSequence(detokenizer.text, reason, count)
        return Generation([sequence], len(job.prompt_ids), job.settings.seed)


    def _stream_beams(
        self, plan: GenerationPlan, job: GenerationJob, on_token: TokenSink, stopping: bool
    ) -> Generation:
        """Beam search knows its answer only at the end (a model whose generation config asks for beams, as
        T5's summarization does): the stream carries the same answer as a plain invocation, its tokens sent
        together once it is found, rather than a greedy answer that would differ."""
        (output,) = decode.generate(self.model, [job.prompt_ids], job.settings)
        tokens = output.generated(0)
        detokenizer = plan.detokenizer(0)
        for index, token in enumerate(tokens, start=1):
            last = index == len(tokens)
            text = detokenizer.add(token) + (detokenizer.finish() if last else "")
            event = GeneratedToken(index, token, text, None, self._tokenizer.is_special(token), last)
            if not on_token(event):
                break
        reason = _finish_reason(bool(output.ended_on_eos[0]), stopping)
        sequence = GeneratedSequence(detokenizer.text, reason, len(tokens))
        return Generation([sequence], len(job.prompt_ids), job.settings.seed)


def _is_chat(inputs: Any) -> bool:
    """A chat ({role, content} dicts) or a list of chats."""
    if not isinstance(inputs, list) or not inputs:
        return False
    first = inputs[0]
    return isinstance(first, dict) or (isinstance(first, list) and bool(first) and isinstance(first[0], dict))


def _finish_reason(ended_on_eos: bool, stopping: bool) -> FinishReason:
    if not ended_on_eos:
        return "length"
    return "stop_sequence" if stopping else "eos_token"
