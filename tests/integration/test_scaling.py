"""Scaling across endpoints and within one: batching under load, the machine's memory budget, the wait
budget for a slow-loading model, and a thousand idle endpoints."""

from __future__ import annotations

import concurrent.futures
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_process_lifecycle import descendants
from test_serverless import wait_until, workers_of

from server import ServerProcess, deploy, invoke_json, pack_model


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.fixture(scope="module")
def fp32_endpoint(sm: Any, tiny_tarball: Path) -> str:
    """fp32 weights (int8's dynamic activation scales depend on the batch, fp32 results must not), and a
    batch window, so that concurrent requests reliably meet in one batch even on a busy machine."""
    env = {
        "HF_TASK": "text-classification",
        "ZEROSERVE_QUANTIZE": "false",
        "ZEROSERVE_MAX_BATCH_WAIT_MS": "20",
    }
    assert deploy(sm, "tiny-fp32", str(tiny_tarball), env=env)["EndpointStatus"] == "InService"
    return "tiny-fp32"


def test_concurrent_requests_are_batched_and_answer_like_single_ones(
    server: ServerProcess, fp32_endpoint: str, rt: Any
) -> None:
    texts = [f"review number {i} " + "good " * (i % 7) for i in range(24)]
    alone = [invoke_json(rt, fp32_endpoint, {"inputs": text}) for text in texts]

    def call(text: str) -> httpx.Response:
        url = f"{server.url}/endpoints/{fp32_endpoint}/invocations"
        return httpx.post(url, json={"inputs": text}, timeout=30)

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        together = list(pool.map(call, texts))
    assert all(answer.status_code == 200 for answer in together)
    assert max(int(answer.headers["X-Zeroserve-Batch-Size"]) for answer in together) > 1
    for single, batched in zip(alone, together, strict=True):
        assert batched.json()[0]["label"] == single[0]["label"]
        assert batched.json()[0]["score"] == pytest.approx(single[0]["score"], abs=1e-5)


HOLD_MS = 1000


def lone_request(server: ServerProcess, endpoint: str) -> tuple[str, float]:
    """A lone request to a warm worker: its batch size, and the ms it spent neither waiting for a worker nor
    in the model (its log line's overhead less its queue wait), where a batch window's hold would show."""
    url = f"{server.url}/endpoints/{endpoint}/invocations"
    httpx.post(url, json={"inputs": "wake up"}, timeout=30).raise_for_status()  # a cold start is not a hold
    answer = httpx.post(url, json={"inputs": "alone"}, timeout=30)
    answer.raise_for_status()
    [line] = httpx.get(f"{server.url}/zeroserve/logs/{endpoint}", params={"tail": 1}).json()["lines"]
    return answer.headers["X-Zeroserve-Batch-Size"], line["overhead_ms"] - line["queue_ms"]


def test_a_lone_request_is_not_held_for_a_batch(
    server: ServerProcess, sm: Any, tiny_tarball: Path, tiny_endpoint: str
) -> None:
    # The same model with a batch window: there a lone request is held for the whole window, hoping for
    # company. Its batch size says 1 as well; only the time it spent outside the model tells them apart.
    env = {"HF_TASK": "text-classification", "ZEROSERVE_MAX_BATCH_WAIT_MS": str(HOLD_MS)}
    assert deploy(sm, "tiny-held", str(tiny_tarball), env=env)["EndpointStatus"] == "InService"
    held_size, held_ms = lone_request(server, "tiny-held")
    lone_size, lone_ms = lone_request(server, tiny_endpoint)
    assert held_size == lone_size == "1"
    assert held_ms >= HOLD_MS, "the hold shows in the time outside the model"
    assert lone_ms < HOLD_MS / 2, f"a lone request spent {lone_ms:.0f} ms outside the model"
    sm.delete_endpoint(EndpointName="tiny-held")


@pytest.fixture(scope="module")
def tight_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Room for one 2 GB worker at a time, and requests wait at most 0.5 s for a worker."""
    env = {
        "ZEROSERVE_MEMORY_BUDGET_MB": "2048",
        "ZEROSERVE_MODEL_WAIT_BUDGET_S": "0.5",
        "ZEROSERVE_IDLE_TIMEOUT_S": "3",
    }
    with ServerProcess(tmp_path_factory.mktemp("tight") / "data", env=env) as running:
        yield running


def test_memory_budget_evicts_the_least_recently_used_idle_worker(
    tight_server: ServerProcess, tiny_tarball: Path
) -> None:
    sm, rt = tight_server.sagemaker(), tight_server.runtime()
    for name in ("budget-a", "budget-b"):
        assert deploy(sm, name, str(tiny_tarball), memory_mb=2048)["EndpointStatus"] == "InService"
    assert invoke_json(rt, "budget-a", {"inputs": "a"})
    assert len(workers_of(tight_server, "budget-a")) == 1
    assert invoke_json(rt, "budget-b", {"inputs": "b"})
    assert workers_of(tight_server, "budget-a") == []
    assert len(workers_of(tight_server, "budget-b")) == 1
    status = httpx.get(f"{tight_server.url}/zeroserve/status").json()
    assert status["reserved_mb"] <= status["memory_budget_mb"]


SLOW_LOADING_INFERENCE = """
import time


def model_fn(model_dir):
    time.sleep(2.0)
    return "loaded"


def predict_fn(data, model):
    return [{"model": model}]
"""


def test_request_gets_model_not_ready_when_loading_outlasts_the_wait_budget(
    tight_server: ServerProcess, tiny_model_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "code").mkdir()
    (folder / "code" / "inference.py").write_text(SLOW_LOADING_INFERENCE)
    tarball = pack_model(folder, tmp_path / "model.tar.gz")
    sm = tight_server.sagemaker()
    assert deploy(sm, "slow-load", str(tarball), memory_mb=1024)["EndpointStatus"] == "InService"
    assert wait_until(lambda: workers_of(tight_server, "slow-load") == [], 10)
    first = httpx.post(
        f"{tight_server.url}/endpoints/slow-load/invocations", json={"inputs": "x"}, timeout=30
    )
    assert first.status_code == 429
    assert first.json()["__type"] == "ModelNotReadyException"
    assert wait_until(lambda: len(workers_of(tight_server, "slow-load")) == 1, 10)
    second = httpx.post(
        f"{tight_server.url}/endpoints/slow-load/invocations", json={"inputs": "x"}, timeout=30
    )
    assert second.json() == [{"model": "loaded"}]


def test_a_thousand_idle_endpoints_cost_little_memory_and_each_cold_starts(
    tmp_path: Path, tiny_tarball: Path
) -> None:
    count = 1000
    with ServerProcess(tmp_path / "data", env={"ZEROSERVE_IDLE_TIMEOUT_S": "1"}) as running:
        sm = running.sagemaker()
        sm.create_model(
            ModelName="shared",
            ExecutionRoleArn="arn:aws:iam::000000000000:role/test",
            PrimaryContainer={
                "Image": "x",
                "ModelDataUrl": str(tiny_tarball),
                "Environment": {"HF_TASK": "text-classification"},
            },
        )
        sm.create_endpoint_config(
            EndpointConfigName="shared",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "shared",
                    "ServerlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 5},
                }
            ],
        )

        def create(i: int) -> None:
            sm.create_endpoint(EndpointName=f"ep-{i}", EndpointConfigName="shared")

        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(create, range(count)))
        assert wait_until(
            lambda: (
                len(sm.list_endpoints(StatusEquals="InService", MaxResults=100)["Endpoints"]) == 100
                and not sm.list_endpoints(StatusEquals="Creating")["Endpoints"]
            ),
            300,
        ), "endpoints did not all reach InService"
        created_s = time.monotonic() - started
        status = httpx.get(f"{running.url}/zeroserve/status").json()
        assert len(status["endpoints"]) == count
        # Idle: no worker anywhere, only the server and the zygote.
        assert wait_until(lambda: len(descendants(running.pid)) == 1, 90), descendants(running.pid)
        total_mb = rss_mb(running.pid) + rss_mb(status["zygote_pid"])
        print(
            f"{count} endpoints created in {created_s:.1f} s; server + zygote RSS {total_mb:.0f} MB "
            f"(server {rss_mb(running.pid):.0f} MB)"
        )
        assert total_mb < 150
        for name in ("ep-0", "ep-500", f"ep-{count - 1}"):
            answer = httpx.post(
                f"{running.url}/endpoints/{name}/invocations", json={"inputs": "hi"}, timeout=30
            )
            assert answer.status_code == 200
            assert answer.headers["X-Zeroserve-Cold-Start"] == "1"
