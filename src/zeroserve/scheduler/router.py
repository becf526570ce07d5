"""The data plane's one entry point: route an invocation of an endpoint to a variant and a worker.

Admission (MaxConcurrency), scale from zero, the invocation timeout, memory enforcement and crash retry all
meet here; each is a domain error the API layer turns into SageMaker's answer. Generations go the same way:
`invoke_generate` answers a `Generation`, `invoke_stream` its tokens as they come and then the `Generation`;
a stream holds its admission slot and its worker for its whole life, is retried on a fresh worker only before
its first token, and is cancelled in the worker when its consumer stops reading. The router owns which
variants each endpoint routes to; the control plane deploys, proves and retires variants through it, and
reads what the data plane is doing as a snapshot (scheduler/snapshot.py).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass

from zeroserve import error_messages as messages
from zeroserve.metrics.events import NullObserver, Observer, WorkerEventKind
from zeroserve.runtimes.base import GeneratedToken, Generation, Invocation
from zeroserve.scheduler.admission import AdmissionGate
from zeroserve.scheduler.clock import wait_until
from zeroserve.scheduler.deployment import VariantDeployment
from zeroserve.scheduler.pool import Pool
from zeroserve.scheduler.snapshot import DataPlaneSnapshot, VariantSnapshot
from zeroserve.scheduler.variant_pool import VariantPool, WorkerSlot
from zeroserve.workers.connection import WorkerGone, WorkerReply
from zeroserve.workers.generation_call import GenerationCall

# What a stream yields: its tokens, then (last) the whole Generation.
StreamEvent = GeneratedToken | Generation


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
    time_to_first_token_ms: float = 0.0  # streams: arrival to the first token (the API times it)
    tokens_generated: int = 0


@dataclass(frozen=True)
class InvocationResult:
    body: bytes
    content_type: str
    variant: str


@dataclass(frozen=True)
class GenerationResult:
    generation: Generation
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
        stream_timeout_s: float = 600.0,
        queue_limit: int | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.pool = pool
        self.account_id = account_id
        self.region = region
        self.wait_budget_s = wait_budget_s
        self.invocation_timeout_s = invocation_timeout_s
        self.stream_timeout_s = stream_timeout_s
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
        async with self._admitted(name, invocation, trace, target_variant) as (route, arrived):
            return await self._run(route, invocation, trace, arrived, name, target_variant)

    async def invoke_generate(
        self, name: str, invocation: Invocation, trace: InvocationTrace, target_variant: str | None = None
    ) -> GenerationResult:
        """The handler's `generate` answer (not streamed): as `invoke`, the 60 s timeout included."""
        async with self._admitted(name, invocation, trace, target_variant) as (route, arrived):
            result = await self._run(route, invocation, trace, arrived, name, target_variant, generate=True)
        generation = Generation.from_json(result.body)
        trace.tokens_generated = sum(sequence.tokens for sequence in generation.sequences)
        return GenerationResult(generation, result.variant)

    async def invoke_stream(
        self, name: str, invocation: Invocation, trace: InvocationTrace, target_variant: str | None = None
    ) -> AsyncGenerator[StreamEvent, None]:
        """The tokens of one generation as the worker makes them, then its `Generation`. Errors before the
        first token are the same as `invoke`'s. Close it (`aclose()`) when the client goes: the worker is
        told to stop, and the slot and the worker are free at once."""
        async with self._admitted(name, invocation, trace, target_variant) as (route, arrived):
            # aclosing: closing this generator closes the inner one now, not when it is garbage collected.
            stream = self._stream(route, invocation, trace, arrived, name, target_variant)
            async with contextlib.aclosing(stream) as events:
                async for event in events:
                    yield event

    @contextlib.asynccontextmanager
    async def _admitted(
        self, name: str, invocation: Invocation, trace: InvocationTrace, target_variant: str | None
    ) -> AsyncIterator[tuple[VariantRoute, float]]:
        """Inside: the request holds one of its variant's MaxConcurrency slots. Yields (route, arrival)."""
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
            yield route, arrived
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
        generate: bool = False,
    ) -> InvocationResult:
        for attempt in (1, 2):
            if attempt == 2 and route.variant.retired:  # an update replaced it: retry on what serves now
                route = self._choose(name, target_variant)
            slot, cold = await self.pool.acquire(route.variant, arrived + self.wait_budget_s)
            trace.cold_start = trace.cold_start or cold
            trace.queue_ms = (self.clock.now() - arrived) * 1000
            try:
                reply = await self._send(slot, invocation, arrived, generate)
            except WorkerGone:
                self.pool.kill(slot, WorkerEventKind.CRASHED, "worker exited while handling a request")
                if attempt == 2:
                    raise messages.worker_exited() from None
                continue  # inference is idempotent: retry once on a fresh worker
            finally:
                self.pool.release(slot)
            trace.model_ms = reply.model_us / 1000
            trace.batch_size, trace.rss_mb = reply.batch_size, reply.rss_mb
            return self._answer(slot, reply)
        raise AssertionError("unreachable")

    def _answer(self, slot: WorkerSlot, reply: WorkerReply) -> InvocationResult:
        """The worker's reply as a result, or the error it stands for (a worker over its memory goes)."""
        deployment = slot.variant.deployment
        if reply.rss_mb > deployment.memory_mb:
            reason = f"RSS {reply.rss_mb:.0f} MB > {deployment.memory_mb} MB"
            self.pool.kill(slot, WorkerEventKind.KILLED_MEMORY, reason)
            raise messages.over_memory(reply.rss_mb, deployment.memory_mb)
        if reply.status == "ok":
            return InvocationResult(reply.body, reply.content_type, deployment.variant)
        original = 400 if reply.status == "client_error" else 500
        raise messages.container_error(original, reply.error, self.log_stream(deployment.endpoint))

    async def _stream(
        self,
        route: VariantRoute,
        invocation: Invocation,
        trace: InvocationTrace,
        arrived: float,
        name: str,
        target_variant: str | None,
    ) -> AsyncGenerator[StreamEvent, None]:
        deadline = arrived + self.stream_timeout_s
        for attempt in (1, 2):
            if attempt == 2 and route.variant.retired:
                route = self._choose(name, target_variant)
            slot, cold = await self.pool.acquire(route.variant, arrived + self.wait_budget_s)
            trace.cold_start = trace.cold_start or cold
            trace.queue_ms = (self.clock.now() - arrived) * 1000
            sent = self.clock.now()
            call: GenerationCall | None = None
            reply: WorkerReply | None = None
            try:
                call = slot.connection.submit_generate(
                    invocation.body,
                    invocation.content_type,
                    invocation.accept,
                    invocation.custom_attributes,
                    stream=True,
                )
                while True:
                    tokens = call.take()
                    if not tokens:
                        if call.reply.done():  # every token precedes the result: none is left behind
                            break
                        if not await wait_until(self.clock, call.ready(), deadline):
                            # Past the ceiling: the worker goes, as a stuck forward pass would.
                            self.pool.kill(slot, WorkerEventKind.CRASHED, "stream timed out")
                            stream = self.log_stream(slot.variant.deployment.endpoint)
                            raise messages.invocation_timed_out(self.stream_timeout_s, stream)
                        continue
                    for token in tokens:
                        trace.tokens_generated += 1
                        yield token
                reply = call.reply.result()
            except WorkerGone:
                self.pool.kill(slot, WorkerEventKind.CRASHED, "worker exited while handling a request")
                if attempt == 2 or trace.tokens_generated:
                    raise messages.worker_exited() from None
                continue  # nothing was sent to the client yet: retry once on a fresh worker
            finally:
                if call is not None:
                    call.cancel()  # when it has not ended: the consumer stopped reading, or the stream failed
                # The whole stream is billed: as the worker timed it, else as long as it held the worker.
                trace.model_ms = reply.model_us / 1000 if reply else (self.clock.now() - sent) * 1000
                self.pool.release(slot)
            trace.batch_size, trace.rss_mb = reply.batch_size, reply.rss_mb
            yield Generation.from_json(self._answer(slot, reply).body)
            return
        raise AssertionError("unreachable")

    async def _send(
        self, slot: WorkerSlot, invocation: Invocation, arrived: float, generate: bool = False
    ) -> WorkerReply:
        args = (invocation.body, invocation.content_type, invocation.accept, invocation.custom_attributes)
        if generate:
            reply = slot.connection.submit_generate(*args, stream=False).reply
        else:
            reply = slot.connection.submit(*args)
        try:
            answered = await wait_until(self.clock, reply, arrived + self.invocation_timeout_s)
        finally:
            if not reply.done():
                reply.cancel()
        if answered:
            return reply.result()
        # A forward pass cannot be interrupted: the stuck worker goes, a fresh one takes its place.
        self.pool.kill(slot, WorkerEventKind.CRASHED, "invocation timed out")
        stream = self.log_stream(slot.variant.deployment.endpoint)
        raise messages.invocation_timed_out(self.invocation_timeout_s, stream)

    def log_stream(self, endpoint: str) -> str:
        return messages.log_stream(self.region, self.account_id, endpoint)

    async def close(self) -> None:
        self._endpoints.clear()
        await self.pool.close()
