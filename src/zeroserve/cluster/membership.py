"""Which Ray nodes are members of the pool: joined, joining, left or gone silent. Pure: the caller passes
what Ray reports and the clock is injected.

A node is seen in Ray's node table (polled), becomes `joining` while its agent starts, and a `member` once
the agent answered; a member is lost when Ray drops it from the table, when its agent dies (an event), or
when its agent has not answered a ping for `lost_after_s` (a machine that vanished without Ray noticing yet:
Ray's own health check takes ~15 s by default).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field


@dataclass
class Membership:
    lost_after_s: float
    clock: Callable[[], float]
    joining: set[str] = field(default_factory=set)
    # member node id -> when its agent last answered
    heard_s: dict[str, float] = field(default_factory=dict)

    @property
    def members(self) -> set[str]:
        return set(self.heard_s)

    def update(self, alive: Iterable[str]) -> tuple[list[str], list[str]]:
        """Ray's table of alive nodes now -> (nodes to join, members and joining nodes that left)."""
        alive_ids = set(alive)
        known = self.joining | self.members
        joined = sorted(alive_ids - known)
        left = sorted(known - alive_ids)
        self.joining |= set(joined)
        for node_id in left:
            self.forget(node_id)
        return joined, left

    def joined(self, node_id: str) -> bool:
        """Its agent is ready; False when the node left (or was forgotten) meanwhile."""
        if node_id not in self.joining:
            return False
        self.joining.discard(node_id)
        self.heard_s[node_id] = self.clock()
        return True

    def heard(self, node_id: str) -> None:
        if node_id in self.heard_s:
            self.heard_s[node_id] = self.clock()

    def forget(self, node_id: str) -> None:
        """Lost or failed to join: the next update that still sees it alive joins it again."""
        self.joining.discard(node_id)
        self.heard_s.pop(node_id, None)

    def silent(self) -> list[str]:
        now = self.clock()
        return sorted(node_id for node_id, heard in self.heard_s.items() if now - heard > self.lost_after_s)
