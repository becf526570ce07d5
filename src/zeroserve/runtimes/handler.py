"""The default Handler: HF-toolkit JSON in, JSON out, every queued invocation in one forward pass.

Each invocation is decoded and validated on its own, so a bad one gets a ClientInputError in its slot and
its neighbours still run; the valid ones go to the pipeline together.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from zeroserve.runtimes import codec
from zeroserve.runtimes.base import Invocation, Outcome
from zeroserve.runtimes.pipeline import Pipeline


class DefaultHandler:
    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def warm_up(self) -> None:
        inputs, parameters = self.pipeline.task.example()
        self.pipeline(inputs, **parameters)

    def handle_batch(self, invocations: Sequence[Invocation]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(invocations)
        slots: list[int] = []
        requests: list[tuple[Any, dict[str, Any]]] = []
        for i, invocation in enumerate(invocations):
            try:
                # Checked before the forward pass so an unsupported Accept costs no model time.
                codec.encode_reply(None, invocation.accept)
                data = codec.decode_body(invocation.body, invocation.content_type)
                requests.append(codec.split_request(data))
                slots.append(i)
            except Exception as exc:
                outcomes[i] = exc
        for i, result in zip(slots, self.pipeline.run(requests), strict=True):
            if isinstance(result, BaseException):
                outcomes[i] = result
                continue
            try:
                outcomes[i] = codec.encode_reply(result, invocations[i].accept)
            except Exception as exc:
                outcomes[i] = exc
        return [outcome if outcome is not None else RuntimeError("no outcome") for outcome in outcomes]
