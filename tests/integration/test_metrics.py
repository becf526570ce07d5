"""`GET /metrics` after known traffic against real workers: SageMaker-named series with the right values."""

from __future__ import annotations

import concurrent.futures
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from server import ServerProcess, deploy, invoke_json

GOOD_BODY = json.dumps({"inputs": "a fine film"}).encode()
BAD_BODY = b"{not json"


_SERIES_LABELS = ("endpoint", "variant")


def scrape(server: ServerProcess, endpoint: str) -> dict[tuple[str, str], float]:
    """Samples of one endpoint by (sample name, extra labels as 'k=v,...')."""
    response = httpx.get(f"{server.url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            if s.labels.get("endpoint") == endpoint:
                extra = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()) if k not in _SERIES_LABELS)
                samples[(s.name, extra)] = float(s.value)
    return samples


@pytest.fixture(scope="module")
def metered(sm: Any, tiny_tarball: Path) -> str:
    """An endpoint of its own, so the counts below are exactly this module's traffic."""
    assert deploy(sm, "metered", str(tiny_tarball))["EndpointStatus"] == "InService"
    return "metered"


def test_five_answers_and_two_bad_requests_show_as_seven_invocations_and_two_4xx(
    server: ServerProcess, rt: Any, metered: str
) -> None:
    for _ in range(5):
        rt.invoke_endpoint(EndpointName=metered, ContentType="application/json", Body=GOOD_BODY)
    for _ in range(2):
        with pytest.raises(ClientError):
            rt.invoke_endpoint(EndpointName=metered, ContentType="application/json", Body=BAD_BODY)

    m = scrape(server, metered)
    assert m[("zeroserve_invocations_total", "")] == 7
    assert m[("zeroserve_invocation_4xx_errors_total", "")] == 2
    assert m[("zeroserve_invocation_5xx_errors_total", "")] == 0
    assert m[("zeroserve_invocation_model_errors_total", "")] == 2
    assert m[("zeroserve_model_latency_microseconds_count", "")] == 7
    assert m[("zeroserve_overhead_latency_microseconds_count", "")] == 7
    assert m[("zeroserve_queue_wait_microseconds_count", "")] == 7
    # Measured, not estimated: a tiny model answers in well under a second, and takes more than nothing.
    assert 0 < m[("zeroserve_model_latency_microseconds_sum", "")] < 7 * 1_000_000
    assert m[("zeroserve_overhead_latency_microseconds_sum", "")] > 0
    assert m[("zeroserve_payload_bytes_total", "direction=in")] == 5 * len(GOOD_BODY) + 2 * len(BAD_BODY)
    assert m[("zeroserve_billed_gb_seconds_total", "")] > 0
    # The worker that answered was started for this endpoint and reported its memory.
    assert m[("zeroserve_worker_events_total", "kind=started")] >= 1
    assert m[("zeroserve_model_setup_time_microseconds_count", "")] >= 1
    assert 0 < m[("zeroserve_memory_utilization_ratio", "")] < 1
    # Nothing in flight once every answer came back.
    assert m[("zeroserve_concurrent_executions", "")] == 0
    assert m[("zeroserve_serverless_concurrent_executions_utilization_ratio", "")] == 0


def test_requests_over_max_concurrency_count_as_throttles(
    server: ServerProcess, sm: Any, misbehaving_tarball: Path
) -> None:
    described = deploy(sm, "throttled", str(misbehaving_tarball), max_concurrency=1)
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")

    def sleepy(_: int) -> str:
        # Plain HTTP: boto3 would retry a throttled request, and the count below is of requests sent.
        answer = httpx.post(f"{server.url}/endpoints/throttled/invocations", json={"inputs": "sleep:1.5"},
                            timeout=30)
        return "ok" if answer.status_code == 200 else str(answer.json()["__type"])

    # MaxConcurrency 1 with a queue of 1: of four at once, at least two are turned away.
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(sleepy, range(4)))
    throttled = outcomes.count("ThrottlingException")
    assert throttled >= 1, outcomes

    m = scrape(server, "throttled")
    assert m[("zeroserve_invocations_total", "")] == 4
    assert m[("zeroserve_throttles_total", "")] == throttled
    assert m[("zeroserve_invocation_4xx_errors_total", "")] == throttled
    assert m[("zeroserve_model_latency_microseconds_count", "")] == outcomes.count("ok")
    assert m[("zeroserve_model_latency_microseconds_sum", "")] >= outcomes.count("ok") * 1_500_000


def test_unknown_endpoints_add_no_series(server: ServerProcess, rt: Any) -> None:
    with pytest.raises(ClientError):
        invoke_json(rt, "never-deployed", {"inputs": "x"})
    assert scrape(server, "never-deployed") == {}
