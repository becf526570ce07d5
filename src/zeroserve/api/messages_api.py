"""TGI's Messages API on `/invocations` (what SageMaker's LLM containers accept there): a body with `messages`
answers an OpenAI `chat.completion`, or with `"stream": true` its `chat.completion.chunk` events (TGI writes
them `data:` with no space). Refusals and errors keep SageMaker's runtime shape, as any invocation's."""

from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response

from zeroserve.api import generation_calls, openai_responses, tgi_stream
from zeroserve.api.error_responses import error_code, error_response
from zeroserve.api.openai_requests import GenerationRequest, is_messages_body, parse_chat_request
from zeroserve.api.stream_formats import OpenAIChunks
from zeroserve.runtimes.base import Invocation

TGI_PREFIX = b"data:"


def read(invocation: Invocation, limit: int | None = None) -> GenerationRequest | None:
    """The chat request in a Messages API body; None when the body is not one (a toolkit body)."""
    try:
        body = json.loads(invocation.body)
    except (ValueError, RecursionError):
        return None  # not JSON: the model's own decoder answers it
    if not is_messages_body(body):
        return None
    return parse_chat_request(body, require_model=False, max_new_tokens_limit=limit)


def toolkit_invocation(invocation: Invocation, request: GenerationRequest) -> Invocation:
    body = request.toolkit_body()
    return Invocation(body, "application/json", "application/json", invocation.custom_attributes)


async def answer(app: Starlette, name: str, invocation: Invocation, target: str | None) -> Response | None:
    """The answer to a Messages API body, None when it is not one."""
    try:
        request = read(invocation, max_new_tokens_limit(app))
    except Exception as exc:
        return error_response(exc, "runtime")
    if request is None:
        return None
    model = request.model or name
    call = toolkit_invocation(invocation, request)
    if request.stream:
        chunks = openai_responses.CompletionStream(
            "chat", model, include_usage=request.include_usage, prefix=TGI_PREFIX
        )
        return await generation_calls.stream(
            app, name, call, target, OpenAIChunks(chunks), sse_headers,
            lambda exc: error_response(exc, "runtime"),
        )
    report = generation_calls.begin(app, name, call)
    try:
        generation = await generation_calls.generate(app, name, call, target, report)
        response: Response = JSONResponse(
            openai_responses.completion_of("chat", model, generation),
            headers={"X-Amzn-Invoked-Production-Variant": report.trace.variant},
        )
        code = None
    except Exception as exc:
        response, code = error_response(exc, "runtime"), error_code(exc, "runtime")
    report.send(response.status_code, code, len(response.body))
    return response


def sse_headers(variant: str) -> dict[str, str]:
    return {
        "Content-Type": tgi_stream.CONTENT_TYPE,
        "Cache-Control": "no-cache",
        "X-Amzn-Invoked-Production-Variant": variant,
    }


def max_new_tokens_limit(app: Starlette) -> int | None:
    """ZEROSERVE_MAX_NEW_TOKENS, once the settings carry it; the generation loop enforces it either way."""
    limit = getattr(app.state.settings, "max_new_tokens", None)
    return int(limit) if limit else None
