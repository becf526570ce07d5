"""One generation request through the data plane, for the routes that answer generations (the response
stream, the OpenAI-compatible routes, TGI's Messages API on /invocations): its one invocation record, and a
streamed answer whose first event is awaited before the response starts, so that a failure before the first
token is an ordinary error response. After it, a failure is the format's error event and the stream ends.
Whichever way a stream ends (finished, failed, or its client gone) the router's stream is closed at once,
which cancels the generation in the worker and frees its slot, and the record is reported.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable
from typing import Protocol

import anyio
from starlette.applications import Starlette
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from zeroserve import error_messages as messages
from zeroserve.api.error_responses import error_code
from zeroserve.api.invocation_report import Report
from zeroserve.runtimes.base import GeneratedToken, Generation, Invocation
from zeroserve.scheduler.router import Router, StreamEvent


def begin(app: Starlette, name: str, invocation: Invocation) -> Report:
    return Report(app.state.observer, name, len(invocation.body))


class StreamFormat(Protocol):
    """How a stream's events become bytes on the wire (b"" for nothing yet)."""

    def token(self, token: GeneratedToken) -> bytes: ...

    def end(self, generation: Generation) -> bytes: ...

    def error(self, exc: BaseException) -> bytes: ...


class _ClosingStreamingResponse(StreamingResponse):
    """Closes its body when the response ends however it ends: Starlette leaves a body whose client went
    away to the garbage collector, which would keep the generation running until then."""

    def __init__(self, body: AsyncGenerator[bytes, None], headers: dict[str, str]) -> None:
        super().__init__(body, headers=headers)
        self._body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self._body.aclose()


async def stream(
    app: Starlette,
    name: str,
    invocation: Invocation,
    target: str | None,
    fmt: StreamFormat,
    headers: Callable[[str], dict[str, str]],
    on_error: Callable[[BaseException], Response],
) -> Response:
    """A streamed generation: `on_error` answers a failure before the first token, `headers(variant)` are
    the stream's response headers."""
    router: Router = app.state.router
    report = begin(app, name, invocation)
    try:
        if app.state.draining:
            raise messages.server_draining()
        events = router.invoke_stream(name, invocation, report.trace, target)
        first = await anext(events)
        if isinstance(first, GeneratedToken):
            report.trace.time_to_first_token_ms = (time.perf_counter() - report.arrived) * 1000
    except Exception as exc:
        response = on_error(exc)
        report.send(response.status_code, error_code(exc, "runtime"), len(response.body))
        return response
    body = _body(report, first, events, fmt)
    return _ClosingStreamingResponse(body, headers(report.trace.variant))


async def _body(
    report: Report, first: StreamEvent, events: AsyncGenerator[StreamEvent, None], fmt: StreamFormat
) -> AsyncGenerator[bytes, None]:
    sent, code = 0, None
    try:
        event: StreamEvent | None = first
        while event is not None:
            chunk = fmt.token(event) if isinstance(event, GeneratedToken) else fmt.end(event)
            if chunk:
                sent += len(chunk)
                yield chunk
            event = await anext(events, None)
    except Exception as exc:  # after the first token: the format's error event ends the stream
        code = error_code(exc, "runtime")
        chunk = fmt.error(exc)
        sent += len(chunk)
        yield chunk
    finally:
        with anyio.CancelScope(shield=True):
            await events.aclose()
        report.send(200, code, sent)


async def generate(
    app: Starlette, name: str, invocation: Invocation, target: str | None, report: Report
) -> Generation:
    """A generation answered whole (raises the domain error); the caller reports once it has answered."""
    if app.state.draining:
        raise messages.server_draining()
    router: Router = app.state.router
    return (await router.invoke_generate(name, invocation, report.trace, target)).generation
