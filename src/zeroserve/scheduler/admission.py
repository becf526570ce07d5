"""MaxConcurrency admission: at most N requests in flight per variant, a short bounded queue, then throttle.

`AdmissionCounter` is the pure policy (numbers in, decision out); `AdmissionGate` makes queued requests wait
on futures in arrival order. Rejecting at once when the queue is full is what keeps latency bounded under a
burst: a request either runs soon or is told to back off (ThrottlingException), never parked forever.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque


class Decision(enum.Enum):
    ADMIT = "admit"
    QUEUE = "queue"
    REJECT = "reject"


class AdmissionCounter:
    def __init__(self, max_concurrency: int, queue_limit: int) -> None:
        self.max_concurrency = max_concurrency
        self.queue_limit = queue_limit
        self.inflight = 0
        self.queued = 0

    def arrive(self) -> Decision:
        if self.inflight < self.max_concurrency and self.queued == 0:
            self.inflight += 1
            return Decision.ADMIT
        if self.queued < self.queue_limit:
            self.queued += 1
            return Decision.QUEUE
        return Decision.REJECT

    def promote(self) -> None:
        """A queued request takes the slot a finished one left."""
        self.queued -= 1
        self.inflight += 1

    def abandon(self) -> None:
        """A queued request gave up (client went away or timed out)."""
        self.queued -= 1

    def finish(self) -> bool:
        """One in-flight request ended; True if a queued request should now be promoted."""
        self.inflight -= 1
        return self.queued > 0 and self.inflight < self.max_concurrency


class AdmissionGate:
    """Async wrapper: `enter()` returns when admitted or raises `GateClosed` when rejected."""

    class Rejected(Exception):
        pass

    def __init__(self, max_concurrency: int, queue_limit: int) -> None:
        self.counter = AdmissionCounter(max_concurrency, queue_limit)
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def inflight(self) -> int:
        return self.counter.inflight

    @property
    def queued(self) -> int:
        return self.counter.queued

    async def enter(self) -> None:
        decision = self.counter.arrive()
        if decision is Decision.ADMIT:
            return
        if decision is Decision.REJECT:
            raise AdmissionGate.Rejected()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.leave()  # we were promoted just as we were cancelled: hand the slot on
            else:
                self._waiters.remove(waiter)
                self.counter.abandon()
            raise

    def leave(self) -> None:
        if self.counter.finish():
            self.counter.promote()
            self._waiters.popleft().set_result(None)
