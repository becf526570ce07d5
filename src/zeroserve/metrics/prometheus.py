"""Prometheus metrics, per endpoint and variant, fed by the data plane's reports.

Naming scheme: every metric is `zeroserve_` + the SageMaker CloudWatch metric name in snake case where
SageMaker has one (so dashboards can be ported by name), with Prometheus' suffixes: `_total` for counters and
the unit for the rest. Latencies are in microseconds, as SageMaker reports them.
Labels: `endpoint`, `variant`.

SageMaker (CloudWatch) name -> Prometheus name (type):

- Invocations -> `zeroserve_invocations_total` (counter)
- Invocation4XXErrors -> `zeroserve_invocation_4xx_errors_total` (counter)
- Invocation5XXErrors -> `zeroserve_invocation_5xx_errors_total` (counter)
- InvocationModelErrors -> `zeroserve_invocation_model_errors_total` (counter)
- ModelLatency -> `zeroserve_model_latency_microseconds` (histogram)
- OverheadLatency -> `zeroserve_overhead_latency_microseconds` (histogram)
- ModelSetupTime -> `zeroserve_model_setup_time_microseconds` (histogram)
- ConcurrentExecutions -> `zeroserve_concurrent_executions` (gauge)
- ServerlessConcurrentExecutionsUtilization ->
  `zeroserve_serverless_concurrent_executions_utilization_ratio` (gauge)
- MemoryUtilization -> `zeroserve_memory_utilization_ratio` (gauge)
- (none) cold starts -> `zeroserve_cold_starts_total` (counter)
- (none) throttled requests -> `zeroserve_throttles_total` (counter)
- (none) wait for admission and a worker -> `zeroserve_queue_wait_microseconds` (histogram)
- (none) billed duration x memory -> `zeroserve_billed_gb_seconds_total` (counter)
- (none) payload bytes -> `zeroserve_payload_bytes_total{direction="in" or "out"}` (counter)
- (none) generations: first token -> `zeroserve_time_to_first_token_microseconds` (histogram, streams),
  `zeroserve_tokens_generated_total` (counter), `zeroserve_tokens_per_second` (gauge, the latest generation's
  tokens / its model latency)
- (none) worker starts, stops, crashes -> `zeroserve_worker_events_total{kind}` (counter)
- (none) live workers -> `zeroserve_workers` (gauge)
- (none) live templates (processes that fork cold starts) -> `zeroserve_templates` (gauge)
- (none) memory the templates hold in the budget -> `zeroserve_template_memory_megabytes` (gauge)
- (none) per node, label `node` only (Ray node id; "local" on one machine): `zeroserve_node_workers`,
  `zeroserve_node_memory_reserved_mb`, `zeroserve_node_memory_budget_mb` (gauges, read from the pool)

Semantics: every invocation that was routed to a variant counts in Invocations (an unknown endpoint has
no variant and is not counted, which also keeps label cardinality bounded by deployed endpoints).
ModelLatency is observed for invocations a worker ran (`InvocationRecord.reached_model`); OverheadLatency
(server latency minus in-worker model latency, queue included) and queue wait for all of them.
Utilizations are ratios 0..1 where SageMaker shows percent; MemoryUtilization is the latest worker
RSS / MemorySizeInMB reported for the variant.

How: the observer methods run on the event loop for every request, so they only add to plain numbers
(no locks, no label lookups: about a microsecond); a custom collector turns those numbers into Prometheus
families when `/metrics` is scraped. Each server owns a private CollectorRegistry, so several servers (or
tests) in one process never mix numbers.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from zeroserve.error_codes import ErrorCode
from zeroserve.metrics import billing
from zeroserve.metrics.events import WORKER_GONE, InvocationRecord, WorkerEvent, WorkerEventKind

if TYPE_CHECKING:
    from zeroserve.scheduler.nodes import NodeSummary

LABELS = ("endpoint", "variant")
# 50 us .. 60 s: warm overhead lives at the bottom, a cold start or a timeout at the top.
LATENCY_BUCKETS_US = (
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000, 30_000_000, 60_000_000,
)
_BUCKET_LABELS = [*(repr(float(b)) for b in LATENCY_BUCKETS_US), "+Inf"]  # le="500.0", as client_python
CONTENT_TYPE = CONTENT_TYPE_LATEST


class _Histogram:
    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS_US) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(LATENCY_BUCKETS_US, value)] += 1  # first bucket with value <= le
        self.sum += value

    def cumulative(self) -> list[tuple[str, float]]:
        running, out = 0, list[tuple[str, float]]()
        for label, count in zip(_BUCKET_LABELS, list(self.counts), strict=True):
            running += count
            out.append((label, running))
        return out


class _Series:
    """The numbers of one (endpoint, variant): plain attributes the observer adds to."""

    __slots__ = (
        "billed_gb_seconds", "cold_starts", "concurrency_utilization", "concurrent", "errors_4xx",
        "errors_5xx", "invocations", "memory_utilization", "model_errors", "model_latency",
        "overhead_latency", "payload_bytes", "queue_wait", "setup_time", "template_memory_mb", "templates",
        "throttles", "time_to_first_token", "tokens_generated", "tokens_per_second", "worker_events",
        "workers",
    )

    def __init__(self) -> None:
        self.invocations = self.errors_4xx = self.errors_5xx = self.model_errors = 0
        self.throttles = self.cold_starts = self.concurrent = self.workers = 0
        self.templates = self.template_memory_mb = 0
        self.billed_gb_seconds = self.concurrency_utilization = self.memory_utilization = 0.0
        self.model_latency, self.overhead_latency = _Histogram(), _Histogram()
        self.queue_wait, self.setup_time = _Histogram(), _Histogram()
        self.payload_bytes = {"in": 0, "out": 0}
        self.worker_events: dict[str, int] = {}
        self.time_to_first_token = _Histogram()
        self.tokens_generated = 0
        self.tokens_per_second = 0.0


@dataclass(frozen=True)
class _Spec:
    """One exported metric: its name (counters without `_total`), type, help, and the _Series attribute it
    reads; `extra_label` names the label of an attribute that is a dict of values by that label."""

    name: str
    kind: Literal["counter", "gauge", "histogram"]
    doc: str
    field: str
    extra_label: str | None = None

    @property
    def labels(self) -> list[str]:
        return [*LABELS, self.extra_label] if self.extra_label else list(LABELS)

    def samples(self, key: tuple[str, str], numbers: _Series) -> Iterator[tuple[list[str], float]]:
        """(label values, value) of a counter or gauge."""
        value = getattr(numbers, self.field)
        if self.extra_label:
            for label_value, count in sorted(dict(value).items()):
                yield [*key, label_value], count
        else:
            yield list(key), value


SPECS = (
    _Spec("zeroserve_invocations", "counter", "Invocations (SageMaker Invocations).", "invocations"),
    _Spec("zeroserve_invocation_4xx_errors", "counter", "Invocations answered 4xx (Invocation4XXErrors).",
          "errors_4xx"),
    _Spec("zeroserve_invocation_5xx_errors", "counter", "Invocations answered 5xx (Invocation5XXErrors).",
          "errors_5xx"),
    _Spec("zeroserve_invocation_model_errors", "counter",
          "Invocations answered ModelError (InvocationModelErrors).", "model_errors"),
    _Spec("zeroserve_throttles", "counter", "Invocations rejected with ThrottlingException.", "throttles"),
    _Spec("zeroserve_cold_starts", "counter", "Invocations that waited for a worker to start.",
          "cold_starts"),
    _Spec("zeroserve_model_latency_microseconds", "histogram",
          "In-worker model latency (ModelLatency), microseconds.", "model_latency"),
    _Spec("zeroserve_overhead_latency_microseconds", "histogram",
          "Server latency minus model latency, queue included (OverheadLatency), microseconds.",
          "overhead_latency"),
    _Spec("zeroserve_queue_wait_microseconds", "histogram",
          "Wait for admission and a worker (cold start included), microseconds.", "queue_wait"),
    _Spec("zeroserve_model_setup_time_microseconds", "histogram",
          "Worker start: fork, load, warm-up (ModelSetupTime), microseconds.", "setup_time"),
    _Spec("zeroserve_billed_gb_seconds", "counter",
          "Billed duration (model latency rounded up to 1 ms) x MemorySizeInMB / 1024.", "billed_gb_seconds"),
    _Spec("zeroserve_payload_bytes", "counter", "Request and response payload bytes.", "payload_bytes",
          extra_label="direction"),
    _Spec("zeroserve_concurrent_executions", "gauge", "Invocations in flight (ConcurrentExecutions).",
          "concurrent"),
    _Spec("zeroserve_serverless_concurrent_executions_utilization_ratio", "gauge",
          "In-flight invocations / MaxConcurrency (ServerlessConcurrentExecutionsUtilization).",
          "concurrency_utilization"),
    _Spec("zeroserve_memory_utilization_ratio", "gauge",
          "Latest worker RSS / MemorySizeInMB (MemoryUtilization).", "memory_utilization"),
    _Spec("zeroserve_time_to_first_token_microseconds", "histogram",
          "Arrival to the first generated token of a stream, microseconds.", "time_to_first_token"),
    _Spec("zeroserve_tokens_generated", "counter", "Tokens generated.", "tokens_generated"),
    _Spec("zeroserve_tokens_per_second", "gauge", "The latest generation's tokens / its model latency.",
          "tokens_per_second"),
    _Spec("zeroserve_worker_events", "counter", "Worker starts, stops, crashes and kills.", "worker_events",
          extra_label="kind"),
    _Spec("zeroserve_workers", "gauge", "Workers running.", "workers"),
    _Spec("zeroserve_templates", "gauge", "Templates kept (processes that fork cold starts).", "templates"),
    _Spec("zeroserve_template_memory_megabytes", "gauge", "Memory the templates hold in the budget, MB.",
          "template_memory_mb"),
)


class _Collector:
    """Renders every series' numbers as Prometheus families, at scrape time."""

    def __init__(self, series: dict[tuple[str, str], _Series]) -> None:
        self.series = series

    def collect(self) -> Iterator[Metric]:
        # A copy: a scrape may run in a thread while the event loop adds series.
        series = list(self.series.items())
        for spec in SPECS:
            if spec.kind == "histogram":
                histograms = HistogramMetricFamily(spec.name, spec.doc, labels=spec.labels)
                for key, numbers in series:
                    histogram: _Histogram = getattr(numbers, spec.field)
                    histograms.add_metric(list(key), buckets=histogram.cumulative(), sum_value=histogram.sum)
                yield histograms
            else:
                kind = CounterMetricFamily if spec.kind == "counter" else GaugeMetricFamily
                family = kind(spec.name, spec.doc, labels=spec.labels)
                for key, numbers in series:
                    for label_values, value in spec.samples(key, numbers):
                        family.add_metric(label_values, value)
                yield family


class NodeSource(Protocol):
    def node_summaries(self) -> list[NodeSummary]: ...


_NODE_SPECS = (
    ("zeroserve_node_workers", "Workers running on the node.", "workers"),
    ("zeroserve_node_memory_reserved_mb", "MemorySizeInMB reserved by workers on the node.", "reserved_mb"),
    ("zeroserve_node_memory_budget_mb", "The node's memory budget for workers, MB.", "memory_budget_mb"),
)


class _NodeCollector:
    def __init__(self, nodes: NodeSource) -> None:
        self.nodes = nodes

    def collect(self) -> Iterator[Metric]:
        summaries = self.nodes.node_summaries()
        for name, doc, field_name in _NODE_SPECS:
            family = GaugeMetricFamily(name, doc, labels=["node"])
            for summary in summaries:
                family.add_metric([summary.node_id], getattr(summary, field_name))
            yield family


class PrometheusMetrics:
    """An Observer that keeps the metrics above; `exposition()` renders them for `GET /metrics`."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, str], _Series] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self._series))  # type: ignore[arg-type]

    def _for(self, endpoint: str, variant: str) -> _Series:
        key = (endpoint, variant)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series()
        return series

    # --- Observer ------------------------------------------------------------------------------

    def invocation(self, record: InvocationRecord) -> None:
        s = self._for(record.endpoint, record.variant)
        s.invocations += 1
        if 400 <= record.status_code < 500:
            s.errors_4xx += 1
        elif record.status_code >= 500:
            s.errors_5xx += 1
        if record.error_code == ErrorCode.MODEL_ERROR:
            s.model_errors += 1
        elif record.error_code == ErrorCode.THROTTLING:
            s.throttles += 1
        if record.cold_start:
            s.cold_starts += 1
        if record.reached_model:
            s.model_latency.observe(record.model_ms * 1000)
            s.billed_gb_seconds += billing.charge(record).gb_seconds
        s.overhead_latency.observe(record.overhead_ms * 1000)
        s.queue_wait.observe(record.queue_ms * 1000)
        s.payload_bytes["in"] += record.bytes_in
        s.payload_bytes["out"] += record.bytes_out
        if record.rss_mb > 0 and record.memory_mb > 0:
            s.memory_utilization = record.rss_mb / record.memory_mb
        if record.time_to_first_token_ms > 0:
            s.time_to_first_token.observe(record.time_to_first_token_ms * 1000)
        if record.tokens_generated:
            s.tokens_generated += record.tokens_generated
            if record.model_ms > 0:
                s.tokens_per_second = record.tokens_generated / (record.model_ms / 1000)

    def worker(self, event: WorkerEvent) -> None:
        s = self._for(event.endpoint, event.variant)
        s.worker_events[event.kind] = s.worker_events.get(event.kind, 0) + 1
        if event.kind == WorkerEventKind.STARTED:
            s.workers += 1
            s.setup_time.observe(event.setup_ms * 1000)
            if event.rss_mb > 0 and event.memory_mb > 0:
                s.memory_utilization = event.rss_mb / event.memory_mb
        elif event.kind in WORKER_GONE:
            s.workers -= 1
        elif event.kind == WorkerEventKind.TEMPLATE_READY:
            s.templates += 1
            s.template_memory_mb += event.memory_mb
        elif event.kind == WorkerEventKind.TEMPLATE_DROPPED:
            s.templates -= 1
            s.template_memory_mb -= event.memory_mb

    def concurrency(self, endpoint: str, variant: str, inflight: int, max_concurrency: int) -> None:
        s = self._for(endpoint, variant)
        s.concurrent = inflight
        s.concurrency_utilization = inflight / max_concurrency if max_concurrency > 0 else 0.0

    def watch_nodes(self, nodes: NodeSource) -> None:
        """Per-node series (`node` label: the Ray node id, or "local" on one machine), read at scrape."""
        self.registry.register(_NodeCollector(nodes))  # type: ignore[arg-type]

    # --- exposition ----------------------------------------------------------------------------

    def exposition(self) -> bytes:
        return bytes(generate_latest(self.registry))
