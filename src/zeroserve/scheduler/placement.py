"""Which node a new worker goes to. Pure: the pool passes a view of each node, this returns a choice.

Rules, in order: a node where the worker fits without evicting anything beats one that needs evictions (and
among those, the fewest evictions); a provisioned (floor) worker goes where its variant has the fewest
workers, so losing one node never takes all of a variant's provisioned concurrency; then a node that already
holds the bundle (no fetch before the fork: the head always does, conversion runs there); then the most free
memory; then the node id, so the choice is deterministic. Memory a node can free without stopping a worker
(templates, on the server's own node) counts as room, but a node that needs none of it freed ranks first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from zeroserve.scheduler import autoscaler


@dataclass(frozen=True)
class NodeView:
    node_id: str
    free_mb: int
    holds_bundle: bool
    variant_workers: int  # workers of the variant being placed (starting included) on this node
    evictable: tuple[autoscaler.WorkerView, ...] = ()  # other variants' workers here, for eviction
    droppable_mb: int = 0  # held by what goes before any idle worker (templates)


@dataclass(frozen=True)
class Placement:
    node_id: str
    evictions: list[str]


def choose_node(memory_mb: int, nodes: Sequence[NodeView], *, spread: bool) -> Placement | None:
    """Where a worker needing `memory_mb` goes, with the idle workers to evict there first; None when no
    node has room even after evicting idle workers."""
    best: tuple[tuple[int, int, int, int, int, str], Placement] | None = None
    for node in nodes:
        evictions = autoscaler.choose_evictions(memory_mb, node.free_mb + node.droppable_mb, node.evictable)
        if evictions is None:
            continue
        rank = (
            len(evictions),
            0 if memory_mb <= node.free_mb else 1,
            node.variant_workers if spread else 0,
            0 if node.holds_bundle else 1,
            -node.free_mb,
            node.node_id,
        )
        if best is None or rank < best[0]:
            best = (rank, Placement(node.node_id, evictions))
    return None if best is None else best[1]
