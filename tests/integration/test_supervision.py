"""Every process the server starts is supervised: a killed or hung zygote is replaced at once, warm workers
outlive it, and cold starts waiting on it are re-sent to its successor instead of failing."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from processes import descendants, wait_all_dead, wait_until
from server import ServerProcess, deploy

IDLE_TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def supervised(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"ZEROSERVE_IDLE_TIMEOUT_S": str(IDLE_TIMEOUT_S), "ZEROSERVE_ZYGOTE_ACK_TIMEOUT_S": "1"}
    with ServerProcess(tmp_path_factory.mktemp("supervision") / "data", env=env) as running:
        yield running


def status(server: ServerProcess) -> dict[str, Any]:
    return dict(httpx.get(f"{server.url}/zeroserve/status").json())


def worker_pids(server: ServerProcess, endpoint: str) -> list[int]:
    variants = status(server)["endpoints"][endpoint]["variants"]
    return [worker["pid"] for variant in variants for worker in variant["workers"]]


def echo(server: ServerProcess, endpoint: str, text: str = "hello") -> httpx.Response:
    return httpx.post(f"{server.url}/endpoints/{endpoint}/invocations", json={"inputs": text}, timeout=30)


def test_killed_zygote_is_replaced_warm_workers_survive_and_cold_starts_work(
    supervised: ServerProcess, misbehaving_tarball: Path
) -> None:
    sm = supervised.sagemaker()
    assert deploy(sm, "warm", str(misbehaving_tarball), provisioned=1)["EndpointStatus"] == "InService"
    assert deploy(sm, "cold", str(misbehaving_tarball))["EndpointStatus"] == "InService"
    assert wait_until(lambda: worker_pids(supervised, "cold") == [], IDLE_TIMEOUT_S + 5)
    warm_pid = echo(supervised, "warm").json()[0]["pid"]
    before = status(supervised)
    os.kill(before["zygote_pid"], signal.SIGKILL)
    killed = time.monotonic()

    warm = echo(supervised, "warm")
    assert warm.status_code == 200 and warm.json()[0]["pid"] == warm_pid, "the warm worker survives"
    cold = echo(supervised, "cold")  # waits for the new zygote instead of failing
    recovered_s = time.monotonic() - killed
    assert cold.status_code == 200, cold.text
    after = status(supervised)
    assert after["zygote_pid"] != before["zygote_pid"]
    assert after["zygote_restarts"] == before["zygote_restarts"] + 1
    assert recovered_s < 5, f"cold start after a zygote kill took {recovered_s:.1f} s"
    metrics = httpx.get(f"{supervised.url}/metrics").text
    assert 'kind="zygote_restarted"' in metrics


def test_hung_zygote_is_replaced_and_the_waiting_cold_start_is_answered(
    supervised: ServerProcess, misbehaving_tarball: Path
) -> None:
    sm = supervised.sagemaker()
    assert deploy(sm, "frozen", str(misbehaving_tarball))["EndpointStatus"] == "InService"
    assert wait_until(lambda: worker_pids(supervised, "frozen") == [], IDLE_TIMEOUT_S + 5)
    hung = status(supervised)["zygote_pid"]
    os.kill(hung, signal.SIGSTOP)
    try:
        answer = echo(supervised, "frozen")
        assert answer.status_code == 200, answer.text
        assert status(supervised)["zygote_pid"] != hung
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(hung, signal.SIGCONT)


def test_server_killed_after_a_zygote_restart_leaves_no_orphans(
    tmp_path: Path, misbehaving_tarball: Path
) -> None:
    server = ServerProcess(tmp_path / "data").start()
    try:
        sm = server.sagemaker()
        assert deploy(sm, "kept", str(misbehaving_tarball), provisioned=1)["EndpointStatus"] == "InService"
        first = status(server)["zygote_pid"]
        os.kill(first, signal.SIGKILL)
        assert wait_until(lambda: status(server)["zygote_pid"] != first, 10)
        assert deploy(sm, "later", str(misbehaving_tarball), provisioned=1)["EndpointStatus"] == "InService"
        assert wait_until(lambda: len(worker_pids(server, "later")) == 1, 10)
        family = descendants(server.pid)
        assert len(family) >= 3, "the new zygote and a worker from each zygote"
        os.kill(server.pid, signal.SIGKILL)
        assert not wait_all_dead(family, 5), "processes outlived the killed server"
    finally:
        server.stop()
