"""The server as a process: it never loads the ML stack, its state survives a restart, and SIGTERM drains
in-flight requests and leaves no process behind."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import httpx

from processes import descendants, wait_all_dead, wait_until
from server import ServerProcess, deploy, invoke_json


def mapped_libraries(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def inflight(server: ServerProcess, endpoint: str) -> int:
    """Requests a worker of the endpoint is handling now."""
    variants = httpx.get(f"{server.url}/zeroserve/status").json()["endpoints"][endpoint]["variants"]
    return sum(worker["inflight"] for variant in variants for worker in variant["workers"])


def test_server_process_never_imports_torch_or_onnxruntime(
    server: ServerProcess, rt: Any, tiny_endpoint: str
) -> None:
    invoke_json(rt, tiny_endpoint, {"inputs": "load everything"})
    maps = mapped_libraries(server.pid)
    assert "onnxruntime" not in maps
    assert "libtorch" not in maps
    zygote = httpx.get(f"{server.url}/zeroserve/status").json()["zygote_pid"]
    assert "onnxruntime" in mapped_libraries(zygote)


def test_state_survives_a_restart(tmp_path: Path, tiny_tarball: Path) -> None:
    data_dir = tmp_path / "data"
    with ServerProcess(data_dir) as first:
        assert deploy(first.sagemaker(), "durable", str(tiny_tarball))["EndpointStatus"] == "InService"
    with ServerProcess(data_dir) as second:
        sm = second.sagemaker()
        assert sm.describe_endpoint(EndpointName="durable")["EndpointStatus"] == "InService"
        assert [m["ModelName"] for m in sm.list_models()["Models"]] == ["durable"]
        assert invoke_json(second.runtime(), "durable", {"inputs": "still here"})[0]["label"] in {
            "NEGATIVE",
            "POSITIVE",
        }


def test_sigterm_drains_in_flight_requests_and_leaves_no_orphans(
    tmp_path: Path, misbehaving_tarball: Path
) -> None:
    server = ServerProcess(tmp_path / "data").start()
    try:
        assert (
            deploy(server.sagemaker(), "draining", str(misbehaving_tarball))["EndpointStatus"] == "InService"
        )
        family = descendants(server.pid)
        assert family, "the zygote and a worker should be running"
        answers: list[httpx.Response] = []
        slow = threading.Thread(
            target=lambda: answers.append(
                httpx.post(
                    f"{server.url}/endpoints/draining/invocations", json={"inputs": "sleep:1.5"}, timeout=30
                )
            )
        )
        slow.start()
        assert wait_until(lambda: inflight(server, "draining") == 1, 10), "the request is in flight"
        server.process.terminate()  # type: ignore[union-attr]
        slow.join(30)
        assert answers and answers[0].status_code == 200, answers[0].text if answers else "no answer"
        assert server.process.wait(30) in (0, -signal.SIGTERM)  # type: ignore[union-attr]
        assert wait_all_dead(family, 5) == set()
    finally:
        server.stop()
