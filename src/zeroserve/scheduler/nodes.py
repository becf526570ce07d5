"""A machine workers can run on, as the pool sees it: its id and address, where its workers come from, its
memory ledger, and which bundles it already holds.

On one machine the pool has exactly one node, "local", served by the server's own WorkerHub. On a Ray
cluster (zeroserve/cluster/) every other Ray node is one more `Node` whose spawner asks that node's agent.
The pool owns the nodes; a node owns its ledger and its record of which worker holds what.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from zeroserve.scheduler.ledger import MemoryLedger
from zeroserve.scheduler.ports import Connection, Spawner
from zeroserve.workers.hub import SpawnFailed
from zeroserve.workers.protocol import Header
from zeroserve.workers.spec import WorkerSpec

LOCAL_NODE_ID = "local"


class NodeLost(SpawnFailed):
    """The node a worker was starting on left the cluster: not the model's fault, so it is placed again."""


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
    """Changed only through its methods: the pool says when it joins, leaves or is suspect; the pool and
    the template cache reserve and release memory on it, which keeps the ledger and the holders together."""

    node_id: str
    address: str
    spawner: Spawner
    ledger: MemoryLedger  # read by anyone; reserved and released only through this node
    # The head: bundles are converted there, so it holds every one.
    holds_all_bundles: bool = False
    # Bundle folder names (derived from the artifact digest) this node has on its disk.
    bundles: set[str] = field(default_factory=set)
    # Resolved when the node leaves: spawns in progress there fail with NodeLost. None: it never leaves.
    _left: asyncio.Future[None] | None = field(default=None, init=False)
    # Since when (the pool's clock) a worker here died unexpectedly: nothing is placed here until the node
    # is heard from after that (its agent answered a ping sent later). None: not suspect.
    _suspect_since_s: float | None = field(default=None, init=False)
    # worker id -> variant key, for every worker's reservation (starting or live): what spreading counts.
    _workers: dict[str, str] = field(default_factory=dict, init=False)

    # --- membership (the pool's calls) -----------------------------------------------------------------

    def join(self) -> None:
        """The node joined a pool on the running loop: from now on it can leave."""
        self._left = asyncio.get_running_loop().create_future()

    def leave(self) -> None:
        if self._left is not None and not self._left.done():
            self._left.set_result(None)

    def suspect(self, now_s: float) -> None:
        """A worker here died unexpectedly at `now_s`: often the first sign of the machine going."""
        self._suspect_since_s = now_s

    def vouch(self, sent_s: float) -> bool:
        """The node answered a check sent at `sent_s`; True when that lifts a suspicion."""
        if self._suspect_since_s is not None and sent_s > self._suspect_since_s:
            self._suspect_since_s = None
            return True
        return False

    @property
    def suspect_since_s(self) -> float | None:
        return self._suspect_since_s

    # --- memory ---------------------------------------------------------------------------------------

    def reserve(self, holder: str, memory_mb: int, *, worker_of: str | None = None) -> bool:
        """Reserve `memory_mb` for `holder` if it fits. `worker_of`: the holder is a worker of that variant
        (counted for spreading); None: something else (a template)."""
        if not self.ledger.reserve(holder, memory_mb):
            return False
        if worker_of is not None:
            self._workers[holder] = worker_of
        return True

    def release(self, holder: str) -> None:
        self.ledger.release(holder)
        self._workers.pop(holder, None)

    def count(self, variant_key: str) -> int:
        """Workers of this variant on this node, starting ones included."""
        return sum(1 for key in self._workers.values() if key == variant_key)

    def holds(self, bundle: str) -> bool:
        return self.holds_all_bundles or bundle in self.bundles

    async def spawn(self, spec: WorkerSpec, timeout_s: float) -> tuple[Connection, Header]:
        """The spawner's answer, or NodeLost as soon as the node leaves (its agent may never answer)."""
        if self._left is None:
            return await self.spawner.spawn(spec, timeout_s)
        if self._left.done():
            raise NodeLost(f"node {self.node_id} left the cluster")
        spawn = asyncio.ensure_future(self.spawner.spawn(spec, timeout_s))
        try:
            waits: list[asyncio.Future[Any]] = [spawn, self._left]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not spawn.done():
                spawn.cancel()
        if not spawn.done() or spawn.cancelled():
            raise NodeLost(f"node {self.node_id} left the cluster while the worker was starting")
        return spawn.result()
