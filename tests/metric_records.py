"""Invocation records as the data plane fills them, with defaults a test overrides by name."""

from __future__ import annotations

from typing import Any

from zeroserve.metrics.events import InvocationRecord

# 2024-06-01T00:00:00Z: a whole minute, so meter buckets are easy to reason about.
T0_S = 1_717_200_000.0


def record(**overrides: Any) -> InvocationRecord:
    fields: dict[str, Any] = dict(
        endpoint="sentiment", variant="AllTraffic", status_code=200, error_code=None, cold_start=False,
        timestamp_s=T0_S, queue_ms=0.2, model_ms=4.2, overhead_ms=0.6, total_ms=4.8,
        bytes_in=100, bytes_out=50, memory_mb=2048,
    )
    fields.update(overrides)
    return InvocationRecord(**fields)
