"""One variant's share of the pool: its workers, its spawns in progress and its waiting requests.

Ownership: a `VariantPool` changes its state (and its workers' slots) only in its own methods, and only the
Pool (scheduler/pool.py) calls those; anyone may read it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from zeroserve.scheduler import autoscaler
from zeroserve.scheduler.deployment import VariantDeployment
from zeroserve.scheduler.nodes import LOCAL_NODE_ID
from zeroserve.scheduler.ports import Connection
from zeroserve.scheduler.snapshot import WorkerSnapshot
from zeroserve.workers.protocol import Header


@dataclass
class WorkerSlot:
    connection: Connection
    variant: VariantPool
    memory_mb: int
    last_used_s: float
    rss_mb: float = 0.0
    template_pid: int | None = None  # the template it was forked from; None: the zygote
    # Where its start went (fork, connect, load, warm_up), as the worker measured it.
    setup_phases_ms: dict[str, float] | None = None
    node_id: str = LOCAL_NODE_ID

    @property
    def worker_id(self) -> str:
        return self.connection.worker_id

    @classmethod
    def started(
        cls, connection: Connection, variant: VariantPool, node_id: str, now_s: float, ready: Header
    ) -> WorkerSlot:
        """The slot of a worker that just said it is ready (`ready`: its ready message)."""
        template_pid = ready.get("template_pid")
        return cls(
            connection,
            variant,
            variant.deployment.memory_mb,
            now_s,
            float(ready.get("rss_mb", 0.0)),
            int(template_pid) if template_pid is not None else None,
            dict(ready.get("phases_ms") or {}),
            node_id,
        )

    def snapshot(self) -> WorkerSnapshot:
        c = self.connection
        return WorkerSnapshot(
            c.worker_id, c.pid, c.inflight, self.rss_mb, self.template_pid, self.setup_phases_ms, self.node_id
        )

    def view(self) -> autoscaler.WorkerView:
        return autoscaler.WorkerView(
            self.worker_id, self.connection.inflight, self.last_used_s, self.memory_mb, self.variant.key
        )


class VariantPool:
    """One variant's workers, spawns in progress and waiting requests. Read by anyone, changed by the Pool
    through the methods below, which keep the counters and the wake-up of waiters together."""

    def __init__(self, deployment: VariantDeployment, scaling: autoscaler.ScalingConfig) -> None:
        self.deployment = deployment
        self.scaling = scaling
        self._workers: dict[str, WorkerSlot] = {}
        self._starting = 0
        self._waiting = 0
        self._spawn_failures = 0
        self._last_spawn_error = ""
        self._retired = False
        self._changed: asyncio.Future[None] | None = None

    # --- reading -------------------------------------------------------------------------------

    @property
    def key(self) -> str:
        return self.deployment.key

    @property
    def workers(self) -> Mapping[str, WorkerSlot]:
        return self._workers

    @property
    def starting(self) -> int:
        return self._starting

    @property
    def waiting(self) -> int:
        return self._waiting

    @property
    def spawn_failures(self) -> int:
        return self._spawn_failures

    @property
    def last_spawn_error(self) -> str:
        return self._last_spawn_error

    @property
    def retired(self) -> bool:
        return self._retired

    def views(self) -> list[autoscaler.WorkerView]:
        return [slot.view() for slot in self._workers.values()]

    def pick(self) -> WorkerSlot | None:
        """The least loaded worker with room in its batch; a loaded one only when no other is coming (a
        request sent to a busy worker waits behind its batch, one that waits here can take a new worker)."""
        if not self._workers:
            return None
        slot = min(self._workers.values(), key=lambda s: s.connection.inflight)
        has_room = slot.connection.inflight < self.deployment.max_batch_size
        return slot if has_room or self._starting == 0 else None

    def changed(self) -> asyncio.Future[None]:
        """Resolved at the next change a waiter cares about (a worker ready, a spawn failed, a slot free)."""
        if self._changed is None:
            self._changed = asyncio.get_running_loop().create_future()
        return self._changed

    # --- changing (the Pool's calls) -------------------------------------------------------------

    def _notify(self) -> None:
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)
        self._changed = None

    @contextmanager
    def waiter(self) -> Iterator[None]:
        """A request waits for a worker of this variant while inside (what scale-out counts)."""
        self._waiting += 1
        try:
            yield
        finally:
            self._waiting -= 1

    def spawn_began(self) -> None:
        self._starting += 1

    def spawn_failed(self, error: str) -> None:
        self._starting -= 1
        self._spawn_failures += 1
        self._last_spawn_error = error
        self._notify()

    def spawn_lost(self) -> None:
        """A spawn ended because its node left: not the model's failure, so no waiter gives up over it."""
        self._starting -= 1
        self._notify()

    def spawn_ready(self, slot: WorkerSlot | None) -> None:
        """A spawn ended with a ready worker; `None` when the variant was retired meanwhile."""
        self._starting -= 1
        self._last_spawn_error = ""
        if slot is not None:
            self._workers[slot.worker_id] = slot
        self._notify()

    def remove(self, worker_id: str) -> WorkerSlot | None:
        slot = self._workers.pop(worker_id, None)
        if slot is not None:
            self._notify()
        return slot

    def slot_released(self, slot: WorkerSlot, now_s: float) -> None:
        slot.last_used_s = now_s
        if self._waiting:
            self._notify()  # a slot in a batch is free again

    def retire(self) -> list[WorkerSlot]:
        self._retired = True
        slots = list(self._workers.values())
        self._workers.clear()
        self._notify()
        return slots
