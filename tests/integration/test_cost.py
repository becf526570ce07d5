"""The cost meter over HTTP and the CLI: SageMaker Serverless billing of real invocations, persisted across
a restart."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from server import ServerProcess, deploy

GB = 1024**3


def invoke(server: ServerProcess, endpoint: str, body: bytes) -> httpx.Response:
    return httpx.post(f"{server.url}/endpoints/{endpoint}/invocations", content=body,
                      headers={"Content-Type": "application/json"}, timeout=30)


def cost(server: ServerProcess, **params: str) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/zeroserve/cost", params=params)
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def cli(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "zeroserve", *args, "--url", url],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def billed(sm: Any, tiny_tarball: Path) -> str:
    assert deploy(sm, "billed", str(tiny_tarball), memory_mb=2048)["EndpointStatus"] == "InService"
    return "billed"


@pytest.fixture(scope="module")
def traffic(server: ServerProcess, billed: str) -> dict[str, int]:
    """Three answered requests of different sizes and one bad one; what went in and out, in bytes."""
    bodies = [json.dumps({"inputs": "good " * n}).encode() for n in (1, 10, 100)] + [b"{broken"]
    answers = [invoke(server, billed, body) for body in bodies]
    assert [a.status_code for a in answers] == [200, 200, 200, 424]
    return {"in": sum(len(b) for b in bodies), "out": sum(len(a.content) for a in answers)}


def test_each_invocation_is_billed_for_its_model_time_rounded_up_at_its_memory_size(
    server: ServerProcess, billed: str, traffic: dict[str, int]
) -> None:
    [usage] = cost(server, endpoint=billed)["endpoints"]
    lines = httpx.get(f"{server.url}/zeroserve/logs/{billed}").json()["lines"]

    assert usage["invocations"] == 4
    assert usage["errors_4xx"] == 1
    assert usage["bytes_in"] == traffic["in"]
    assert usage["bytes_out"] == traffic["out"]
    # Billed duration = the in-worker model time, each rounded up to a whole millisecond (never the queue).
    assert usage["billed_ms"] == sum(-(-round(line["model_ms"] * 1000) // 1000) for line in lines)
    assert usage["billed_ms"] >= 4
    assert usage["gb_seconds"] == pytest.approx(usage["billed_ms"] / 1000 * 2048 / 1024)
    expected_usd = usage["gb_seconds"] * 0.0000200 + (traffic["in"] + traffic["out"]) / GB * 0.016
    assert usage["cost_usd"] == pytest.approx(expected_usd)


def test_since_limits_the_period(server: ServerProcess, billed: str, traffic: dict[str, int]) -> None:
    assert cost(server, endpoint=billed, since="1h")["endpoints"][0]["invocations"] == 4
    assert cost(server, endpoint=billed, since=str(time.time() + 120))["endpoints"] == []
    refused = httpx.get(f"{server.url}/zeroserve/cost", params={"since": "last tuesday"})
    assert refused.status_code == 400
    assert refused.json()["__type"] == "ValidationError"


def test_total_adds_up_the_endpoints(server: ServerProcess, traffic: dict[str, int]) -> None:
    report = cost(server)
    assert report["total"]["invocations"] == sum(u["invocations"] for u in report["endpoints"])
    assert report["total"]["cost_usd"] == pytest.approx(sum(u["cost_usd"] for u in report["endpoints"]))


def test_cli_prints_the_same_report(server: ServerProcess, billed: str, traffic: dict[str, int]) -> None:
    as_json = cli("cost", billed, "--json", url=server.url)
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["endpoints"] == cost(server, endpoint=billed)["endpoints"]

    table = cli("cost", "--since", "1d", url=server.url)
    assert table.returncode == 0, table.stderr
    assert "billed" in table.stdout and "GB-s" in table.stdout


def test_cli_says_when_no_server_answers() -> None:
    refused = cli("cost", url="http://127.0.0.1:9")
    assert refused.returncode == 1
    assert "cannot reach zeroserve" in refused.stdout


def test_usage_and_prices_survive_a_restart(tmp_path: Path, tiny_tarball: Path) -> None:
    env = {"ZEROSERVE_PRICE_GB_SECOND_USD": "1.0", "ZEROSERVE_PRICE_GB_DATA_USD": "0"}
    with ServerProcess(tmp_path / "data", env=env) as first:
        assert deploy(first.sagemaker(), "kept", str(tiny_tarball))["EndpointStatus"] == "InService"
        for _ in range(3):
            assert invoke(first, "kept", b'{"inputs": "remember me"}').status_code == 200
        before = cost(first)
    with ServerProcess(tmp_path / "data", env=env) as second:
        after = cost(second)

    assert before["prices"] == {"gb_second_usd": 1.0, "gb_data_usd": 0.0}
    assert after["endpoints"] == before["endpoints"]
    [usage] = after["endpoints"]
    assert usage["invocations"] == 3
    assert usage["cost_usd"] == pytest.approx(usage["gb_seconds"])  # $1 per GB-second, data free
