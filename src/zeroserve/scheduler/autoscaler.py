"""Scaling decisions as pure functions of (config, observed load, workers, now).

Scale-out is event-driven: the router asks `should_scale_out` on every dispatch, so a burst gets a new
worker at once instead of at the next tick of a control loop. Scale-in is timed: a worker idle for
`idle_timeout_s` is stopped (the floor is ProvisionedConcurrency), and `next_scale_in_check_s` says when to
look again, so an idle server sleeps instead of polling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from zeroserve.scheduler.eviction import Evictable, least_recently_used


@dataclass(frozen=True)
class WorkerView:
    worker_id: str
    inflight: int
    last_used_s: float
    memory_mb: int
    variant_key: str = ""


@dataclass(frozen=True)
class ScalingConfig:
    idle_timeout_s: float
    min_workers: int = 0  # ProvisionedConcurrency, or the instance count of an instance variant
    max_workers: int = 1
    # A request that finds every warm worker busy starts another (up to max_workers, one per core): it would
    # otherwise wait behind a batch while a core idles. Batching takes over once every core has a worker.
    # Measured with wrk on 2 cores, short reviews: 4-16 clients ~650-700 -> ~1,050-1,200 req/s against the
    # old threshold, one full batch (16) in flight per worker, which kept one worker (one core) to 16 clients.
    target_inflight_per_worker: int = 1


def should_scale_out(
    config: ScalingConfig, workers: Sequence[WorkerView], starting: int, waiting: int
) -> bool:
    """One more worker when none is starting, the cap allows it, and either nothing is warm while requests
    wait, or every warm worker already carries its target load."""
    if starting > 0 or len(workers) + starting >= config.max_workers:
        return False
    if not workers:
        return waiting > 0
    return all(worker.inflight >= config.target_inflight_per_worker for worker in workers)


def workers_below_floor(config: ScalingConfig, workers: Sequence[WorkerView], starting: int) -> int:
    return max(0, config.min_workers - len(workers) - starting)


def idle_workers_to_stop(config: ScalingConfig, workers: Sequence[WorkerView], now_s: float) -> list[str]:
    """Workers idle for at least the timeout, longest-idle first, never going below the floor."""
    idle = sorted(
        (w for w in workers if w.inflight == 0 and now_s - w.last_used_s >= config.idle_timeout_s),
        key=lambda w: w.last_used_s,
    )
    stoppable = max(0, len(workers) - config.min_workers)
    return [w.worker_id for w in idle[:stoppable]]


def next_scale_in_check_s(config: ScalingConfig, workers: Sequence[WorkerView]) -> float | None:
    """When the earliest idle worker above the floor reaches its timeout; None if nothing can be stopped."""
    if len(workers) <= config.min_workers:
        return None
    idle = [w.last_used_s for w in workers if w.inflight == 0]
    return min(idle) + config.idle_timeout_s if idle else None


def choose_evictions(needed_mb: int, free_mb: int, candidates: Sequence[WorkerView]) -> list[str] | None:
    """Least recently used idle workers (of other variants) to stop so `needed_mb` fits; None if it cannot."""
    idle = (Evictable(w.worker_id, w.memory_mb, w.last_used_s) for w in candidates if w.inflight == 0)
    return least_recently_used(needed_mb, free_mb, idle)
