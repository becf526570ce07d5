"""sagemaker-runtime over HTTP: `POST /endpoints/{name}/invocations`, plus the container contract
(`POST /invocations`, `GET /ping`). A thin adapter: the router does the work, this turns its answer or
error into SageMaker's response and reports one record per invocation."""

from __future__ import annotations

import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from zeroserve import error_messages as messages
from zeroserve.api import messages_api
from zeroserve.api.error_responses import error_code, error_response, rule_for
from zeroserve.api.invocation_report import Report
from zeroserve.errors import ValidationError
from zeroserve.runtimes.base import Invocation
from zeroserve.scheduler.router import Router

_MAX_HEADER_CHARS = 1024


def _header(request: Request, name: str, default: str | None) -> str | None:
    value = request.headers.get(name, default)
    if value is not None and (len(value) > _MAX_HEADER_CHARS or not value.isascii()):
        raise ValidationError(f"Header {name} must be at most {_MAX_HEADER_CHARS} ASCII characters.")
    return value


async def invoke_endpoint(request: Request) -> Response:
    return await invoke_named(request, request.path_params["endpoint_name"])


async def invoke_single(request: Request) -> Response:
    """The container contract: `/invocations` answers for the only endpoint there is."""
    router: Router = request.app.state.router
    names = list(router.endpoints)
    if len(names) != 1:
        return error_response(
            ValidationError(f"/invocations needs exactly one InService endpoint; there are {len(names)}."),
            "runtime",
        )
    return await invoke_named(request, names[0])


async def ping(request: Request) -> Response:
    if request.app.state.draining:
        return JSONResponse({"status": "draining"}, status_code=503)
    return JSONResponse({"status": "healthy"})


async def invoke_named(request: Request, name: str) -> Response:
    """Invoke endpoint `name` with this request's body and headers."""
    arrived_wall, arrived = time.time(), time.perf_counter()
    try:
        invocation, target = await read_invocation(request, name)
    except Exception as exc:  # refused before any variant was chosen: nothing to record
        return error_response(exc, "runtime")
    # TGI's Messages API, which SageMaker's LLM containers take on /invocations. Looked for in the raw bytes
    # first: invocations are hot, and a toolkit body without the word needs no second parse.
    if b'"messages"' in invocation.body:
        answered = await messages_api.answer(request.app, name, invocation, target)
        if answered is not None:
            return answered
    return await run(request.app, name, invocation, target, arrived_wall=arrived_wall, arrived=arrived)


async def read_invocation(request: Request, name: str) -> tuple[Invocation, str | None]:
    """The invocation a sagemaker-runtime request carries, and its target variant (raises what it refuses
    before a variant is chosen)."""
    router: Router = request.app.state.router
    if request.app.state.draining:
        raise messages.server_draining()
    declared = request.headers.get("content-length")
    if declared and declared.isdigit():
        router.check_payload(name, int(declared))
    content_type = _header(request, "content-type", "application/json") or "application/json"
    accept = _header(request, "accept", "application/json") or "application/json"
    if accept in ("*/*", ""):
        accept = "application/json"
    custom = _header(request, "x-amzn-sagemaker-custom-attributes", None)
    target = _header(request, "x-amzn-sagemaker-target-variant", None)
    body = await request.body()
    return Invocation(body, content_type, accept, custom), target


async def run(
    app: Starlette,
    name: str,
    invocation: Invocation,
    target: str | None = None,
    *,
    arrived_wall: float | None = None,
    arrived: float | None = None,
) -> Response:
    """The data plane's answer to one invocation, as SageMaker's response, reported as one record (also
    what api/public.py calls)."""
    router: Router = app.state.router
    report = Report(app.state.observer, name, len(invocation.body))
    if arrived_wall is not None:
        report.arrived_wall = arrived_wall
    if arrived is not None:
        report.arrived = arrived
    trace = report.trace
    try:
        if app.state.draining:
            raise messages.server_draining()
        result = await router.invoke(name, invocation, trace, target)
        response = Response(
            result.body,
            media_type=result.content_type,
            headers={
                "X-Amzn-Invoked-Production-Variant": result.variant,
                # zeroserve extras, for people tuning batching and for benchmarks
                "X-Zeroserve-Model-Latency-Us": str(int(trace.model_ms * 1000)),
                "X-Zeroserve-Batch-Size": str(trace.batch_size),
                "X-Zeroserve-Cold-Start": "1" if trace.cold_start else "0",
            },
        )
        status, code, sent = 200, None, len(result.body)
    except Exception as exc:
        response = error_response(exc, "runtime")
        status, code, sent = rule_for(exc).status, error_code(exc, "runtime"), len(response.body)
    report.send(status, code, sent)
    return response
