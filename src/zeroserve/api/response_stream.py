"""InvokeEndpointWithResponseStream: `POST /endpoints/{name}/invocations-response-stream`.

The body is an InvokeEndpoint body; the answer is an AWS event stream of `PayloadPart` events carrying what
SageMaker's LLM container (TGI) streams: its token events for a toolkit body (`{"inputs", "parameters"}`, as
the SDK's `predict_stream` sends with `"stream": true`), OpenAI's chat chunks for a Messages API body. An
error before the first token is an ordinary SageMaker error response; after it, a ModelStreamError or
InternalStreamFailure event ends the stream.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from zeroserve.api import event_stream, generation_calls, messages_api, openai_responses, runtime
from zeroserve.api.error_responses import error_response
from zeroserve.api.stream_formats import EventStream, OpenAIChunks, TgiEvents
from zeroserve.runtimes.base import Invocation

# TGI's request fields that shape the stream rather than the generation: taken out before the model sees it.
_STREAM_FIELDS = ("stream",)
_STREAM_PARAMETERS = ("details", "decoder_input_details")


async def invoke_endpoint_stream(request: Request) -> Response:
    name = request.path_params["endpoint_name"]
    try:
        invocation, target = await runtime.read_invocation(request, name)
        chat = messages_api.read(invocation, messages_api.max_new_tokens_limit(request.app))
    except Exception as exc:  # refused before any variant was chosen: nothing to record
        return error_response(exc, "runtime")
    fmt: EventStream
    if chat is not None:
        model = chat.model or name
        chunks = openai_responses.CompletionStream(
            "chat", model, include_usage=chat.include_usage, prefix=messages_api.TGI_PREFIX
        )
        fmt = EventStream(OpenAIChunks(chunks))
        invocation = messages_api.toolkit_invocation(invocation, chat)
    else:
        invocation, events = _tgi_request(invocation)
        fmt = EventStream(events)

    def headers(variant: str) -> dict[str, str]:
        return event_stream.response_headers(variant, "text/event-stream")

    return await generation_calls.stream(
        request.app, name, invocation, target, fmt, headers, lambda exc: error_response(exc, "runtime")
    )


def _tgi_request(invocation: Invocation) -> tuple[Invocation, TgiEvents]:
    """The invocation the model gets (without TGI's stream-shaping fields) and the events to write."""
    try:
        body: Any = json.loads(invocation.body)
    except (ValueError, RecursionError):
        return invocation, TgiEvents()  # not JSON: the model's own decoder answers it, before any token
    if not isinstance(body, dict):
        return invocation, TgiEvents()
    for name in _STREAM_FIELDS:
        body.pop(name, None)
    parameters = body.get("parameters")
    details = False
    prefix = ""
    if isinstance(parameters, dict):
        details = bool(parameters.pop("details", False))
        for name in _STREAM_PARAMETERS:
            parameters.pop(name, None)
        inputs = body.get("inputs")
        if parameters.get("return_full_text") is True and isinstance(inputs, str):
            prefix = inputs
    rewritten = Invocation(
        json.dumps(body).encode(), "application/json", invocation.accept, invocation.custom_attributes
    )
    return rewritten, TgiEvents(prefix, details)
