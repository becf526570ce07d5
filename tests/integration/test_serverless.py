"""Serverless semantics with real worker processes: scale to zero and back, provisioned concurrency,
MaxConcurrency throttling, crash and memory recovery, the invocation timeout."""

from __future__ import annotations

import concurrent.futures
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from processes import wait_until
from server import ServerProcess, deploy, invoke_json

IDLE_TIMEOUT_S = 1.5


@pytest.fixture(scope="module")
def fast_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "ZEROSERVE_IDLE_TIMEOUT_S": str(IDLE_TIMEOUT_S),
        "ZEROSERVE_INVOCATION_TIMEOUT_S": "3",
        "ZEROSERVE_QUEUE_PER_ENDPOINT": "1",
    }
    with ServerProcess(tmp_path_factory.mktemp("serverless") / "data", env=env) as running:
        yield running


def workers_of(server: ServerProcess, endpoint: str) -> list[dict[str, Any]]:
    status = httpx.get(f"{server.url}/zeroserve/status").json()
    variants = status["endpoints"].get(endpoint, {"variants": []})["variants"]
    return [worker for variant in variants for worker in variant["workers"]]


def raw_invoke(server: ServerProcess, endpoint: str, text: str, timeout_s: float = 30) -> httpx.Response:
    return httpx.post(
        f"{server.url}/endpoints/{endpoint}/invocations", json={"inputs": text}, timeout=timeout_s
    )


def test_idle_endpoint_scales_to_zero_and_the_next_request_starts_a_worker(
    fast_server: ServerProcess, tiny_tarball: Path
) -> None:
    sm, rt = fast_server.sagemaker(), fast_server.runtime()
    assert deploy(sm, "scale-zero", str(tiny_tarball))["EndpointStatus"] == "InService"
    assert wait_until(lambda: workers_of(fast_server, "scale-zero") == [], IDLE_TIMEOUT_S + 5)

    assert invoke_json(rt, "scale-zero", {"inputs": "wake up"})[0]["label"] in {"NEGATIVE", "POSITIVE"}
    assert len(workers_of(fast_server, "scale-zero")) == 1
    assert wait_until(lambda: workers_of(fast_server, "scale-zero") == [], IDLE_TIMEOUT_S + 5)


def test_provisioned_concurrency_keeps_a_worker_warm(fast_server: ServerProcess, tiny_tarball: Path) -> None:
    sm = fast_server.sagemaker()
    assert deploy(sm, "provisioned", str(tiny_tarball), provisioned=1)["EndpointStatus"] == "InService"
    assert wait_until(lambda: len(workers_of(fast_server, "provisioned")) == 1, 30)
    [warm] = workers_of(fast_server, "provisioned")
    # An endpoint without provisioned concurrency, last used after that worker started: once its worker has
    # been stopped for idling, the provisioned one has idled past the timeout as well.
    assert deploy(sm, "unprovisioned", str(tiny_tarball))["EndpointStatus"] == "InService"
    assert raw_invoke(fast_server, "unprovisioned", "used").status_code == 200
    assert wait_until(lambda: workers_of(fast_server, "unprovisioned") == [], IDLE_TIMEOUT_S + 10)
    assert [worker["pid"] for worker in workers_of(fast_server, "provisioned")] == [warm["pid"]]
    answer = raw_invoke(fast_server, "provisioned", "still warm")
    assert answer.status_code == 200 and answer.headers["X-Zeroserve-Cold-Start"] == "0"
    assert [worker["pid"] for worker in workers_of(fast_server, "provisioned")] == [warm["pid"]]


def test_burst_beyond_max_concurrency_is_answered_or_throttled_none_lost(
    fast_server: ServerProcess, misbehaving_tarball: Path
) -> None:
    sm = fast_server.sagemaker()
    assert deploy(sm, "narrow", str(misbehaving_tarball), max_concurrency=2)["EndpointStatus"] == "InService"
    burst = 12
    with concurrent.futures.ThreadPoolExecutor(burst) as pool:
        answers = list(pool.map(lambda _: raw_invoke(fast_server, "narrow", "sleep:0.5"), range(burst)))
    ok = [a for a in answers if a.status_code == 200]
    throttled = [a for a in answers if a.status_code == 400 and a.json()["__type"] == "ThrottlingException"]
    assert len(ok) + len(throttled) == burst
    assert len(ok) >= 2 and len(throttled) >= 1
    assert "MaxConcurrency of 2" in throttled[0].json()["message"]


def test_crashed_worker_is_replaced_and_the_endpoint_keeps_serving(
    fast_server: ServerProcess, misbehaving_tarball: Path
) -> None:
    sm = fast_server.sagemaker()
    assert deploy(sm, "crashy", str(misbehaving_tarball))["EndpointStatus"] == "InService"
    before = raw_invoke(fast_server, "crashy", "hello").json()[0]["pid"]
    crashed = raw_invoke(fast_server, "crashy", "crash")
    assert crashed.status_code == 500
    assert crashed.json()["__type"] == "InternalFailure"
    after = raw_invoke(fast_server, "crashy", "hello")
    assert after.status_code == 200
    assert after.json()[0]["pid"] != before


def test_worker_over_its_memory_size_is_stopped_and_replaced(
    fast_server: ServerProcess, misbehaving_tarball: Path
) -> None:
    sm = fast_server.sagemaker()
    assert deploy(sm, "greedy", str(misbehaving_tarball), memory_mb=1024)["EndpointStatus"] == "InService"
    before = raw_invoke(fast_server, "greedy", "hello").json()[0]["pid"]
    over = raw_invoke(fast_server, "greedy", "touch:1100")  # resident pages, under the address-space cap
    assert over.status_code == 500, over.text
    assert over.json()["__type"] == "InternalFailure"
    after = raw_invoke(fast_server, "greedy", "hello")
    assert after.status_code == 200
    assert after.json()[0]["pid"] != before


def test_invocation_past_the_timeout_is_a_model_error_and_the_worker_is_replaced(
    fast_server: ServerProcess, misbehaving_tarball: Path
) -> None:
    sm, rt = fast_server.sagemaker(), fast_server.runtime()
    assert deploy(sm, "slow", str(misbehaving_tarball))["EndpointStatus"] == "InService"
    with pytest.raises(ClientError) as caught:
        rt.invoke_endpoint(
            EndpointName="slow", ContentType="application/json", Body=json.dumps({"inputs": "sleep:10"})
        )
    assert caught.value.response["Error"]["Code"] == "ModelError"
    assert "timed out" in caught.value.response["Error"]["Message"]
    assert raw_invoke(fast_server, "slow", "hello").status_code == 200


def test_busy_endpoint_scales_out_to_a_second_worker(
    fast_server: ServerProcess, misbehaving_tarball: Path
) -> None:
    sm = fast_server.sagemaker()
    env = {"HF_TASK": "text-classification", "ZEROSERVE_MAX_WORKERS": "2", "ZEROSERVE_MAX_BATCH_SIZE": "1"}
    assert deploy(sm, "scale-out", str(misbehaving_tarball), env=env)["EndpointStatus"] == "InService"
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: raw_invoke(fast_server, "scale-out", "sleep:0.5"), range(4)))
        assert all(answer.status_code == 200 for answer in answers), [a.text for a in answers]
    pids = {answer.json()[0]["pid"] for answer in answers}
    assert len(pids) == 2, "the second worker should have taken some of the load"
