"""The clock the data plane's timers run on: `now()` and `call_at()`, injected so tests drive time.

`LoopClock` is asyncio's monotonic loop time and its timer heap. Every timer in the scheduler (scale-in,
template expiry, the wait for a worker) is set through this object, and every time the scheduler stamps is
its `now()`, so a test with a fake clock controls all of them. `EarliestTimer` is the one-pending-timer
pattern the pool and the template cache both need.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

# asyncio may run a timer up to its clock resolution early; a timer must never see now() < its time.
_EARLY_SLACK_S = 0.001


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> float: ...

    def call_at(self, when_s: float, callback: Callable[[], None]) -> Timer: ...


class LoopClock:
    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()

    def now(self) -> float:
        return self._loop.time()

    def call_at(self, when_s: float, callback: Callable[[], None]) -> Timer:
        return self._loop.call_at(when_s + _EARLY_SLACK_S, callback)


class EarliestTimer:
    """At most one pending call of `callback`, at the earliest time asked for: a later request while an
    earlier one is pending changes nothing (the callback looks again and asks for the next time itself)."""

    def __init__(self, clock: Clock, callback: Callable[[], None]) -> None:
        self._clock = clock
        self._callback = callback
        self._timer: Timer | None = None
        self._at_s: float | None = None

    def schedule(self, when_s: float) -> None:
        if self._at_s is not None and self._at_s <= when_s:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._at_s = when_s
        self._timer = self._clock.call_at(when_s, self._fire)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._at_s = None

    def _fire(self) -> None:
        self._timer = self._at_s = None
        self._callback()


async def wait_until(clock: Clock, event: asyncio.Future[Any], deadline_s: float) -> bool:
    """Wait for `event` (not consumed: others may wait on it too) or the clock's `deadline_s`, whichever
    is first. True if the event happened."""
    wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def wake_up(_: object = None) -> None:
        if not wake.done():
            wake.set_result(None)

    event.add_done_callback(wake_up)
    timer = clock.call_at(deadline_s, wake_up)
    try:
        await wake
    finally:
        timer.cancel()
        event.remove_done_callback(wake_up)
    return event.done()
