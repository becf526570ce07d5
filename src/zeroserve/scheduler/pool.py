"""Worker processes per variant: hand out a worker for each request, start and stop them, keep the machine's
memory budget. All decisions come from `autoscaler` (when) and `placement` (where); this module does the
process I/O they imply.

Ownership: a `VariantPool` owns its workers, its spawns in progress and its waiters, and changes them only in
its own methods; each `Node` owns its memory ledger (one node, "local", on one machine; one per Ray node
on a cluster, see zeroserve/cluster/); the `Pool` owns the registry of variants and nodes and the scale-in
timer, and is the only caller of the variants' mutators. Every timer runs on the injected clock.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from dataclasses import replace
from typing import cast

from zeroserve.errors import ModelNotReady, Throttled
from zeroserve.metrics.events import NullObserver, Observer, WorkerEvent
from zeroserve.scheduler import autoscaler, placement
from zeroserve.scheduler.clock import Clock, LoopClock, Timer, wait_until
from zeroserve.scheduler.deployment import VariantDeployment
from zeroserve.scheduler.ledger import MemoryLedger
from zeroserve.scheduler.nodes import LOCAL_NODE_ID, Node, NodeLost, NodeSummary
from zeroserve.scheduler.templates import TemplateBuilder, TemplateCache
from zeroserve.scheduler.variant_pool import Spawner, VariantPool, WorkerSlot
from zeroserve.workers.hub import SpawnFailed
from zeroserve.workers.spec import WorkerSpec

log = logging.getLogger("zeroserve.pool")
_worker_ids = itertools.count(1)


class Pool:
    def __init__(
        self,
        hub: Spawner,
        *,
        idle_timeout_s: float,
        memory_budget_mb: int,
        spawn_timeout_s: float,
        worker_threads: int = 0,
        observer: Observer | None = None,
        clock: Clock | None = None,
        node_id: str = LOCAL_NODE_ID,
        node_address: str = "127.0.0.1",
        template_idle_timeout_s: float = 0.0,
    ) -> None:
        """`template_idle_timeout_s` > 0 keeps per-variant templates (scheduler/templates.py), when `hub`
        can build them, for that long after their last use."""
        self.hub = hub
        self.idle_timeout_s = idle_timeout_s
        self.spawn_timeout_s = spawn_timeout_s
        self.worker_threads = worker_threads or (os.cpu_count() or 1)
        self.observer: Observer = observer or NullObserver()
        self.clock: Clock = clock or LoopClock()
        # The server's own machine, served by its hub: every bundle is converted there, so it holds them all.
        self.local_node_id = node_id
        local = Node(node_id, node_address, hub, MemoryLedger(memory_budget_mb), holds_all_bundles=True)
        self.nodes: dict[str, Node] = {node_id: local}
        self.variants: dict[str, VariantPool] = {}
        self._scale_in_timer: Timer | None = None
        self._scale_in_at: float | None = None
        self._tasks: set[asyncio.Task[object]] = set()
        self.templates: TemplateCache | None = None
        if template_idle_timeout_s > 0 and getattr(hub, "templates_supported", False):
            self.templates = TemplateCache(
                cast(TemplateBuilder, hub), self.ledger, self.clock, self.observer,
                idle_ttl_s=template_idle_timeout_s, build_timeout_s=spawn_timeout_s,
            )

    @property
    def ledger(self) -> MemoryLedger:
        """The server's own machine's ledger."""
        return self.nodes[self.local_node_id].ledger

    @property
    def memory_budget_mb(self) -> int:
        return sum(node.ledger.budget_mb for node in self.nodes.values())

    @property
    def reserved_mb(self) -> int:
        return sum(node.ledger.reserved_mb for node in self.nodes.values())

    def node_summaries(self) -> list[NodeSummary]:
        workers = dict.fromkeys(self.nodes, 0)
        for variant in self.variants.values():
            for slot in variant.workers.values():
                workers[slot.node_id] = workers.get(slot.node_id, 0) + 1
        return [
            NodeSummary(n.node_id, n.address, n.ledger.budget_mb, n.ledger.reserved_mb, workers[n.node_id])
            for n in self.nodes.values()
        ]

    # --- nodes (zeroserve/cluster/ adds and removes them as Ray's membership changes) -------------

    def add_node(self, node: Node) -> None:
        """A node joined: it takes new workers at once, starting with floors that found no room before."""
        if node.node_id in self.nodes:
            raise ValueError(f"node {node.node_id} is already in the pool")
        node.left = asyncio.get_running_loop().create_future()
        self.nodes[node.node_id] = node
        for variant in list(self.variants.values()):
            self._fill_floor(variant)

    def vouch(self, node_id: str, sent_s: float) -> None:
        """The node answered a check sent at `sent_s` (monotonic): if a crash there made it suspect, it takes
        workers again, beginning with floors that found no room meanwhile."""
        node = self.nodes.get(node_id)
        if node is not None and node.vouch(sent_s):
            for variant in list(self.variants.values()):
                self._fill_floor(variant)

    def remove_node(self, node_id: str, reason: str = "the node left the cluster") -> None:
        """A node left: its spawns in progress fail (and are placed again), its workers are gone as if they
        crashed (requests on them get WorkerGone and are retried once), and floors are filled elsewhere."""
        if node_id == self.local_node_id:
            raise ValueError("the server's own node cannot be removed")
        node = self.nodes.pop(node_id, None)
        if node is None:
            return
        if node.left is not None and not node.left.done():
            node.left.set_result(None)
        for variant in list(self.variants.values()):
            for slot in [s for s in variant.workers.values() if s.node_id == node_id]:
                self._stop(slot, "crashed", reason=reason, kill=True)
        for variant in list(self.variants.values()):
            self._fill_floor(variant)

    # --- registry ------------------------------------------------------------------------------

    def deploy(self, deployment: VariantDeployment) -> VariantPool:
        """Register (or replace) a variant. Workers of a replaced variant finish what they do, then stop."""
        old = self.variants.get(deployment.key)
        scaling = autoscaler.ScalingConfig(
            idle_timeout_s=self.idle_timeout_s,
            min_workers=deployment.min_workers,
            max_workers=max(deployment.max_workers, deployment.min_workers),
        )
        variant = VariantPool(deployment, scaling)
        self.variants[deployment.key] = variant
        if old is not None:
            self._retire(old)
        self._fill_floor(variant)
        return variant

    def remove(self, key: str) -> None:
        variant = self.variants.pop(key, None)
        if variant is not None:
            self._retire(variant)

    def _retire(self, variant: VariantPool) -> None:
        if self.templates is not None:
            self.templates.forget_variant(variant.key)
        for slot in variant._retire():
            self._gone(slot, "stopped", reason="", kill=False)

    def _fill_floor(self, variant: VariantPool) -> None:
        for _ in range(autoscaler.workers_below_floor(variant.scaling, variant.views(), variant.starting)):
            if not self._start_worker(variant, spread=True):
                break

    # --- handing out workers ---------------------------------------------------------------------

    async def acquire(self, variant: VariantPool, deadline_s: float) -> tuple[WorkerSlot, bool]:
        """The least loaded warm worker, starting one if the policy says so. Returns (slot, cold) where
        cold means this request had to wait for a worker to start."""
        cold = False
        failures_before = variant.spawn_failures
        variant._waiter_joined()
        try:
            while True:
                if variant.spawn_failures > failures_before and not variant.workers:
                    # One failed start per request: a model that cannot load is reported, not re-forked in
                    # a loop for the whole wait budget.
                    raise ModelNotReady(f"the model could not be loaded: {variant.last_spawn_error}")
                wanted = autoscaler.should_scale_out(
                    variant.scaling, variant.views(), variant.starting, variant.waiting
                )
                if wanted and not self._start_worker(variant, for_request=True) and not variant.workers:
                    raise Throttled("the machine's memory budget is exhausted by busy endpoints; retry later")
                if (slot := variant.pick()) is not None:
                    return slot, cold
                cold = cold or not variant.workers
                if self.clock.now() >= deadline_s:
                    raise ModelNotReady("the model is still loading; no worker became ready in time")
                await wait_until(self.clock, variant.changed(), deadline_s)
        finally:
            variant._waiter_left()

    def release(self, slot: WorkerSlot) -> None:
        now = self.clock.now()
        slot.variant._slot_released(slot, now)
        if slot.connection.inflight == 0:
            self._schedule_scale_in(now + self.idle_timeout_s)

    # --- starting workers ----------------------------------------------------------------------

    def _start_worker(self, variant: VariantPool, spread: bool = False, for_request: bool = False) -> bool:
        """Begin a spawn in the background (waiters are woken when it is ready or failed); False when no
        node's memory budget has room for it even after evicting idle workers. `spread`: a provisioned
        worker, placed away from its variant's others. `for_request`: a request waits for it, which is what
        earns the variant a template (a deploy's or the floor's start does not)."""
        worker_id = f"w{next(_worker_ids)}"
        node = self._reserve(worker_id, variant, spread)
        if node is None:
            return False
        variant._spawn_began()
        task = asyncio.get_running_loop().create_task(self._spawn(variant, worker_id, node, for_request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def start_and_wait(self, variant: VariantPool) -> WorkerSlot:
        """A worker of this variant once one is ready (used to prove a deployment loads): the one the floor
        is already starting, or a new one; never one more than the variant's own policy asks for."""
        failures_before = variant.spawn_failures
        while not variant.workers:
            if variant.spawn_failures > failures_before:
                raise SpawnFailed(variant.last_spawn_error)
            if variant.retired:
                raise SpawnFailed("the variant was replaced while it was loading")
            if not variant.starting and not self._start_worker(variant):
                raise SpawnFailed("not enough memory budget to load the model")
            await variant.changed()
        return next(iter(variant.workers.values()))

    async def _spawn(
        self, variant: VariantPool, worker_id: str, node: Node, for_request: bool = False
    ) -> WorkerSlot | None:
        d = variant.deployment
        spec = WorkerSpec(
            worker_id=worker_id,
            bundle_dir=d.bundle_dir,
            memory_mb=d.memory_mb,
            threads=d.threads or self.worker_threads,
            max_batch_size=d.max_batch_size,
            max_batch_wait_ms=d.max_batch_wait_ms,
            env=d.env,
            endpoint=d.endpoint,
            variant=d.variant,
        )
        templates = self.templates if node.node_id == self.local_node_id else None
        if templates is not None:
            spec = replace(spec, template=templates.for_cold_start(variant.key))
        try:
            connection, ready = await node.spawn(spec, self.spawn_timeout_s)
        except NodeLost as exc:
            node.release(worker_id)
            variant._spawn_lost()
            log.warning("worker %s of %s: %s; placing it again", worker_id, variant.key, exc)
            if not variant.retired:
                self._fill_floor(variant)
            return None
        except SpawnFailed as exc:
            node.release(worker_id)
            variant._spawn_failed(str(exc))
            self.observer.worker(WorkerEvent(d.endpoint, d.variant, "failed", reason=str(exc)))
            return None
        except BaseException:  # cancelled (shutdown): the reservation and the count must not leak
            node.release(worker_id)
            variant._spawn_failed("the start was cancelled")
            raise
        template_pid = ready.get("template_pid")
        slot = WorkerSlot(
            connection,
            variant,
            d.memory_mb,
            self.clock.now(),
            float(ready.get("rss_mb", 0.0)),
            int(template_pid) if template_pid is not None else None,
            dict(ready.get("phases_ms") or {}),
            node.node_id,
        )
        if variant.retired or node.node_id not in self.nodes:
            node.release(worker_id)
            variant._spawn_ready(None)
            connection.stop()
            if not variant.retired:  # its node left just as it became ready
                self._fill_floor(variant)
            return slot
        variant._spawn_ready(slot)
        connection.closed.add_done_callback(lambda _: self._on_closed(slot))
        if templates is not None and template_pid is None and for_request:
            templates.after_cold_start(variant.key, spec)
        setup_ms = float(ready.get("setup_ms", 0.0))
        self.observer.worker(
            WorkerEvent(
                d.endpoint, d.variant, "started", setup_ms=setup_ms, rss_mb=slot.rss_mb, memory_mb=d.memory_mb
            )
        )
        self._schedule_scale_in(slot.last_used_s + self.idle_timeout_s)
        return slot

    def _reserve(self, worker_id: str, variant: VariantPool, spread: bool) -> Node | None:
        memory_mb = variant.deployment.memory_mb
        if len(self.nodes) == 1:  # one machine: no placement to decide, only evictions
            node = self.nodes[self.local_node_id]
            # Templates go first (a worker is worth more than the means to start one), then idle workers.
            templates = self.templates
            if templates is not None and templates.make_room(memory_mb, keep=variant.key):
                return node if node.reserve(worker_id, variant.key, memory_mb) else None
            template_mb = templates.droppable_mb(keep=variant.key) if templates is not None else 0
            others = (v for v in self.variants.values() if v is not variant)
            candidates = [slot.view() for v in others for slot in v.workers.values()]
            evictions = autoscaler.choose_evictions(memory_mb, node.ledger.free_mb + template_mb, candidates)
            if evictions is not None and templates is not None:
                templates.drop_all(keep=variant.key, reason="evicted for memory")
        else:  # templates live on the server's own node only, and are not weighed by placement
            chosen = placement.choose_node(memory_mb, self._node_views(variant), spread=spread)
            if chosen is None:
                return None
            node, evictions = self.nodes[chosen.node_id], chosen.evictions
        if evictions is None:
            return None
        for evicted in evictions:
            slot = self._find(evicted)
            if slot is not None:
                self._stop(slot, "stopped", reason="evicted for memory")
        return node if node.reserve(worker_id, variant.key, memory_mb) else None

    def _node_views(self, variant: VariantPool) -> list[placement.NodeView]:
        bundle = os.path.basename(variant.deployment.bundle_dir.rstrip("/"))
        evictable: dict[str, list[autoscaler.WorkerView]] = {node_id: [] for node_id in self.nodes}
        for other in self.variants.values():
            if other is not variant:
                for slot in other.workers.values():
                    evictable.setdefault(slot.node_id, []).append(slot.view())
        return [
            placement.NodeView(
                node.node_id,
                node.ledger.free_mb,
                node.holds(bundle),
                node.count(variant.key),
                tuple(evictable[node.node_id]),
            )
            for node in self.nodes.values()
            if node.suspect_since_s is None
        ]

    def _find(self, worker_id: str) -> WorkerSlot | None:
        for variant in self.variants.values():
            if worker_id in variant.workers:
                return variant.workers[worker_id]
        return None

    # --- stopping workers ----------------------------------------------------------------------

    def _stop(self, slot: WorkerSlot, kind: str, reason: str = "", kill: bool = False) -> bool:
        """Take the worker out of its variant and let it go; False if it was already gone."""
        if slot.variant._remove(slot.worker_id) is None:
            return False
        self._gone(slot, kind, reason, kill)
        return True

    def _gone(self, slot: WorkerSlot, kind: str, reason: str, kill: bool) -> None:
        node = self.nodes.get(slot.node_id)
        if node is not None:
            node.release(slot.worker_id)
        if kill:
            slot.connection.kill()
        else:
            slot.connection.stop()
        d = slot.variant.deployment
        self.observer.worker(WorkerEvent(d.endpoint, d.variant, kind, rss_mb=slot.rss_mb, reason=reason))

    def kill(self, slot: WorkerSlot, kind: str, reason: str) -> None:
        """For a worker that must not finish what it is doing (over its memory, past its timeout)."""
        if self._stop(slot, kind, reason, kill=True) and not slot.variant.retired:
            self._fill_floor(slot.variant)

    def _on_closed(self, slot: WorkerSlot) -> None:
        """The worker's socket closed: if we did not stop it, it crashed (supervision replaces it)."""
        if slot.variant.workers.get(slot.worker_id) is not slot:
            return  # we stopped it: its exit was expected
        if slot.node_id != self.local_node_id and (node := self.nodes.get(slot.node_id)) is not None:
            # A remote worker dying is often the first sign of its machine going: place nothing there
            # until the node is heard from again (cluster/cluster.py pings it every poll).
            node.suspect_since_s = time.monotonic()
        if self._stop(slot, "crashed", reason="worker exited unexpectedly"):
            log.warning("worker %s of %s exited unexpectedly", slot.worker_id, slot.variant.key)
            if not slot.variant.retired:
                self._fill_floor(slot.variant)

    # --- scale-in --------------------------------------------------------------------------------

    def _schedule_scale_in(self, when_s: float) -> None:
        if self._scale_in_at is not None and self._scale_in_at <= when_s:
            return
        if self._scale_in_timer is not None:
            self._scale_in_timer.cancel()
        self._scale_in_at = when_s
        self._scale_in_timer = self.clock.call_at(when_s, self._scale_in)

    def _scale_in(self) -> None:
        self._scale_in_timer = self._scale_in_at = None
        now = self.clock.now()
        next_check: float | None = None
        for variant in list(self.variants.values()):
            if not variant.workers:
                continue
            for worker_id in autoscaler.idle_workers_to_stop(variant.scaling, variant.views(), now):
                self._stop(variant.workers[worker_id], "stopped", reason="idle")
            when = autoscaler.next_scale_in_check_s(variant.scaling, variant.views())
            if when is not None:
                next_check = when if next_check is None else min(next_check, when)
        if next_check is not None:
            self._schedule_scale_in(max(next_check, now))

    async def close(self) -> None:
        if self.templates is not None:
            self.templates.close()
        for variant in list(self.variants.values()):
            self._retire(variant)
        self.variants.clear()
        if self._scale_in_timer is not None:
            self._scale_in_timer.cancel()
        for task in list(self._tasks):
            task.cancel()
