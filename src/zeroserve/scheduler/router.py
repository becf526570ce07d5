"""The data plane's one entry point: route an invocation of an endpoint to a variant and a worker.

Admission (MaxConcurrency), scale from zero, the invocation timeout, memory enforcement and crash retry all
meet here; each is a domain error the API layer turns into SageMaker's answer. The router owns which
variants each endpoint routes to; the control plane deploys, proves and retires variants through it, and
reads what the data plane is doing as a snapshot (scheduler/snapshot.py).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

from zeroserve import error_messages as messages
from zeroserve.metrics.events import NullObserver, Observer
from zeroserve.runtimes.base import Invocation
from zeroserve.scheduler.admission import AdmissionGate
from zeroserve.scheduler.clock import wait_until
from zeroserve.scheduler.deployment import VariantDeployment
from zeroserve.scheduler.pool import Pool
from zeroserve.scheduler.snapshot import DataPlaneSnapshot, VariantSnapshot
from zeroserve.scheduler.variant_pool import VariantPool, WorkerSlot
from zeroserve.workers.connection import WorkerGone, WorkerReply


@dataclass
class InvocationTrace:
    """Filled in as the request moves through the data plane; the API turns it into an InvocationRecord."""

    variant: str = ""
    memory_mb: int = 0
    cold_start: bool = False
    queue_ms: float = 0.0
    model_ms: float = 0.0
    batch_size: int = 0
    rss_mb: float = 0.0


@dataclass(frozen=True)
class InvocationResult:
    body: bytes
    content_type: str
    variant: str


@dataclass
class VariantRoute:
    variant: VariantPool
    gate: AdmissionGate

    @property
    def deployment(self) -> VariantDeployment:
        return self.variant.deployment

    def snapshot(self) -> VariantSnapshot:
        workers = tuple(slot.snapshot() for slot in self.variant.workers.values())
        return VariantSnapshot(
            self.deployment, self.gate.inflight, self.gate.queued, self.variant.starting, workers
        )


class Router:
    def __init__(
        self,
        pool: Pool,
        *,
        account_id: str,
        region: str,
        wait_budget_s: float,
        invocation_timeout_s: float,
        queue_limit: int | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.pool = pool
        self.account_id = account_id
        self.region = region
        self.wait_budget_s = wait_budget_s
        self.invocation_timeout_s = invocation_timeout_s
        self.queue_limit = queue_limit
        self.observer: Observer = observer or NullObserver()
        self.clock = pool.clock  # one clock for the pool's timers and the invocation timeout
        self._endpoints: dict[str, list[VariantRoute]] = {}

    @property
    def endpoints(self) -> Mapping[str, list[VariantRoute]]:
        """The routes of every endpoint served, for reading; changed only by the methods below."""
        return self._endpoints

    def set_endpoint(self, name: str, deployments: list[VariantDeployment]) -> None:
        self.activate(name, [self.pool.deploy(d) for d in deployments])

    def deploy(self, deployment: VariantDeployment) -> VariantPool:
        """Register a variant without routing to it yet (`activate` does): an update's new side."""
        return self.pool.deploy(deployment)

    async def start_and_wait(self, variant: VariantPool) -> None:
        """Until a worker of this variant has loaded and answered its warm-up: proof the model serves."""
        await self.pool.start_and_wait(variant)

    def discard(self, key: str) -> None:
        """Retire a variant that was deployed but is not (or no longer) routed."""
        self.pool.remove(key)

    def routed_keys(self, name: str) -> set[str]:
        return {route.variant.key for route in self._endpoints.get(name, [])}

    def snapshot(self) -> DataPlaneSnapshot:
        return DataPlaneSnapshot(
            endpoints={name: tuple(r.snapshot() for r in routes) for name, routes in self._endpoints.items()},
            templates=tuple(self.pool.template_snapshots()),
            memory_budget_mb=self.pool.memory_budget_mb,
            reserved_mb=self.pool.reserved_mb,
            nodes=tuple(self.pool.node_summaries()),
        )

    def activate(self, name: str, variants: list[VariantPool]) -> None:
        """Point the endpoint at these (already deployed) variants, atomically; requests in flight finish
        where they are, and the variants no longer routed are retired."""
        routes = []
        for variant in variants:
            deployment = variant.deployment
            queue_limit = deployment.max_concurrency if self.queue_limit is None else self.queue_limit
            routes.append(VariantRoute(variant, AdmissionGate(deployment.max_concurrency, queue_limit)))
        stale = self.routed_keys(name) - {r.variant.key for r in routes}
        self._endpoints[name] = routes
        for key in stale:
            self.pool.remove(key)

    def remove_endpoint(self, name: str) -> None:
        for route in self._endpoints.pop(name, []):
            self.pool.remove(route.variant.key)

    def _choose(self, name: str, target_variant: str | None) -> VariantRoute:
        routes = self._endpoints.get(name)
        if not routes:
            raise messages.endpoint_not_found(name, self.account_id)
        if target_variant:
            for route in routes:
                if route.deployment.variant == target_variant:
                    return route
            raise messages.variant_not_found(target_variant, name)
        if len(routes) == 1:
            return routes[0]
        return random.choices(routes, weights=[r.deployment.weight for r in routes])[0]

    def check_payload(self, name: str, size_bytes: int) -> None:
        """Before reading a body: is it within the variant limit (4 MB serverless, 6 MB instance)?"""
        routes = self._endpoints.get(name)
        if routes and size_bytes > (limit := max(r.deployment.max_payload_bytes for r in routes)):
            raise messages.payload_too_large(size_bytes, limit)

    async def invoke(
        self, name: str, invocation: Invocation, trace: InvocationTrace, target_variant: str | None = None
    ) -> InvocationResult:
        route = self._choose(name, target_variant)
        deployment = route.deployment
        trace.variant, trace.memory_mb = deployment.variant, deployment.memory_mb
        if len(invocation.body) > deployment.max_payload_bytes:
            raise messages.payload_too_large(
                len(invocation.body), deployment.max_payload_bytes, deployment.variant
            )
        arrived = self.clock.now()
        try:
            await route.gate.enter()
        except AdmissionGate.Rejected:
            raise messages.max_concurrency_reached(name, deployment.max_concurrency) from None
        self.observer.concurrency(name, deployment.variant, route.gate.inflight, deployment.max_concurrency)
        try:
            return await self._run(route, invocation, trace, arrived, name, target_variant)
        finally:
            route.gate.leave()
            self.observer.concurrency(
                name, deployment.variant, route.gate.inflight, deployment.max_concurrency
            )

    async def _run(
        self,
        route: VariantRoute,
        invocation: Invocation,
        trace: InvocationTrace,
        arrived: float,
        name: str,
        target_variant: str | None,
    ) -> InvocationResult:
        deployment = route.deployment
        for attempt in (1, 2):
            if attempt == 2 and route.variant.retired:  # an update replaced it: retry on what serves now
                route = self._choose(name, target_variant)
                deployment = route.deployment
            slot, cold = await self.pool.acquire(route.variant, arrived + self.wait_budget_s)
            trace.cold_start = trace.cold_start or cold
            trace.queue_ms = (self.clock.now() - arrived) * 1000
            try:
                reply = await self._send(slot, invocation, arrived)
            except WorkerGone:
                self.pool.kill(slot, "crashed", "worker exited while handling a request")
                if attempt == 2:
                    raise messages.worker_exited() from None
                continue  # inference is idempotent: retry once on a fresh worker
            finally:
                self.pool.release(slot)
            trace.model_ms = reply.model_us / 1000
            trace.batch_size, trace.rss_mb = reply.batch_size, reply.rss_mb
            if reply.rss_mb > deployment.memory_mb:
                self.pool.kill(
                    slot, "killed_memory", f"RSS {reply.rss_mb:.0f} MB > {deployment.memory_mb} MB"
                )
                raise messages.over_memory(reply.rss_mb, deployment.memory_mb)
            if reply.status == "ok":
                return InvocationResult(reply.body, reply.content_type, deployment.variant)
            original = 400 if reply.status == "client_error" else 500
            raise messages.container_error(original, reply.error, self.log_stream(deployment.endpoint))
        raise AssertionError("unreachable")

    async def _send(self, slot: WorkerSlot, invocation: Invocation, arrived: float) -> WorkerReply:
        reply = slot.connection.submit(
            invocation.body, invocation.content_type, invocation.accept, invocation.custom_attributes
        )
        try:
            answered = await wait_until(self.clock, reply, arrived + self.invocation_timeout_s)
        finally:
            if not reply.done():
                reply.cancel()
        if answered:
            return reply.result()
        # A forward pass cannot be interrupted: the stuck worker goes, a fresh one takes its place.
        self.pool.kill(slot, "crashed", "invocation timed out")
        stream = self.log_stream(slot.variant.deployment.endpoint)
        raise messages.invocation_timed_out(self.invocation_timeout_s, stream)

    def log_stream(self, endpoint: str) -> str:
        return messages.log_stream(self.region, self.account_id, endpoint)

    async def close(self) -> None:
        self._endpoints.clear()
        await self.pool.close()
