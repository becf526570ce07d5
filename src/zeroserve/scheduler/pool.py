"""Worker processes per variant: hand out a worker for each request, start and stop them, keep the machine's
memory budget. All decisions come from `autoscaler`; this module does the process I/O they imply."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

from zeroserve.errors import ModelNotReady, Throttled
from zeroserve.metrics.events import NullObserver, Observer, WorkerEvent
from zeroserve.scheduler import autoscaler
from zeroserve.scheduler.deployment import VariantDeployment
from zeroserve.workers.connection import WorkerConnection
from zeroserve.workers.hub import SpawnFailed, WorkerHub
from zeroserve.workers.spec import WorkerSpec

log = logging.getLogger("zeroserve.pool")
_worker_ids = itertools.count(1)


@dataclass
class WorkerSlot:
    connection: WorkerConnection
    variant: VariantPool
    memory_mb: int
    last_used_s: float
    rss_mb: float = 0.0

    def view(self) -> autoscaler.WorkerView:
        return autoscaler.WorkerView(
            self.connection.worker_id,
            self.connection.inflight,
            self.last_used_s,
            self.memory_mb,
            self.variant.key,
        )


class VariantPool:
    def __init__(self, deployment: VariantDeployment, pool: Pool) -> None:
        self.deployment = deployment
        self.pool = pool
        self.workers: dict[str, WorkerSlot] = {}
        self.starting = 0
        self.waiting = 0
        self.last_spawn_error = ""
        self.spawn_failures = 0
        self.retired = False
        self._changed: asyncio.Future[None] | None = None

    @property
    def key(self) -> str:
        return self.deployment.key

    @property
    def scaling(self) -> autoscaler.ScalingConfig:
        d = self.deployment
        return autoscaler.ScalingConfig(
            idle_timeout_s=self.pool.idle_timeout_s,
            min_workers=d.min_workers,
            max_workers=max(d.max_workers, d.min_workers),
            target_inflight_per_worker=d.max_batch_size,
        )

    def views(self) -> list[autoscaler.WorkerView]:
        return [slot.view() for slot in self.workers.values()]

    def _notify(self) -> None:
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)
        self._changed = None

    async def acquire(self, deadline_s: float) -> tuple[WorkerSlot, bool]:
        """The least loaded warm worker, starting one if the policy says so. Returns (slot, cold) where
        cold means this request had to wait for a worker to start."""
        cold = False
        failures_before = self.spawn_failures
        self.waiting += 1
        try:
            while True:
                if self.spawn_failures > failures_before and not self.workers:
                    # One failed start per request: a model that cannot load is reported, not re-forked in
                    # a loop for the whole wait budget.
                    raise ModelNotReady(f"the model could not be loaded: {self.last_spawn_error}")
                if autoscaler.should_scale_out(self.scaling, self.views(), self.starting, self.waiting):
                    self.pool.start_worker(self)
                if (slot := self._pick()) is not None:
                    return slot, cold
                cold = cold or not self.workers
                remaining = deadline_s - self.pool.clock()
                if remaining <= 0:
                    raise ModelNotReady("the model is still loading; no worker became ready in time")
                if self._changed is None:
                    self._changed = asyncio.get_running_loop().create_future()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._changed), remaining)
        finally:
            self.waiting -= 1

    def _pick(self) -> WorkerSlot | None:
        """The least loaded worker with room in its batch; a loaded one only when no other is coming (a
        request sent to a busy worker waits behind its batch, one that waits here can take a new worker)."""
        if not self.workers:
            return None
        slot = min(self.workers.values(), key=lambda s: s.connection.inflight)
        has_room = slot.connection.inflight < self.deployment.max_batch_size
        return slot if has_room or self.starting == 0 else None

    def release(self, slot: WorkerSlot) -> None:
        slot.last_used_s = self.pool.clock()
        if self.waiting:
            self._notify()  # a slot in a batch is free again
        if slot.connection.inflight == 0:
            self.pool.schedule_scale_in(slot.last_used_s + self.pool.idle_timeout_s)


class Pool:
    def __init__(
        self,
        hub: WorkerHub,
        *,
        idle_timeout_s: float,
        memory_budget_mb: int,
        spawn_timeout_s: float,
        worker_threads: int = 0,
        observer: Observer | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.hub = hub
        self.idle_timeout_s = idle_timeout_s
        self.memory_budget_mb = memory_budget_mb
        self.spawn_timeout_s = spawn_timeout_s
        self.worker_threads = worker_threads or (os.cpu_count() or 1)
        self.observer: Observer = observer or NullObserver()
        self.clock = clock or asyncio.get_running_loop().time
        self.variants: dict[str, VariantPool] = {}
        self.reserved_mb = 0
        self._scale_in_timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[object]] = set()

    # --- registry ------------------------------------------------------------------------------

    def deploy(self, deployment: VariantDeployment) -> VariantPool:
        """Register (or replace) a variant. Workers of a replaced variant finish what they do, then stop."""
        old = self.variants.get(deployment.key)
        variant = VariantPool(deployment, self)
        self.variants[deployment.key] = variant
        if old is not None:
            self.retire(old)
        self.fill_floor(variant)
        return variant

    def remove(self, key: str) -> None:
        variant = self.variants.pop(key, None)
        if variant is not None:
            self.retire(variant)

    def retire(self, variant: VariantPool) -> None:
        variant.retired = True
        for slot in list(variant.workers.values()):
            self._stop(slot, "stopped")

    def fill_floor(self, variant: VariantPool) -> None:
        for _ in range(autoscaler.workers_below_floor(variant.scaling, variant.views(), variant.starting)):
            self.start_worker(variant)

    # --- starting workers ----------------------------------------------------------------------

    def start_worker(self, variant: VariantPool) -> None:
        """Begin a spawn in the background; waiters are woken when it is ready or failed."""
        if not self._reserve(variant.deployment.memory_mb, exclude=variant):
            if not variant.workers:
                raise Throttled("the machine's memory budget is exhausted by busy endpoints; retry later")
            return
        variant.starting += 1
        self._spawn_task(variant)

    def _spawn_task(self, variant: VariantPool) -> None:
        task = asyncio.get_running_loop().create_task(self._spawn(variant))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start_and_wait(self, variant: VariantPool) -> WorkerSlot:
        """Spawn one worker now and return it once ready (used to prove a deployment loads)."""
        if not self._reserve(variant.deployment.memory_mb, exclude=variant):
            raise SpawnFailed("not enough memory budget to load the model")
        variant.starting += 1
        slot = await self._spawn(variant)
        if slot is None:
            raise SpawnFailed(variant.last_spawn_error)
        return slot

    async def _spawn(self, variant: VariantPool) -> WorkerSlot | None:
        d = variant.deployment
        spec = WorkerSpec(
            worker_id=f"w{next(_worker_ids)}",
            bundle_dir=d.bundle_dir,
            memory_mb=d.memory_mb,
            threads=d.threads or self.worker_threads,
            max_batch_size=d.max_batch_size,
            max_batch_wait_ms=d.max_batch_wait_ms,
            env=d.env,
        )
        try:
            connection, ready = await self.hub.spawn(spec, self.spawn_timeout_s)
        except SpawnFailed as exc:
            variant.last_spawn_error = str(exc)
            variant.spawn_failures += 1
            self.reserved_mb -= d.memory_mb
            self.observer.worker(WorkerEvent(d.endpoint, d.variant, "failed", reason=str(exc)))
            return None
        finally:
            variant.starting -= 1
            variant._notify()
        variant.last_spawn_error = ""
        slot = WorkerSlot(connection, variant, d.memory_mb, self.clock(), float(ready.get("rss_mb", 0.0)))
        if variant.retired:
            self.reserved_mb -= d.memory_mb
            connection.stop()
            return slot
        variant.workers[connection.worker_id] = slot
        connection.closed.add_done_callback(lambda _: self._on_closed(slot))
        setup_ms = float(ready.get("setup_ms", 0.0))
        self.observer.worker(
            WorkerEvent(
                d.endpoint, d.variant, "started", setup_ms=setup_ms, rss_mb=slot.rss_mb, memory_mb=d.memory_mb
            )
        )
        self.schedule_scale_in(slot.last_used_s + self.idle_timeout_s)
        variant._notify()
        return slot

    def _reserve(self, memory_mb: int, exclude: VariantPool) -> bool:
        free_mb = self.memory_budget_mb - self.reserved_mb
        candidates = [
            s.view() for v in self.variants.values() if v is not exclude for s in v.workers.values()
        ]
        evictions = autoscaler.choose_evictions(memory_mb, free_mb, candidates)
        if evictions is None:
            return False
        for worker_id in evictions:
            slot = self._find(worker_id)
            if slot is not None:
                self._stop(slot, "stopped", reason="evicted for memory")
        self.reserved_mb += memory_mb
        return True

    def _find(self, worker_id: str) -> WorkerSlot | None:
        for variant in self.variants.values():
            if worker_id in variant.workers:
                return variant.workers[worker_id]
        return None

    # --- stopping workers ----------------------------------------------------------------------

    def _stop(self, slot: WorkerSlot, kind: str, reason: str = "", kill: bool = False) -> None:
        variant = slot.variant
        if variant.workers.pop(slot.connection.worker_id, None) is None:
            return
        self.reserved_mb -= slot.memory_mb
        if kill:
            slot.connection.kill()
        else:
            slot.connection.stop()
        d = variant.deployment
        self.observer.worker(WorkerEvent(d.endpoint, d.variant, kind, rss_mb=slot.rss_mb, reason=reason))

    def kill(self, slot: WorkerSlot, kind: str, reason: str) -> None:
        self._stop(slot, kind, reason, kill=True)
        if not slot.variant.retired:
            self.fill_floor(slot.variant)

    def _on_closed(self, slot: WorkerSlot) -> None:
        """The worker's socket closed without us stopping it: it crashed."""
        if slot.connection.worker_id in slot.variant.workers:
            log.warning("worker %s of %s exited unexpectedly", slot.connection.worker_id, slot.variant.key)
            self._stop(slot, "crashed", reason="worker exited unexpectedly")
            if not slot.variant.retired:
                self.fill_floor(slot.variant)

    def schedule_scale_in(self, when_s: float) -> None:
        timer = self._scale_in_timer
        if timer is not None and timer.when() <= when_s:
            return
        if timer is not None:
            timer.cancel()
        loop = asyncio.get_running_loop()
        self._scale_in_timer = loop.call_at(when_s + 0.01, self._scale_in)

    def _scale_in(self) -> None:
        self._scale_in_timer = None
        now = self.clock()
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
            self.schedule_scale_in(max(next_check, now))

    async def close(self) -> None:
        for variant in list(self.variants.values()):
            self.retire(variant)
        self.variants.clear()
        if self._scale_in_timer is not None:
            self._scale_in_timer.cancel()
        for task in list(self._tasks):
            task.cancel()
