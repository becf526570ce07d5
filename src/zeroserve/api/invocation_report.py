"""One invocation's record, reported once whatever route answered it: when it arrived, the trace the data
plane filled in, and what the client got (api/runtime.py, api/generation_calls.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from zeroserve.metrics.events import InvocationRecord, Observer
from zeroserve.scheduler.router import InvocationTrace


@dataclass
class Report:
    """The bookkeeping of one invocation: when it arrived, its trace, and its one record."""

    observer: Observer
    name: str
    bytes_in: int
    arrived_wall: float = field(default_factory=time.time)
    arrived: float = field(default_factory=time.perf_counter)
    trace: InvocationTrace = field(default_factory=InvocationTrace)

    def send(self, status: int, code: str | None, bytes_out: int) -> None:
        """Report the invocation (only if it reached a variant: an unknown endpoint is not counted)."""
        trace = self.trace
        if not trace.variant:
            return
        total_ms = (time.perf_counter() - self.arrived) * 1000
        self.observer.invocation(
            InvocationRecord(
                endpoint=self.name,
                variant=trace.variant,
                status_code=status,
                error_code=code,
                cold_start=trace.cold_start,
                timestamp_s=self.arrived_wall,
                queue_ms=trace.queue_ms,
                model_ms=trace.model_ms,
                overhead_ms=max(0.0, total_ms - trace.model_ms),
                total_ms=total_ms,
                bytes_in=self.bytes_in,
                bytes_out=bytes_out,
                memory_mb=trace.memory_mb,
                rss_mb=trace.rss_mb,
                batch_size=max(1, trace.batch_size),
                time_to_first_token_ms=trace.time_to_first_token_ms,
                tokens_generated=trace.tokens_generated,
            )
        )
