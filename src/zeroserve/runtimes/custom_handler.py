"""The SageMaker Hugging Face inference toolkit's custom-code contract, over zeroserve's runtime.

`code/inference.py` may define `model_fn(model_dir)`, `input_fn(body, content_type)`,
`predict_fn(data, model)`, `output_fn(prediction, accept)`, or `transform_fn(model, body, content_type,
accept)` instead of the last three. Missing hooks fall back to the toolkit's defaults, with our pipeline as
the default model. User code runs one invocation at a time: it may keep state or not be batch-safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from zeroserve.errors import ArtifactError
from zeroserve.runtimes import codec
from zeroserve.runtimes.base import Invocation, Outcome, Reply, as_model_server_error
from zeroserve.runtimes.pipeline import Pipeline
from zeroserve.runtimes.user_script import call_hook, hook


class CustomCodeHandler:
    def __init__(self, module: ModuleType, model_dir: Path, pipeline: Pipeline | None) -> None:
        self.pipeline = pipeline
        model_fn = hook(module, "model_fn")
        if model_fn is not None:
            self.model: Any = call_hook(model_fn, str(model_dir))
        elif pipeline is not None:
            self.model = pipeline
        else:
            raise ArtifactError("the inference script defines no model_fn and the bundle holds no model")
        self.input_fn = hook(module, "input_fn")
        self.predict_fn = hook(module, "predict_fn")
        self.output_fn = hook(module, "output_fn")
        self.transform_fn = hook(module, "transform_fn")

    def warm_up(self) -> None:
        # Only our own model has a known-good sample request; a user's model_fn already did its loading,
        # and running user hooks on made-up input could fail or have side effects.
        if self.pipeline is not None and self.model is self.pipeline:
            inputs, parameters = self.pipeline.task.example()
            self.pipeline(inputs, **parameters)

    def handle_batch(self, invocations: Sequence[Invocation]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for invocation in invocations:
            try:
                outcomes.append(self._handle(invocation))
            except Exception as exc:  # the toolkit answers whatever a hook raised as a 400
                outcomes.append(as_model_server_error(exc))
        return outcomes

    def _handle(self, invocation: Invocation) -> Reply:
        # As the toolkit hands them to hooks: JSON and CSV bodies as str, others as bytes; an empty or */*
        # Accept as application/json.
        body: bytes | str = invocation.body
        if codec.media_type(invocation.content_type) in (codec.JSON, codec.CSV):
            body = invocation.body.decode("utf-8", errors="replace")
        accept = invocation.accept
        if codec.media_type(accept) in ("", codec.ANY):
            accept = codec.JSON
        if self.transform_fn is not None:
            response = call_hook(self.transform_fn, self.model, body, invocation.content_type, accept)
            return codec.reply_from_user(response, accept)
        if self.input_fn is not None:
            data = call_hook(self.input_fn, body, invocation.content_type)
        else:
            data = codec.decode_body(invocation.body, invocation.content_type)
        if self.predict_fn is not None:
            prediction = call_hook(self.predict_fn, data, self.model)
        else:
            prediction = _default_predict(data, self.model)
        if self.output_fn is not None:
            return codec.reply_from_user(call_hook(self.output_fn, prediction, accept), accept)
        return codec.encode_reply(prediction, accept)


def _default_predict(data: Any, model: Any) -> Any:
    """The toolkit's default predict_fn: call the model like a transformers pipeline."""
    inputs, parameters = codec.split_request(data)
    return model(inputs, **parameters)
