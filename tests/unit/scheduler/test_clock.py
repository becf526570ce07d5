"""The one-pending-timer helper the pool (scale-in) and the template cache (expiry) share: only the earliest
time asked for is pending, and the callback runs at that time on the injected clock."""

from __future__ import annotations

import asyncio

from fakes import FakeClock

from zeroserve.scheduler.clock import EarliestTimer


def test_only_the_earliest_requested_time_stays_pending_and_fires_on_the_clock() -> None:
    async def main() -> None:
        clock, fired = FakeClock(start_s=0.0), []
        timer = EarliestTimer(clock, lambda: fired.append(clock.now()))
        timer.schedule(10.0)
        timer.schedule(20.0)  # later than the pending one: nothing changes
        assert clock.pending == [10.0]
        timer.schedule(5.0)  # earlier: replaces it
        assert clock.pending == [5.0]
        await clock.advance(5.0)
        assert fired == [5.0] and clock.pending == []
        timer.schedule(30.0)  # once fired, any time may be asked for again
        timer.cancel()
        await clock.advance(30.0)
        assert fired == [5.0] and clock.pending == []

    asyncio.run(main())
