"""The machine's memory budget: who holds how many MB of it. The only place `reserved_mb` changes.

A worker reserves its variant's MemorySizeInMB before it is forked and holds it until it is gone. Keyed by
worker id, so releasing twice (a crash noticed twice, a stop after a kill) is harmless.
"""

from __future__ import annotations


class MemoryLedger:
    def __init__(self, budget_mb: int) -> None:
        self.budget_mb = budget_mb
        self._held: dict[str, int] = {}
        self._reserved_mb = 0

    @property
    def reserved_mb(self) -> int:
        return self._reserved_mb

    @property
    def free_mb(self) -> int:
        return self.budget_mb - self._reserved_mb

    def holds(self, holder: str) -> bool:
        return holder in self._held

    def reserve(self, holder: str, memory_mb: int) -> bool:
        """Reserve if it fits; False (and nothing changes) if it does not."""
        if holder in self._held:
            raise ValueError(f"{holder} already holds {self._held[holder]} MB")
        if memory_mb > self.free_mb:
            return False
        self._held[holder] = memory_mb
        self._reserved_mb += memory_mb
        return True

    def release(self, holder: str) -> None:
        self._reserved_mb -= self._held.pop(holder, 0)
