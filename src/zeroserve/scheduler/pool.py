"""Worker processes per variant: hand out a worker for each request, start and stop them, keep the machine's
memory budget. All decisions come from `autoscaler` (when) and `placement` (where); this module does the
process I/O they imply.

Ownership: a `VariantPool` owns its workers, its spawns in progress and its waiters; each `Node` owns its
memory ledger, its record of what holds memory there, and whether it is suspect (one node, "local", on one
machine; one per Ray node on a cluster, see zeroserve/cluster/); the `TemplateCache` owns the templates.
The `Pool` owns the registry of variants and nodes and the scale-in timer, and changes the others only
through their public methods. Every timer runs on, and every time is stamped by, the injected clock.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from dataclasses import replace
from typing import cast

from zeroserve import error_messages as messages
from zeroserve.metrics.events import NullObserver, Observer, WorkerEvent, WorkerEventKind
from zeroserve.scheduler import autoscaler, placement
from zeroserve.scheduler.clock import Clock, EarliestTimer, LoopClock, wait_until
from zeroserve.scheduler.deployment import VariantDeployment
from zeroserve.scheduler.ledger import MemoryLedger
from zeroserve.scheduler.nodes import LOCAL_NODE_ID, Node, NodeLost, NodeSummary
from zeroserve.scheduler.ports import Spawner
from zeroserve.scheduler.snapshot import TemplateSnapshot
from zeroserve.scheduler.templates import TemplateBuilder, TemplateCache
from zeroserve.scheduler.variant_pool import VariantPool, WorkerSlot
from zeroserve.workers.hub import SpawnFailed
from zeroserve.workers.protocol import Header

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
        self._scale_in_timer = EarliestTimer(self.clock, self._scale_in)
        self._tasks: set[asyncio.Task[object]] = set()
        self.templates: TemplateCache | None = None
        if template_idle_timeout_s > 0 and getattr(hub, "templates_supported", False):
            self.templates = TemplateCache(
                cast(TemplateBuilder, hub), local, self.clock, self.observer,
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

    def template_snapshots(self) -> list[TemplateSnapshot]:
        return self.templates.snapshots() if self.templates is not None else []

    # --- nodes (zeroserve/cluster/ adds and removes them as Ray's membership changes) -------------

    def add_node(self, node: Node) -> None:
        """A node joined: it takes new workers at once, starting with floors that found no room before."""
        if node.node_id in self.nodes:
            raise ValueError(f"node {node.node_id} is already in the pool")
        node.join()
        self.nodes[node.node_id] = node
        self._fill_floors()

    def vouch(self, node_id: str, sent_s: float) -> None:
        """The node answered a check sent at `sent_s` (the pool's clock): if a crash there made it suspect, it
        takes workers again, beginning with floors that found no room meanwhile."""
        node = self.nodes.get(node_id)
        if node is not None and node.vouch(sent_s):
            self._fill_floors()

    def remove_node(self, node_id: str, reason: str = "the node left the cluster") -> None:
        """A node left: its spawns in progress fail (and are placed again), its workers are gone as if they
        crashed (requests on them get WorkerGone and are retried once), and floors are filled elsewhere."""
        if node_id == self.local_node_id:
            raise ValueError("the server's own node cannot be removed")
        node = self.nodes.pop(node_id, None)
        if node is None:
            return
        node.leave()
        for variant in list(self.variants.values()):
            for slot in [s for s in variant.workers.values() if s.node_id == node_id]:
                self._stop(slot, WorkerEventKind.CRASHED, reason=reason, kill=True)
        self._fill_floors()

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
        for slot in variant.retire():
            self._gone(slot, WorkerEventKind.STOPPED, reason="", kill=False)

    def _fill_floor(self, variant: VariantPool) -> None:
        for _ in range(autoscaler.workers_below_floor(variant.scaling, variant.views(), variant.starting)):
            if not self._start_worker(variant, spread=True):
                break

    def _fill_floors(self) -> None:
        for variant in list(self.variants.values()):
            self._fill_floor(variant)

    # --- handing out workers ---------------------------------------------------------------------

    async def acquire(self, variant: VariantPool, deadline_s: float) -> tuple[WorkerSlot, bool]:
        """The least loaded warm worker, starting one if the policy says so. Returns (slot, cold) where
        cold means this request had to wait for a worker to start."""
        cold = False
        failures_before = variant.spawn_failures
        with variant.waiter():
            while True:
                if variant.spawn_failures > failures_before and not variant.workers:
                    # One failed start per request: a model that cannot load is reported, not re-forked in
                    # a loop for the whole wait budget.
                    raise messages.model_could_not_load(variant.last_spawn_error)
                wanted = autoscaler.should_scale_out(
                    variant.scaling, variant.views(), variant.starting, variant.waiting
                )
                if wanted and not self._start_worker(variant, for_request=True) and not variant.workers:
                    raise messages.memory_budget_exhausted()
                if (slot := variant.pick()) is not None:
                    return slot, cold
                cold = cold or not variant.workers
                if self.clock.now() >= deadline_s:
                    raise messages.model_still_loading()
                await wait_until(self.clock, variant.changed(), deadline_s)

    def release(self, slot: WorkerSlot) -> None:
        now = self.clock.now()
        slot.variant.slot_released(slot, now)
        # Whatever the connection counts now: a stream's reply is done before its bookkeeping callback
        # has run, and a scale-in pass that fired mid-stream left no timer. The pass checks idleness itself.
        self._scale_in_timer.schedule(now + self.idle_timeout_s)

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
        variant.spawn_began()
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
        spec = variant.deployment.worker_spec(worker_id, self.worker_threads)
        templates = self.templates if node.node_id == self.local_node_id else None
        if templates is not None:
            spec = replace(spec, template=templates.for_cold_start(variant.key))
        try:
            connection, ready = await node.spawn(spec, self.spawn_timeout_s)
        except SpawnFailed as exc:
            self._start_failed(variant, worker_id, node, exc)
            return None
        except BaseException:  # cancelled (shutdown): the reservation and the count must not leak
            node.release(worker_id)
            variant.spawn_failed("the start was cancelled")
            raise
        slot = WorkerSlot.started(connection, variant, node.node_id, self.clock.now(), ready)
        if variant.retired or node.node_id not in self.nodes:
            node.release(worker_id)
            variant.spawn_ready(None)
            connection.stop()
            if not variant.retired:  # its node left just as it became ready
                self._fill_floor(variant)
            return slot
        variant.spawn_ready(slot)
        connection.closed.add_done_callback(lambda _: self._on_closed(slot))
        if templates is not None and slot.template_pid is None and for_request:
            templates.after_cold_start(variant.key, spec)
        self._started(slot, ready)
        return slot

    def _start_failed(self, variant: VariantPool, worker_id: str, node: Node, exc: SpawnFailed) -> None:
        node.release(worker_id)
        if isinstance(exc, NodeLost):  # not the model's failure: placed again, no waiter gives up over it
            variant.spawn_lost()
            log.warning("worker %s of %s: %s; placing it again", worker_id, variant.key, exc)
            if not variant.retired:
                self._fill_floor(variant)
            return
        variant.spawn_failed(str(exc))
        d = variant.deployment
        self.observer.worker(WorkerEvent(d.endpoint, d.variant, WorkerEventKind.FAILED, reason=str(exc)))

    def _started(self, slot: WorkerSlot, ready: Header) -> None:
        d = slot.variant.deployment
        setup_ms = float(ready.get("setup_ms", 0.0))
        self.observer.worker(
            WorkerEvent(
                d.endpoint,
                d.variant,
                WorkerEventKind.STARTED,
                setup_ms=setup_ms,
                rss_mb=slot.rss_mb,
                memory_mb=d.memory_mb,
            )
        )
        self._scale_in_timer.schedule(slot.last_used_s + self.idle_timeout_s)

    def _reserve(self, worker_id: str, variant: VariantPool, spread: bool) -> Node | None:
        """Choose the node and make room there: templates go first (a worker is worth more than the means
        to start one), then other variants' idle workers, least recently used first."""
        memory_mb = variant.deployment.memory_mb
        chosen = placement.choose_node(memory_mb, self._node_views(variant), spread=spread)
        if chosen is None:
            return None
        node = self.nodes[chosen.node_id]
        if node.node_id == self.local_node_id and self.templates is not None:
            if chosen.evictions:  # idle workers go only once every template has
                self.templates.drop_all(keep=variant.key, reason="evicted for memory")
            else:
                self.templates.make_room(memory_mb, keep=variant.key)
        for evicted in chosen.evictions:
            slot = self._find(evicted)
            if slot is not None:
                self._stop(slot, WorkerEventKind.STOPPED, reason="evicted for memory")
        return node if node.reserve(worker_id, memory_mb, worker_of=variant.key) else None

    def _node_views(self, variant: VariantPool) -> list[placement.NodeView]:
        bundle = os.path.basename(variant.deployment.bundle_dir.rstrip("/"))
        evictable: dict[str, list[autoscaler.WorkerView]] = {node_id: [] for node_id in self.nodes}
        for other in self.variants.values():
            if other is not variant:
                for slot in other.workers.values():
                    evictable.setdefault(slot.node_id, []).append(slot.view())
        # Templates live on the server's own node only.
        templates_mb = self.templates.droppable_mb(keep=variant.key) if self.templates is not None else 0
        return [
            placement.NodeView(
                node.node_id,
                node.ledger.free_mb,
                node.holds(bundle),
                node.count(variant.key),
                tuple(evictable[node.node_id]),
                droppable_mb=templates_mb if node.node_id == self.local_node_id else 0,
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

    def _stop(self, slot: WorkerSlot, kind: WorkerEventKind, reason: str = "", kill: bool = False) -> bool:
        """Take the worker out of its variant and let it go; False if it was already gone."""
        if slot.variant.remove(slot.worker_id) is None:
            return False
        self._gone(slot, kind, reason, kill)
        return True

    def _gone(self, slot: WorkerSlot, kind: WorkerEventKind, reason: str, kill: bool) -> None:
        node = self.nodes.get(slot.node_id)
        if node is not None:
            node.release(slot.worker_id)
        if kill:
            slot.connection.kill()
        else:
            slot.connection.stop()
        d = slot.variant.deployment
        self.observer.worker(WorkerEvent(d.endpoint, d.variant, kind, rss_mb=slot.rss_mb, reason=reason))

    def kill(self, slot: WorkerSlot, kind: WorkerEventKind, reason: str) -> None:
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
            node.suspect(self.clock.now())
        if self._stop(slot, WorkerEventKind.CRASHED, reason="worker exited unexpectedly"):
            log.warning("worker %s of %s exited unexpectedly", slot.worker_id, slot.variant.key)
            if not slot.variant.retired:
                self._fill_floor(slot.variant)

    # --- scale-in --------------------------------------------------------------------------------

    def _scale_in(self) -> None:
        now = self.clock.now()
        next_check: float | None = None
        for variant in list(self.variants.values()):
            if not variant.workers:
                continue
            for worker_id in autoscaler.idle_workers_to_stop(variant.scaling, variant.views(), now):
                self._stop(variant.workers[worker_id], WorkerEventKind.STOPPED, reason="idle")
            when = autoscaler.next_scale_in_check_s(variant.scaling, variant.views())
            if when is not None:
                next_check = when if next_check is None else min(next_check, when)
        if next_check is not None:
            self._scale_in_timer.schedule(max(next_check, now))

    async def close(self) -> None:
        if self.templates is not None:
            self.templates.close()
        for variant in list(self.variants.values()):
            self._retire(variant)
        self.variants.clear()
        self._scale_in_timer.cancel()
        for task in list(self._tasks):
            task.cancel()
