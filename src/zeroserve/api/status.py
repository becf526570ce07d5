"""`GET /zeroserve/status`: what the data plane is doing right now (workers, load, memory), as JSON.
For people, the dashboard and tests; SageMaker has no equivalent."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse

from zeroserve.scheduler.router import Router
from zeroserve.scheduler.snapshot import VariantSnapshot
from zeroserve.workers.hub import WorkerHub


class NodeDetails(Protocol):
    """What the cluster (zeroserve/cluster/) adds to a node's entry: its role, bundle fetches."""

    def node_status(self, node_id: str) -> dict[str, Any]: ...

    def summary(self) -> dict[str, Any]: ...


def snapshot(router: Router, hub: WorkerHub, cluster: NodeDetails | None = None) -> dict[str, Any]:
    plane = router.snapshot()
    return {
        "zygote_pid": hub.zygote_pid,
        # Per-variant templates (scheduler/templates.py): their memory is part of reserved_mb.
        "templates": [
            {
                "endpoint": t.endpoint,
                "variant": t.variant,
                "pid": t.pid,
                "ready": t.ready,
                "memory_mb": t.memory_mb,
                "idle_s": round(t.idle_s, 1),
            }
            for t in plane.templates
        ],
        "zygote_restarts": hub.zygote.restarts if hub.zygote else 0,
        "memory_budget_mb": plane.memory_budget_mb,
        "reserved_mb": plane.reserved_mb,
        "endpoints": {
            name: {"variants": [variant_status(v) for v in variants]}
            for name, variants in plane.endpoints.items()
        },
        "nodes": [
            {
                "node_id": n.node_id,
                "address": n.address,
                "memory_reserved_mb": n.reserved_mb,
                "memory_total_mb": n.memory_budget_mb,
                "workers": n.workers,
                **(cluster.node_status(n.node_id) if cluster is not None else {}),
            }
            for n in plane.nodes
        ],
        **({"cluster": cluster.summary()} if cluster is not None else {}),
    }


def variant_status(variant: VariantSnapshot) -> dict[str, Any]:
    d = variant.deployment
    return {
        "variant": d.variant,
        "memory_mb": d.memory_mb,
        "max_concurrency": d.max_concurrency,
        "provisioned": d.min_workers,
        "model": bundle_summary(d.bundle_dir),
        "inflight": variant.inflight,
        "queued": variant.queued,
        "starting": variant.starting,
        "workers": [
            {
                "id": w.worker_id,
                "pid": w.pid,
                "inflight": w.inflight,
                "rss_mb": round(w.rss_mb, 1),
                "template_pid": w.template_pid,
                "setup_phases_ms": w.setup_phases_ms,
                "node_id": w.node_id,
            }
            for w in variant.workers
        ],
    }


@lru_cache(maxsize=4096)
def bundle_summary(bundle_dir: str) -> dict[str, Any]:
    """What a variant's workers load, from its bundle's manifest: runtime, int8 or fp32 and why (the
    deploy-time fidelity gate's verdict). Bundles never change once published, so each is read once."""
    try:
        manifest = json.loads((Path(bundle_dir) / "bundle.json").read_text())
    except (OSError, ValueError):
        return {}
    quantization = manifest.get("quantization") or {}
    return {
        "runtime": manifest.get("runtime"),
        "task": manifest.get("task"),
        "weights": quantization.get("served", "int8" if manifest.get("quantized") else "fp32"),
        "quantization": quantization.get("mode"),
        "scheme": quantization.get("scheme"),  # dynamic or blockwise, for int8
        "reason": quantization.get("reason") or manifest.get("fallback_reason"),
    }


async def status(request: Request) -> JSONResponse:
    services = request.app.state.services
    answer = snapshot(services.router, services.hub, services.cluster)
    # Where S3 is (`zeroserve env` reads it), and the identity ARNs are made with.
    answer["s3"] = services.s3.status()
    answer["region"] = services.settings.region
    answer["account_id"] = services.settings.account_id
    return JSONResponse(answer)
