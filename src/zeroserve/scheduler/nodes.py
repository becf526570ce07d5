"""A machine workers can run on, as the pool sees it: its id and address, where its workers come from, its
memory ledger, and which bundles it already holds.

On one machine the pool has exactly one node, "local", served by the server's own WorkerHub. On a Ray
cluster (zeroserve/cluster/) every other Ray node is one more `Node` whose spawner asks that node's agent.
The pool owns the nodes; a node owns its ledger and its record of which worker holds what.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from zeroserve.scheduler.ledger import MemoryLedger
from zeroserve.workers.hub import SpawnFailed
from zeroserve.workers.protocol import Header
from zeroserve.workers.spec import WorkerSpec

if TYPE_CHECKING:
    from zeroserve.scheduler.variant_pool import Connection

LOCAL_NODE_ID = "local"


class NodeLost(SpawnFailed):
    """The node a worker was starting on left the cluster: not the model's fault, so it is placed again."""


class Spawner(Protocol):
    """Where a node's workers come from (workers/hub.py here, cluster/spawner.py on another Ray node)."""

    async def spawn(self, spec: WorkerSpec, timeout_s: float) -> tuple[Connection, Header]: ...


@dataclass(frozen=True)
class NodeSummary:
    """What status, metrics and the dashboard show of a node."""

    node_id: str
    address: str
    memory_budget_mb: int
    reserved_mb: int
    workers: int


@dataclass
class Node:
    node_id: str
    address: str
    spawner: Spawner
    ledger: MemoryLedger
    # The head: bundles are converted there, so it holds every one.
    holds_all_bundles: bool = False
    # Bundle folder names (derived from the artifact digest) this node has on its disk.
    bundles: set[str] = field(default_factory=set)
    # Resolved when the node leaves: spawns in progress there fail with NodeLost. None: it never leaves.
    left: asyncio.Future[None] | None = None
    # Since when a worker here died unexpectedly (monotonic s): nothing is placed here until the node is
    # heard from after that (its agent answered a ping sent later). None: not suspect.
    suspect_since_s: float | None = None
    # worker id -> variant key, for every reservation (starting or live): what spreading counts.
    _holders: dict[str, str] = field(default_factory=dict)

    def vouch(self, sent_s: float) -> bool:
        """The node answered a check sent at `sent_s`; True when that lifts a suspicion."""
        if self.suspect_since_s is not None and sent_s > self.suspect_since_s:
            self.suspect_since_s = None
            return True
        return False

    def holds(self, bundle: str) -> bool:
        return self.holds_all_bundles or bundle in self.bundles

    def reserve(self, worker_id: str, variant_key: str, memory_mb: int) -> bool:
        if not self.ledger.reserve(worker_id, memory_mb):
            return False
        self._holders[worker_id] = variant_key
        return True

    def release(self, worker_id: str) -> None:
        self.ledger.release(worker_id)
        self._holders.pop(worker_id, None)

    def count(self, variant_key: str) -> int:
        """Workers of this variant on this node, starting ones included."""
        return sum(1 for key in self._holders.values() if key == variant_key)

    async def spawn(self, spec: WorkerSpec, timeout_s: float) -> tuple[Connection, Header]:
        """The spawner's answer, or NodeLost as soon as the node leaves (its agent may never answer)."""
        if self.left is None:
            return await self.spawner.spawn(spec, timeout_s)
        if self.left.done():
            raise NodeLost(f"node {self.node_id} left the cluster")
        spawn = asyncio.ensure_future(self.spawner.spawn(spec, timeout_s))
        try:
            waits: list[asyncio.Future[Any]] = [spawn, self.left]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not spawn.done():
                spawn.cancel()
        if not spawn.done() or spawn.cancelled():
            raise NodeLost(f"node {self.node_id} left the cluster while the worker was starting")
        return spawn.result()
