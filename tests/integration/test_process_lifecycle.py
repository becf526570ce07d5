"""The server as a process: it never loads the ML stack, its state survives a restart, and SIGTERM drains
in-flight requests and leaves no process behind."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from processes import alive, descendants
from server import ServerProcess, deploy, invoke_json


def mapped_libraries(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


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
        time.sleep(0.5)
        server.process.terminate()  # type: ignore[union-attr]
        slow.join(30)
        assert answers and answers[0].status_code == 200, answers[0].text if answers else "no answer"
        assert server.process.wait(30) in (0, -signal.SIGTERM)  # type: ignore[union-attr]
        deadline = time.monotonic() + 5
        while any(alive(pid) for pid in family) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in family if alive(pid)]
    finally:
        server.stop()
