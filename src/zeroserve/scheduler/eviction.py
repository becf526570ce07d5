"""Least recently used eviction, the one rule for idle workers (autoscaler.py) and templates
(templates.py). Pure: the caller says what may go, this says what goes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Evictable:
    key: str
    memory_mb: int
    last_used_s: float


def least_recently_used(needed_mb: int, free_mb: int, candidates: Iterable[Evictable]) -> list[str] | None:
    """Keys to evict, least recently used first and only as many as needed, so `needed_mb` fits; None if
    evicting every candidate is not enough."""
    if needed_mb <= free_mb:
        return []
    chosen: list[str] = []
    for candidate in sorted(candidates, key=lambda c: c.last_used_s):
        chosen.append(candidate.key)
        free_mb += candidate.memory_mb
        if needed_mb <= free_mb:
            return chosen
    return None
