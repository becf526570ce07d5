"""The OpenAI-compatible routes: `POST /v1/chat/completions` and `POST /v1/completions`, `model` being the
endpoint's name, answered whole or streamed as server-sent events, for the official `openai` client
(`base_url=".../v1"`). `Authorization: Bearer` keys are checked when ZEROSERVE_API_KEYS is set. Errors are
OpenAI's error objects (api/openai_responses.py), with the status an OpenAI client expects.
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from zeroserve import errors
from zeroserve.api import generation_calls, messages_api, openai_responses
from zeroserve.api.auth import check_bearer_key
from zeroserve.api.error_responses import error_code
from zeroserve.api.openai_requests import (
    GenerationRequest,
    OpenAIRequestError,
    parse_chat_request,
    parse_completion_request,
)
from zeroserve.api.stream_formats import OpenAIChunks
from zeroserve.runtimes.base import Invocation


def _error(exc: BaseException) -> Response:
    return JSONResponse(openai_responses.error_body(exc), status_code=openai_responses.error_status(exc))


async def _read(request: Request, chat: bool) -> GenerationRequest:
    check_bearer_key(request.headers.get("authorization"), request.app.state.settings.api_keys)
    try:
        body = json.loads(await request.body())
    except (ValueError, RecursionError):
        raise OpenAIRequestError(
            "We could not parse the JSON body of your request.", code="invalid_request_body"
        ) from None
    limit = messages_api.max_new_tokens_limit(request.app)
    if chat:
        return parse_chat_request(body, max_new_tokens_limit=limit)
    return parse_completion_request(body, max_new_tokens_limit=limit)


async def _complete(request: Request, chat: bool) -> Response:
    try:
        parsed = await _read(request, chat)
    except Exception as exc:
        return _error(exc)
    name = parsed.model or ""
    if name not in request.app.state.router.endpoints:  # OpenAI's 404 model_not_found, not SageMaker's 400
        missing = errors.ResourceNotFound(f"The model `{name}` does not exist (no endpoint has that name).")
        return _error(missing)
    invocation = Invocation(parsed.toolkit_body(), "application/json", "application/json", None)
    app = request.app
    if parsed.stream:
        chunks = openai_responses.CompletionStream(parsed.kind, name, include_usage=parsed.include_usage)
        return await generation_calls.stream(
            app, name, invocation, None, OpenAIChunks(chunks), messages_api.sse_headers, _error
        )
    report = generation_calls.begin(app, name, invocation)
    try:
        generation = await generation_calls.generate(app, name, invocation, None, report)
        response: Response = JSONResponse(openai_responses.completion_of(parsed.kind, name, generation))
        code = None
    except Exception as exc:
        response, code = _error(exc), error_code(exc, "runtime")
    report.send(response.status_code, code, len(response.body))
    return response


async def chat_completions(request: Request) -> Response:
    return await _complete(request, chat=True)


async def completions(request: Request) -> Response:
    return await _complete(request, chat=False)


routes = [
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/v1/completions", completions, methods=["POST"]),
]
