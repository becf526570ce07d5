"""Observability over HTTP: `GET /metrics` (Prometheus exposition), `GET /zeroserve/cost` (the meter, JSON)
and `GET /zeroserve/logs/{endpoint}` (the request log, JSON). Thin: the telemetry objects do the work; reads
that touch the disk run in a thread so the event loop keeps serving invocations."""

from __future__ import annotations

import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from zeroserve.api.error_responses import error_response
from zeroserve.errors import ValidationError
from zeroserve.metrics import billing, prometheus
from zeroserve.metrics.meter import Usage
from zeroserve.metrics.period import parse_since
from zeroserve.metrics.telemetry import Telemetry

DEFAULT_TAIL_LINES = 100
MAX_TAIL_LINES = 10_000


def _telemetry(request: Request) -> Telemetry:
    telemetry: Telemetry = request.app.state.services.telemetry
    return telemetry


def _int_param(request: Request, name: str, low: int, high: int) -> int | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ValidationError(f"{name} must be an integer from {low} to {high}.")
    return int(raw)


async def metrics(request: Request) -> Response:
    # Rendering thousands of series takes milliseconds: not on the loop that answers invocations.
    body = await run_in_threadpool(_telemetry(request).prometheus.exposition)
    return Response(body, media_type=prometheus.CONTENT_TYPE)


def cost_report(telemetry: Telemetry, since_s: float | None, endpoint: str | None) -> dict[str, Any]:
    """Usage and cost per endpoint, and their total. Blocking (flushes the meter)."""
    usages = telemetry.meter.report(since_s, endpoint)
    total = Usage("total")
    for usage in usages:
        total = total + usage
    prices = telemetry.prices
    return {
        "since_s": since_s,
        "prices": {"gb_second_usd": prices.gb_second_usd, "gb_data_usd": prices.gb_data_usd},
        "billed_duration": billing.BILLED_DURATION,
        "endpoints": [usage.as_dict(prices) for usage in usages],
        "total": total.as_dict(prices),
    }


async def cost(request: Request) -> Response:
    try:
        since = request.query_params.get("since")
        since_s = parse_since(since, time.time()) if since else None
        endpoint = request.query_params.get("endpoint") or None
        report = await run_in_threadpool(cost_report, _telemetry(request), since_s, endpoint)
    except ValidationError as exc:
        return error_response(exc, "runtime")
    return JSONResponse(report)


async def logs(request: Request) -> Response:
    endpoint = request.path_params["endpoint"]
    try:
        tail = _int_param(request, "tail", 0, MAX_TAIL_LINES)
        after = _int_param(request, "after", 0, 2**62)
        page = await run_in_threadpool(
            _telemetry(request).request_log.read, endpoint, tail=DEFAULT_TAIL_LINES if tail is None else tail,
            after=after,
        )
    except ValidationError as exc:
        return error_response(exc, "runtime")
    return JSONResponse({"endpoint": endpoint, "lines": page.lines, "cursor": page.cursor})


routes = [
    Route("/metrics", metrics, methods=["GET"]),
    Route("/zeroserve/cost", cost, methods=["GET"]),
    Route("/zeroserve/logs/{endpoint}", logs, methods=["GET"]),
]
