"""The structured request log of real invocations: the route, `zeroserve logs` and `--follow`."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from server import ServerProcess, deploy
from zeroserve.commands.observe import FOLLOW_INTERVAL_S

FIELDS = {
    "timestamp_s", "endpoint", "variant", "status", "error", "cold", "queue_ms", "model_ms", "overhead_ms",
    "total_ms", "billed_ms", "memory_mb", "bytes_in", "bytes_out",
}


@pytest.fixture(scope="module")
def logged(server: ServerProcess, sm: Any, tiny_tarball: Path) -> str:
    assert deploy(sm, "logged", str(tiny_tarball))["EndpointStatus"] == "InService"
    for body in (b'{"inputs": "one"}', b'{"inputs": "two"}', b"not json"):
        httpx.post(f"{server.url}/endpoints/logged/invocations", content=body,
                   headers={"Content-Type": "application/json"}, timeout=30)
    return "logged"


def test_one_json_line_per_invocation_in_the_endpoint_file(server: ServerProcess, logged: str) -> None:
    page = httpx.get(f"{server.url}/zeroserve/logs/{logged}", params={"tail": 10}).json()
    lines = page["lines"]
    assert [line["status"] for line in lines] == [200, 200, 424]
    assert all(set(line) == FIELDS for line in lines)
    assert lines[2]["error"] == "ModelError"
    assert [line["bytes_in"] for line in lines] == [17, 17, 8]
    for line in lines:
        assert line["endpoint"] == "logged" and line["variant"] == "AllTraffic"
        assert line["model_ms"] > 0 and line["billed_ms"] >= 1
        assert line["total_ms"] == pytest.approx(line["model_ms"] + line["overhead_ms"], abs=0.002)
    on_disk = (server.data_dir / "logs" / "requests" / "logged.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in on_disk] == lines


def test_tail_and_cursor(server: ServerProcess, logged: str) -> None:
    last = httpx.get(f"{server.url}/zeroserve/logs/{logged}", params={"tail": 1}).json()
    assert [line["status"] for line in last["lines"]] == [424]
    nothing_new = httpx.get(f"{server.url}/zeroserve/logs/{logged}", params={"after": last["cursor"]}).json()
    assert nothing_new["lines"] == [] and nothing_new["cursor"] == last["cursor"]


@pytest.mark.parametrize(
    ("name", "params"),
    [("..secrets", {}), ("-dash-first", {}), ("x", {"tail": "-1"}), ("x", {"tail": "100001"})],
)
def test_bad_names_and_parameters_are_validation_errors(
    server: ServerProcess, name: str, params: dict[str, str]
) -> None:
    answer = httpx.get(f"{server.url}/zeroserve/logs/{name}", params=params)
    assert answer.status_code == 400
    assert answer.json()["__type"] == "ValidationError"


def test_cli_prints_recent_lines(server: ServerProcess, logged: str) -> None:
    shown = subprocess.run([sys.executable, "-m", "zeroserve", "logs", logged, "-n", "2", "--json",
                            "--url", server.url], capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    assert [json.loads(line)["status"] for line in shown.stdout.splitlines()] == [200, 424]

    readable = subprocess.run([sys.executable, "-m", "zeroserve", "logs", logged, "--url", server.url],
                              capture_output=True, text=True, timeout=60, check=False)
    assert "logged/AllTraffic" in readable.stdout and "ModelError" in readable.stdout


def test_follow_prints_new_invocations_as_they_happen(server: ServerProcess, logged: str) -> None:
    follower = subprocess.Popen(
        [sys.executable, "-m", "zeroserve", "logs", logged, "-n", "0", "--follow", "--json"],
        env={**os.environ, "ZEROSERVE_URL": server.url}, stdout=subprocess.PIPE, text=True,
    )
    assert follower.stdout is not None
    stdout = follower.stdout
    printed: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [printed.put(line) for line in stdout], daemon=True).start()
    try:
        # It prints what is logged after it has read the log's end, a moment no one outside it can see:
        # invoke until it prints a line. The first line must be one of these, none logged before it started.
        first: str | None = None
        deadline = time.monotonic() + 60
        while first is None and time.monotonic() < deadline:
            httpx.post(f"{server.url}/endpoints/logged/invocations", json={"inputs": "followed"}, timeout=30)
            with contextlib.suppress(queue.Empty):
                first = printed.get(timeout=3 * FOLLOW_INTERVAL_S)
        assert first is not None, "the follower printed nothing"
        line = json.loads(first)
        assert line["endpoint"] == logged and line["bytes_in"] == len(b'{"inputs":"followed"}')
    finally:
        follower.terminate()
        follower.wait(10)
