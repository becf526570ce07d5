"""The default Handler: toolkit requests in, toolkit answers out, all queued invocations batched together.

Each invocation is decoded and validated on its own, so a bad one gets its error in its slot and its
neighbours still run; the valid ones go to the pipeline together. Every failure, whatever raised it, is
answered as the toolkit's model server answers it: a 400 with its JSON error body (ModelServerError).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from zeroserve.runtimes import codec
from zeroserve.runtimes.base import Invocation, Outcome, as_model_server_error
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
                codec.check_accept(invocation.accept)
                data = codec.decode_body(invocation.body, invocation.content_type)
                requests.append(codec.split_request(data))
                slots.append(i)
            except Exception as exc:
                outcomes[i] = as_model_server_error(exc)
        for i, result in zip(slots, self.pipeline.run(requests), strict=True):
            if isinstance(result, BaseException):
                outcomes[i] = as_model_server_error(result)
                continue
            try:
                outcomes[i] = codec.encode_reply(result, invocations[i].accept)
            except Exception as exc:
                outcomes[i] = as_model_server_error(exc)
        return [outcome if outcome is not None else RuntimeError("no outcome") for outcome in outcomes]
