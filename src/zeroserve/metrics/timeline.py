"""The recent past in memory, for the dashboard's live charts: per endpoint, fixed-width time buckets
(invocations, errors, cold starts, latency) over the last few minutes, and the latest errors.

In-memory and since server start only; the persisted totals are the meter's. O(1) per invocation, and a
bounded size per endpoint (`window_buckets`), so an endpoint with steady traffic never grows it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from zeroserve.metrics.events import InvocationRecord, WorkerEvent


@dataclass
class Bucket:
    start_s: float
    invocations: int = 0
    errors: int = 0
    cold_starts: int = 0
    total_ms_sum: float = 0.0
    total_ms_max: float = 0.0
    model_ms_sum: float = 0.0

    def add(self, record: InvocationRecord) -> None:
        self.invocations += 1
        self.errors += record.status_code >= 400
        self.cold_starts += record.cold_start
        self.total_ms_sum += record.total_ms
        self.total_ms_max = max(self.total_ms_max, record.total_ms)
        self.model_ms_sum += record.model_ms

    def as_dict(self) -> dict[str, Any]:
        n = self.invocations or 1
        return {
            "start_s": self.start_s,
            "invocations": self.invocations,
            "errors": self.errors,
            "cold_starts": self.cold_starts,
            "mean_ms": round(self.total_ms_sum / n, 3),
            "max_ms": round(self.total_ms_max, 3),
            "mean_model_ms": round(self.model_ms_sum / n, 3),
        }


@dataclass(frozen=True)
class RecentError:
    timestamp_s: float
    endpoint: str
    variant: str
    status: int
    error: str | None


class Timeline:
    """An Observer keeping the buckets and errors above; `snapshot()` is what the dashboard polls."""

    def __init__(
        self,
        bucket_s: float = 5.0,
        window_buckets: int = 60,
        max_errors: int = 50,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bucket_s = bucket_s
        self.window_buckets = window_buckets
        self.clock = clock
        self._buckets: dict[str, dict[int, Bucket]] = {}
        self._errors: deque[RecentError] = deque(maxlen=max_errors)

    def invocation(self, record: InvocationRecord) -> None:
        # Charted when it finished: a slow request shows up now, not in a bucket the chart already drew.
        finished_s = record.timestamp_s + record.total_ms / 1000
        index = int(finished_s // self.bucket_s)
        buckets = self._buckets.setdefault(record.endpoint, {})
        bucket = buckets.get(index)
        if bucket is None:
            bucket = buckets[index] = Bucket(index * self.bucket_s)
            # Buckets are created in time order, so the first key is the oldest.
            while len(buckets) > self.window_buckets:
                del buckets[next(iter(buckets))]
        bucket.add(record)
        if record.status_code >= 400:
            self._errors.append(
                RecentError(record.timestamp_s, record.endpoint, record.variant, record.status_code,
                            record.error_code)
            )

    def worker(self, event: WorkerEvent) -> None:
        pass

    def concurrency(self, endpoint: str, variant: str, inflight: int, max_concurrency: int) -> None:
        pass

    def snapshot(self) -> dict[str, Any]:
        """Series per endpoint covering the whole window (empty buckets included, so charts need no gap
        logic), and the recent errors, newest first."""
        last = int(self.clock() // self.bucket_s)
        indexes = range(last - self.window_buckets + 1, last + 1)
        series = {}
        for endpoint, buckets in self._buckets.items():
            if next(reversed(buckets)) < indexes.start:
                continue  # no traffic within the window: nothing to draw
            series[endpoint] = [
                (buckets.get(i) or Bucket(i * self.bucket_s)).as_dict() for i in indexes
            ]
        return {
            "bucket_s": self.bucket_s,
            "series": series,
            "errors": [asdict(e) for e in reversed(self._errors)],
        }

    def forget(self, endpoint: str) -> None:
        self._buckets.pop(endpoint, None)
