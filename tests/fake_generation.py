"""A fake generative handler for the transport's tests: it "generates" the words of its prompt, one token
each, so tests can tell every token and the final text apart without a model. The prompts "raise" and
"refuse" fail before any token (a model error, a client error); the word "boom" fails the generation when
reached. `step_fd`, when given, is a pipe the handler reads one byte from before each token: the test decides
when each token is made, so "stops within a token" is checked without timing."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from zeroserve.runtimes.base import (
    ClientInputError,
    GeneratedSequence,
    GeneratedToken,
    Generation,
    Invocation,
    Outcome,
    Reply,
    TokenSink,
)


class FakeGenerativeHandler:
    def __init__(self, step_fd: int | None = None) -> None:
        self.step_fd = step_fd

    def warm_up(self) -> None:
        pass

    def handle_batch(self, invocations: Sequence[Invocation]) -> list[Outcome]:
        return [Reply(b'[{"generated_text": "batch"}]') for _ in invocations]

    def generate(self, invocation: Invocation, on_token: TokenSink | None = None) -> Generation:
        request = json.loads(invocation.body)
        prompt = request.get("inputs")
        if not isinstance(prompt, str):
            prompt = " ".join(m["content"] for m in prompt)  # chat messages
        if prompt == "raise":
            raise RuntimeError("the model broke")
        if prompt == "refuse":
            raise ClientInputError("parameter `bogus` is not supported")
        words = prompt.split()
        limit = int(request.get("parameters", {}).get("max_new_tokens", len(words)))
        text, count = "", 0
        for index, word in enumerate(words[:limit], start=1):
            if self.step_fd is not None:
                os.read(self.step_fd, 1)
            if word == "boom":
                raise RuntimeError("the model broke mid-stream")
            piece = word if index == 1 else " " + word
            text, count = text + piece, index
            last = index == min(limit, len(words))
            token = GeneratedToken(
                index=index, id=100 + index, text=piece, logprob=-0.5, special=False, last=last
            )
            if on_token is not None and not on_token(token):
                break
        reason = "length" if count == limit and limit < len(words) else "eos_token"
        return Generation([GeneratedSequence(text, reason, count)], prompt_tokens=len(words), seed=None)
