"""The clock the data plane's timers run on: `now()` and `call_at()`, injected so tests drive time.

`LoopClock` is asyncio's monotonic loop time and its timer heap. Every timer in the scheduler (scale-in,
the wait for a worker) is set through this object, so a test with a fake clock controls all of them.
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
