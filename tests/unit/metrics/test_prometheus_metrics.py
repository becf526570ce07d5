"""Prometheus metrics after known traffic: names, labels and values, read back from the exposition text."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from metric_records import record
from zeroserve.api.error_responses import error_code
from zeroserve.errors import ModelError, Throttled
from zeroserve.metrics.events import WorkerEvent
from zeroserve.metrics.prometheus import PrometheusMetrics

LABELS = {"endpoint": "sentiment", "variant": "AllTraffic"}


def sample(metrics: PrometheusMetrics, name: str, **labels: str) -> float:
    """The value of one sample, by its full name (`..._total`, `..._count`) and labels."""
    wanted = {**LABELS, **labels}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for s in family.samples:
            if s.name == name and s.labels == wanted:
                return float(s.value)
    raise AssertionError(f"no sample {name}{wanted}")


@pytest.fixture
def metrics() -> PrometheusMetrics:
    return PrometheusMetrics()


def test_five_answers_and_two_bad_requests_are_seven_invocations_two_4xx(metrics: PrometheusMetrics) -> None:
    for _ in range(5):
        metrics.invocation(record(model_ms=2.0, overhead_ms=0.5, queue_ms=0.1))
    for _ in range(2):
        metrics.invocation(record(status_code=424, error_code="ModelError", model_ms=0.3, overhead_ms=0.4))

    assert sample(metrics, "zeroserve_invocations_total") == 7
    assert sample(metrics, "zeroserve_invocation_4xx_errors_total") == 2
    assert sample(metrics, "zeroserve_invocation_5xx_errors_total") == 0
    assert sample(metrics, "zeroserve_invocation_model_errors_total") == 2
    assert sample(metrics, "zeroserve_model_latency_microseconds_count") == 7
    assert sample(metrics, "zeroserve_model_latency_microseconds_sum") == pytest.approx(5 * 2000 + 2 * 300)
    assert sample(metrics, "zeroserve_overhead_latency_microseconds_count") == 7
    assert sample(metrics, "zeroserve_overhead_latency_microseconds_sum") == pytest.approx(5 * 500 + 2 * 400)


def test_latency_buckets_are_in_microseconds(metrics: PrometheusMetrics) -> None:
    metrics.invocation(record(model_ms=0.8))  # 800 us
    assert sample(metrics, "zeroserve_model_latency_microseconds_bucket", le="500.0") == 0
    assert sample(metrics, "zeroserve_model_latency_microseconds_bucket", le="1000.0") == 1


def test_errors_count_by_the_names_the_runtime_answers_with(metrics: PrometheusMetrics) -> None:
    # The codes come from the error table, as api/runtime.py records them; the counters compare with the same
    # ErrorCode, so a renamed code cannot silently stop the counting.
    metrics.invocation(record(status_code=400, error_code=error_code(Throttled("full"), "runtime")))
    metrics.invocation(record(status_code=424, error_code=error_code(ModelError("raised"), "runtime")))

    assert sample(metrics, "zeroserve_throttles_total") == 1
    assert sample(metrics, "zeroserve_invocation_model_errors_total") == 1


def test_throttles_and_5xx_have_no_model_latency_but_count_as_invocations(metrics: PrometheusMetrics) -> None:
    metrics.invocation(record(status_code=400, error_code="ThrottlingException", model_ms=0.0))
    metrics.invocation(record(status_code=500, error_code="InternalFailure", model_ms=0.0))

    assert sample(metrics, "zeroserve_invocations_total") == 2
    assert sample(metrics, "zeroserve_throttles_total") == 1
    assert sample(metrics, "zeroserve_invocation_4xx_errors_total") == 1
    assert sample(metrics, "zeroserve_invocation_5xx_errors_total") == 1
    assert sample(metrics, "zeroserve_model_latency_microseconds_count") == 0
    assert sample(metrics, "zeroserve_overhead_latency_microseconds_count") == 2


def test_cold_starts_queue_wait_billing_and_bytes(metrics: PrometheusMetrics) -> None:
    metrics.invocation(record(cold_start=True, queue_ms=150.0, model_ms=9.5, memory_mb=1024,
                              bytes_in=300, bytes_out=40))
    metrics.invocation(record(queue_ms=0.05, model_ms=1.0, memory_mb=1024, bytes_in=200, bytes_out=40))

    assert sample(metrics, "zeroserve_cold_starts_total") == 1
    assert sample(metrics, "zeroserve_queue_wait_microseconds_sum") == pytest.approx(150_050)
    assert sample(metrics, "zeroserve_billed_gb_seconds_total") == pytest.approx((10 + 1) / 1000)
    assert sample(metrics, "zeroserve_payload_bytes_total", direction="in") == 500
    assert sample(metrics, "zeroserve_payload_bytes_total", direction="out") == 80


def test_concurrency_gauges_follow_the_router(metrics: PrometheusMetrics) -> None:
    metrics.concurrency("sentiment", "AllTraffic", 3, 4)
    assert sample(metrics, "zeroserve_concurrent_executions") == 3
    assert sample(metrics, "zeroserve_serverless_concurrent_executions_utilization_ratio") == 0.75
    metrics.concurrency("sentiment", "AllTraffic", 0, 4)
    assert sample(metrics, "zeroserve_concurrent_executions") == 0


def test_worker_events_give_setup_time_workers_and_memory_utilization(metrics: PrometheusMetrics) -> None:
    for setup_ms, rss_mb in ((48.0, 512), (52.0, 256)):
        metrics.worker(WorkerEvent("sentiment", "AllTraffic", "started", setup_ms, rss_mb, memory_mb=2048))
    metrics.worker(WorkerEvent("sentiment", "AllTraffic", "crashed"))
    metrics.worker(WorkerEvent("sentiment", "AllTraffic", "failed", reason="no model"))

    assert sample(metrics, "zeroserve_model_setup_time_microseconds_count") == 2
    assert sample(metrics, "zeroserve_model_setup_time_microseconds_sum") == pytest.approx(100_000)
    assert sample(metrics, "zeroserve_workers") == 1
    assert sample(metrics, "zeroserve_worker_events_total", kind="started") == 2
    assert sample(metrics, "zeroserve_worker_events_total", kind="failed") == 1
    assert sample(metrics, "zeroserve_memory_utilization_ratio") == 0.125

    metrics.invocation(record(rss_mb=1024, memory_mb=2048))
    assert sample(metrics, "zeroserve_memory_utilization_ratio") == 0.5


def test_each_server_has_its_own_registry() -> None:
    first, second = PrometheusMetrics(), PrometheusMetrics()
    first.invocation(record())
    assert sample(first, "zeroserve_invocations_total") == 1
    assert "zeroserve_invocations_total{" not in second.exposition().decode()


def test_templates_count_and_memory_follow_ready_and_dropped_events(metrics: PrometheusMetrics) -> None:
    metrics.worker(WorkerEvent("sentiment", "AllTraffic", "template_ready", 80.0, 200.0, memory_mb=130))
    assert sample(metrics, "zeroserve_templates") == 1
    assert sample(metrics, "zeroserve_template_memory_megabytes") == 130
    assert sample(metrics, "zeroserve_workers") == 0, "a template is not a worker"
    metrics.worker(WorkerEvent("sentiment", "AllTraffic", "template_dropped", memory_mb=130, reason="idle"))
    assert sample(metrics, "zeroserve_templates") == 0
    assert sample(metrics, "zeroserve_template_memory_megabytes") == 0
    assert sample(metrics, "zeroserve_model_setup_time_microseconds_count") == 0
