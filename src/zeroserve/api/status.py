"""`GET /zeroserve/status`: what the data plane is doing right now (workers, load, memory), as JSON.
For people, the dashboard and tests; SageMaker has no equivalent."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from zeroserve.scheduler.router import Router
from zeroserve.workers.hub import WorkerHub


def snapshot(router: Router, hub: WorkerHub) -> dict[str, Any]:
    endpoints: dict[str, Any] = {}
    for name, routes in router.endpoints.items():
        variants = []
        for route in routes:
            variant_pool, d = route.pool, route.deployment
            variants.append(
                {
                    "variant": d.variant,
                    "memory_mb": d.memory_mb,
                    "max_concurrency": d.max_concurrency,
                    "provisioned": d.min_workers,
                    "inflight": route.gate.inflight,
                    "queued": route.gate.queued,
                    "starting": variant_pool.starting,
                    "workers": [
                        {
                            "id": slot.connection.worker_id,
                            "pid": slot.connection.pid,
                            "inflight": slot.connection.inflight,
                            "rss_mb": round(slot.rss_mb, 1),
                        }
                        for slot in variant_pool.workers.values()
                    ],
                }
            )
        endpoints[name] = {"variants": variants}
    return {
        "zygote_pid": hub.zygote_pid,
        "zygote_restarts": hub.zygote.restarts if hub.zygote else 0,
        "memory_budget_mb": router.pool.memory_budget_mb,
        "reserved_mb": router.pool.reserved_mb,
        "endpoints": endpoints,
    }


async def status(request: Request) -> JSONResponse:
    services = request.app.state.services
    return JSONResponse(snapshot(services.router, services.hub))
