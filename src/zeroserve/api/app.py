"""The ASGI application: routes for the control plane, the runtime and the container contract."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from zeroserve.api import control, dashboard, metrics, openai_routes, public, response_stream, runtime, status
from zeroserve.api.auth import SigV4Middleware
from zeroserve.config import Settings
from zeroserve.wiring import Services


def create_app(settings: Settings) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services = await Services.start(settings)
        app.state.services = services
        app.state.control = services.control
        app.state.logs = services.logs_api
        app.state.router = services.router
        app.state.observer = services.observer
        app.state.draining = False
        on_ready = getattr(app.state, "on_ready", None)
        startup_task = asyncio.get_running_loop().create_task(on_ready(services)) if on_ready else None
        try:
            yield
        finally:
            app.state.draining = True
            if startup_task is not None:
                startup_task.cancel()
            await services.stop()

    routes = [
        Route("/", control.handle, methods=["POST"]),
        Route("/endpoints/{endpoint_name}/invocations", runtime.invoke_endpoint, methods=["POST"]),
        Route(
            "/endpoints/{endpoint_name}/invocations-response-stream",
            response_stream.invoke_endpoint_stream,
            methods=["POST"],
        ),
        Route("/invocations", runtime.invoke_single, methods=["POST"]),
        Route("/ping", runtime.ping, methods=["GET"]),
        Route("/zeroserve/status", status.status, methods=["GET"]),
        *metrics.routes,
        *dashboard.routes,
        *openai_routes.routes,  # before public's /v1/{endpoint_name}/predict, though no path matches both
        *public.routes,
    ]
    signed = Middleware(SigV4Middleware, access_keys=settings.access_keys, region=settings.region)
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[signed])
    app.state.settings = settings
    app.state.draining = False
    return app
