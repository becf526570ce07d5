"""An Observer that writes each endpoint's request log lines, worker events and the workers' own output
(stdout and stderr, workers/output.py) into its CloudWatch log group `/aws/sagemaker/Endpoints/<endpoint>`,
one stream per variant and server instance (`AllTraffic/i-...`, as SageMaker names a stream after the
variant and the instance that wrote it). A worker's lines are prefixed with its id (`[w3] Traceback ...`),
as SageMaker's model server prefixes its workers' lines, so two workers' tracebacks can be told apart.

The event loop only queues the record; a background thread formats the lines and hands them to the sink, so
the hot path pays a queue put per request.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from zeroserve.logs.sink import LogEvent, LogSink, endpoint_group
from zeroserve.metrics.background import BatchWriter
from zeroserve.metrics.events import InvocationRecord, NullObserver, WorkerEvent
from zeroserve.metrics.requestlog import entry


def instance_id() -> str:
    """An EC2-shaped id naming this server process's streams: a restart writes new streams, as a replaced
    instance does on SageMaker."""
    return "i-" + secrets.token_hex(9)[:17]


@dataclass(frozen=True)
class _Output:
    endpoint: str
    variant: str
    worker_id: str
    lines: Sequence[LogEvent]


def _worker_line(event: WorkerEvent) -> str:
    parts = [f"zeroserve worker {event.kind}"]
    if event.setup_ms:
        parts.append(f"setup_ms={event.setup_ms:.0f}")
    if event.rss_mb:
        parts.append(f"rss_mb={event.rss_mb:.0f}")
    if event.memory_mb:
        parts.append(f"memory_mb={event.memory_mb}")
    if event.reason:
        parts.append(f"reason={event.reason}")
    return " ".join(parts)


class EndpointLogs(NullObserver):  # concurrency reports are not logged
    def __init__(
        self,
        sink: LogSink,
        instance: str | None = None,
        *,
        clock: Callable[[], float] = time.time,
        batch_window_s: float = 0.05,
    ) -> None:
        self.sink = sink
        self.instance = instance or instance_id()
        self.clock = clock
        self._writer: BatchWriter[InvocationRecord | tuple[int, WorkerEvent] | _Output] = BatchWriter(
            "endpoint-logs", self._write, batch_window_s
        )

    def stream_name(self, variant: str) -> str:
        return f"{variant}/{self.instance}"

    # --- Observer (the event loop) -------------------------------------------------------------------

    def invocation(self, record: InvocationRecord) -> None:
        self._writer.put(record)

    def worker(self, event: WorkerEvent) -> None:
        self._writer.put((int(self.clock() * 1000), event))

    # --- OutputSink (workers/output.py, the event loop) -----------------------------------------------

    def worker_output(self, endpoint: str, variant: str, worker_id: str, lines: Sequence[LogEvent]) -> None:
        # The request lines' queue: a print() during a request reaches the store before the request's line.
        self._writer.put(_Output(endpoint, variant, worker_id, lines))

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()

    # --- the writer thread ---------------------------------------------------------------------------

    def _write(self, items: list[InvocationRecord | tuple[int, WorkerEvent] | _Output]) -> None:
        batches: dict[tuple[str, str], list[LogEvent]] = defaultdict(list)
        for item in items:
            if isinstance(item, InvocationRecord):
                # Stamped when the answer left (arrival + latency): lines then come in timestamp order.
                done_ms = int(item.timestamp_s * 1000 + item.total_ms)
                batches[(item.endpoint, item.variant)].append((done_ms, json.dumps(entry(item))))
            elif isinstance(item, _Output):
                prefix = f"[{item.worker_id}] "
                batches[(item.endpoint, item.variant)].extend((ms, prefix + line) for ms, line in item.lines)
            else:
                stamp_ms, event = item
                batches[(event.endpoint, event.variant)].append((stamp_ms, _worker_line(event)))
        for (endpoint, variant), events in batches.items():
            self.sink.put(endpoint_group(endpoint), self.stream_name(variant), events)
