"""The dashboard: `GET /ui` serves one static page (`static/dashboard.*`, plain JS, hand-written SVG charts)
that polls `GET /zeroserve/dashboard` every 2 s. That JSON joins what the page shows: endpoints with status
and config (database), live workers and load (router), cost so far (meter), and recent traffic and errors
(timeline)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from zeroserve.api import status
from zeroserve.api.metrics import cost_report
from zeroserve.database.repository import Document, Repository
from zeroserve.wiring import Services

STATIC_DIR = Path(__file__).parent / "static"


def variant_config(variant: Document) -> dict[str, Any]:
    """A production variant's capacity as the table shows it (serverless or instance-based)."""
    view: dict[str, Any] = {"variant": variant.get("VariantName"), "model": variant.get("ModelName")}
    serverless = variant.get("ServerlessConfig")
    if serverless:
        view.update(
            memory_mb=serverless.get("MemorySizeInMB"),
            max_concurrency=serverless.get("MaxConcurrency"),
            provisioned=serverless.get("ProvisionedConcurrency") or 0,
        )
    else:
        view.update(
            instance_type=variant.get("InstanceType"), instance_count=variant.get("InitialInstanceCount")
        )
    return view


def endpoint_rows(repo: Repository) -> list[dict[str, Any]]:
    rows = []
    for row in repo.all("endpoint"):
        doc = row.doc
        config = doc.get("_zeroserve", {}).get("snapshot", {}).get("config", {})
        rows.append({
            "name": row.name,
            "status": doc.get("EndpointStatus", row.status),
            "failure_reason": doc.get("FailureReason"),
            "config_name": doc.get("EndpointConfigName"),
            "created_s": row.created_at,
            "variants": [variant_config(v) for v in config.get("ProductionVariants", [])],
        })
    return rows


def _stored_view(services: Services) -> dict[str, Any]:
    """The parts that read SQLite (blocking)."""
    return {"endpoints": endpoint_rows(services.repo), "cost": cost_report(services.telemetry, None, None)}


async def data(request: Request) -> Response:
    services: Services = request.app.state.services
    # Taken on the event loop, where these objects live; the SQLite reads go to a thread.
    live = {
        "live": status.snapshot(services.router, services.hub, services.cluster),
        **services.telemetry.timeline.snapshot(),
    }
    stored = await run_in_threadpool(_stored_view, services)
    return JSONResponse({**stored, **live})


async def page(request: Request) -> Response:
    return FileResponse(STATIC_DIR / "dashboard.html", media_type="text/html")


routes = [
    Route("/ui", page, methods=["GET"]),
    Mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static"),
    Route("/zeroserve/dashboard", data, methods=["GET"]),
]
