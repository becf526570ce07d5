"""What the data plane is doing right now, as plain frozen data: endpoints, their variants and workers,
templates, memory and nodes. The router builds it (`Router.snapshot`); status pages and the dashboard read
it, never the pool's live objects."""

from __future__ import annotations

from dataclasses import dataclass

from zeroserve.scheduler.deployment import VariantDeployment
from zeroserve.scheduler.nodes import NodeSummary


@dataclass(frozen=True)
class WorkerSnapshot:
    worker_id: str
    pid: int
    inflight: int
    rss_mb: float
    template_pid: int | None  # the template it was forked from; None: the zygote
    setup_phases_ms: dict[str, float] | None
    node_id: str


@dataclass(frozen=True)
class VariantSnapshot:
    deployment: VariantDeployment
    inflight: int  # admitted requests (MaxConcurrency counts these)
    queued: int  # requests waiting for admission
    starting: int  # workers starting
    workers: tuple[WorkerSnapshot, ...]


@dataclass(frozen=True)
class TemplateSnapshot:
    endpoint: str
    variant: str
    pid: int | None  # None until it has loaded
    ready: bool
    memory_mb: int
    idle_s: float


@dataclass(frozen=True)
class DataPlaneSnapshot:
    endpoints: dict[str, tuple[VariantSnapshot, ...]]
    templates: tuple[TemplateSnapshot, ...]  # their memory is part of reserved_mb
    memory_budget_mb: int
    reserved_mb: int
    nodes: tuple[NodeSummary, ...]
