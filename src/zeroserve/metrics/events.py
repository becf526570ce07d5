"""What the data plane reports, at one place: one record per invocation and one event per worker change.

Metrics, billing and the request log all consume these; the router fills them once and knows nothing about
Prometheus, prices or files.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


@dataclass(frozen=True)
class InvocationRecord:
    endpoint: str
    variant: str
    status_code: int  # HTTP status the client got
    error_code: str | None  # SageMaker error name, None on success
    cold_start: bool  # the request waited for a worker to be forked and loaded
    timestamp_s: float  # wall clock when the request arrived
    queue_ms: float  # waiting for admission and for a worker (includes a cold start)
    model_ms: float  # in-worker model time, measured in the worker
    overhead_ms: float  # server latency minus model latency (queue included)
    total_ms: float  # arrival to answer, as seen by the server
    bytes_in: int
    bytes_out: int
    memory_mb: int  # the variant's MemorySizeInMB: what a serverless bill is based on
    rss_mb: float = 0.0  # the worker's resident memory after answering; 0 when unknown
    batch_size: int = 1  # requests that shared this request's forward pass (model_ms is the whole pass)
    # Generations only (0 otherwise): arrival to the first token the worker sent (streamed), and tokens made.
    time_to_first_token_ms: float = 0.0
    tokens_generated: int = 0

    @property
    def reached_model(self) -> bool:
        """A worker ran the request (answer or model error): it has a model latency and is billed. The worker
        measures whole microseconds of real work, so a request it handled never reports 0."""
        return self.model_ms > 0


class WorkerEventKind(StrEnum):
    """What happened to a worker (or to a template, or to the zygote that forks them). The values are the
    wire format: the `kind` label of zeroserve_worker_events_total and the endpoint log's
    "zeroserve worker <kind>" line; a StrEnum, so a member and its plain string are the same key."""

    STARTED = "started"  # loaded and ready (setup_ms, rss_mb, memory_mb)
    STOPPED = "stopped"  # let go: idle, evicted for memory, or the server stopping
    CRASHED = "crashed"  # exited on its own, or killed mid-request (timed out, died)
    KILLED_MEMORY = "killed_memory"  # killed for using more than the variant's MemorySizeInMB
    FAILED = "failed"  # never became ready (reason)
    TEMPLATE_READY = "template_ready"  # a template (the process that forks cold starts) loaded (memory_mb)
    TEMPLATE_DROPPED = "template_dropped"  # a template let go (reason)
    ZYGOTE_RESTARTED = "zygote_restarted"  # the zygote exited and restarts (endpoint and variant empty)
    ZYGOTE_FAILING = "zygote_failing"  # the same, restarting too often: it backs off


_KINDS = frozenset(WorkerEventKind)
# Kinds after which the worker is gone (FAILED never started, so it never counted).
WORKER_GONE = frozenset({WorkerEventKind.STOPPED, WorkerEventKind.CRASHED, WorkerEventKind.KILLED_MEMORY})


@dataclass(frozen=True)
class WorkerEvent:
    endpoint: str
    variant: str
    kind: WorkerEventKind
    setup_ms: float = 0.0
    rss_mb: float = 0.0
    reason: str = ""
    memory_mb: int = 0  # the variant's MemorySizeInMB; 0 when unknown

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown worker event kind {self.kind!r}; see WorkerEventKind")


class Observer(Protocol):
    def invocation(self, record: InvocationRecord) -> None: ...

    def worker(self, event: WorkerEvent) -> None: ...

    def concurrency(self, endpoint: str, variant: str, inflight: int, max_concurrency: int) -> None: ...


class NullObserver:
    def invocation(self, record: InvocationRecord) -> None:
        pass

    def worker(self, event: WorkerEvent) -> None:
        pass

    def concurrency(self, endpoint: str, variant: str, inflight: int, max_concurrency: int) -> None:
        pass


class FanOut:
    """Sends each report to several observers (metrics, meter, request log)."""

    def __init__(self, *observers: Observer) -> None:
        self.observers = list(observers)

    def invocation(self, record: InvocationRecord) -> None:
        for observer in self.observers:
            observer.invocation(record)

    def worker(self, event: WorkerEvent) -> None:
        for observer in self.observers:
            observer.worker(event)

    def concurrency(self, endpoint: str, variant: str, inflight: int, max_concurrency: int) -> None:
        for observer in self.observers:
            observer.concurrency(endpoint, variant, inflight, max_concurrency)
