"""Cold starts from templates, with real processes: after a variant's first (plain) start the server keeps a
template that has loaded its bundle; the next cold start is forked from it, yet is the server's child,
capped and measured for memory, and its output lands in the endpoint's log group as any worker's. A killed
(or hung) template costs nothing but speed: the cold start takes the zygote's path and the template is
rebuilt. An
idle template is dropped after its TTL and its memory returns to the budget, and a replaced variant's at
once."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_worker_output import TALKATIVE_INFERENCE, artifact, wait_for_lines

from processes import wait_all_dead, wait_until
from server import ServerProcess, deploy, model_and_config, wait_for_endpoint

IDLE_TIMEOUT_S = 0.5
TEMPLATE_TTL_S = 4.0
REPLACED = "reason=the variant was replaced or deleted"


@pytest.fixture(scope="module")
def templated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "ZEROSERVE_IDLE_TIMEOUT_S": str(IDLE_TIMEOUT_S),
        "ZEROSERVE_TEMPLATE_IDLE_TIMEOUT_S": str(TEMPLATE_TTL_S),
        "ZEROSERVE_ZYGOTE_ACK_TIMEOUT_S": "1",  # also how long a template may take to acknowledge a fork
    }
    with ServerProcess(tmp_path_factory.mktemp("templates") / "data", env=env) as running:
        yield running


def status(server: ServerProcess) -> dict[str, Any]:
    return dict(httpx.get(f"{server.url}/zeroserve/status").json())


def templates_of(server: ServerProcess, endpoint: str) -> list[dict[str, Any]]:
    return [t for t in status(server)["templates"] if t["endpoint"] == endpoint and t["ready"]]


def workers_of(server: ServerProcess, endpoint: str) -> list[dict[str, Any]]:
    return list(status(server)["endpoints"][endpoint]["variants"][0]["workers"])


def ask(server: ServerProcess, endpoint: str, text: str) -> httpx.Response:
    return httpx.post(f"{server.url}/endpoints/{endpoint}/invocations", json={"inputs": text}, timeout=30)


def parent_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    raise AssertionError(f"no PPid for {pid}")


def deployed_idle(server: ServerProcess, name: str, tarball: Path, memory_mb: int = 2048) -> dict[str, Any]:
    """Deploy, answer once cold (a plain cold start: a deploy's own start earns no template), wait for the
    template and for the worker to go idle; the template's status entry."""
    described = deploy(server.sagemaker(), name, str(tarball), memory_mb=memory_mb)
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    assert wait_until(lambda: workers_of(server, name) == [], IDLE_TIMEOUT_S + 10)
    assert ask(server, name, "first").status_code == 200
    assert workers_of(server, name)[0]["template_pid"] is None, "the first cold start has no template"
    assert wait_until(lambda: templates_of(server, name) != [], 30), status(server)["templates"]
    assert wait_until(lambda: workers_of(server, name) == [], IDLE_TIMEOUT_S + 10)
    [template] = templates_of(server, name)
    return template


def test_a_cold_start_forks_from_the_template_yet_is_the_servers_child_and_its_output_lands(
    templated: ServerProcess, tiny_model_dir: Path, tmp_path: Path
) -> None:
    tarball = artifact(tiny_model_dir, tmp_path, TALKATIVE_INFERENCE)
    template = deployed_idle(templated, "talks", tarball)
    assert template["memory_mb"] > 0 and template["pid"]
    assert status(templated)["reserved_mb"] >= template["memory_mb"], "templates count in the budget"
    answer = ask(templated, "talks", "from the template")
    assert answer.status_code == 200, answer.text
    [worker] = workers_of(templated, "talks")
    assert worker["template_pid"] == template["pid"]
    assert parent_of(worker["pid"]) == templated.pid, "detached: it outlives its template"
    found = wait_for_lines(templated.logs(), "talks", ["stdout says from the template"])
    assert any("stderr says from the template" in line for line in found), found
    metrics = httpx.get(f"{templated.url}/metrics").text
    assert 'zeroserve_templates{endpoint="talks",variant="AllTraffic"} 1.0' in metrics


def test_a_worker_forked_from_a_template_still_has_its_memory_capped_and_measured(
    templated: ServerProcess, misbehaving_tarball: Path
) -> None:
    template = deployed_idle(templated, "capped", misbehaving_tarball, memory_mb=1024)
    refused = ask(templated, "capped", "alloc:2100")
    assert refused.status_code == 424 and "MemoryError" in refused.json()["message"], refused.text
    [worker] = workers_of(templated, "capped")
    assert worker["template_pid"] == template["pid"]
    over = ask(templated, "capped", "touch:1100")
    assert over.status_code == 500, over.text
    assert "over the variant's MemorySizeInMB" in over.json()["message"]
    assert not wait_all_dead({worker["pid"]}, 5), "the worker over its memory was killed"


def test_a_killed_template_falls_back_to_the_plain_path_and_is_rebuilt(
    templated: ServerProcess, misbehaving_tarball: Path
) -> None:
    template = deployed_idle(templated, "orphaned", misbehaving_tarball)
    os.kill(template["pid"], signal.SIGKILL)
    assert wait_until(lambda: templates_of(templated, "orphaned") == [], 5), "a dead template is dropped"
    answer = ask(templated, "orphaned", "hello")
    assert answer.status_code == 200, answer.text
    [worker] = workers_of(templated, "orphaned")
    assert worker["template_pid"] is None, "no template: forked by the zygote"
    assert wait_until(lambda: templates_of(templated, "orphaned") != [], 30), "rebuilt after that cold start"
    assert templates_of(templated, "orphaned")[0]["pid"] != template["pid"]


def test_a_hung_template_is_killed_and_the_waiting_cold_start_takes_the_plain_path(
    templated: ServerProcess, misbehaving_tarball: Path
) -> None:
    template = deployed_idle(templated, "stuck", misbehaving_tarball)
    os.kill(template["pid"], signal.SIGSTOP)
    answer = ask(templated, "stuck", "hello")
    assert answer.status_code == 200, answer.text
    assert workers_of(templated, "stuck")[0]["template_pid"] is None
    assert not wait_all_dead({template["pid"]}, 5), "the hung template was killed"


def test_an_idle_template_is_dropped_after_its_ttl_and_frees_its_memory(
    templated: ServerProcess, misbehaving_tarball: Path
) -> None:
    template = deployed_idle(templated, "forgotten", misbehaving_tarball)
    assert template["memory_mb"] > 0
    assert wait_until(lambda: templates_of(templated, "forgotten") == [], TEMPLATE_TTL_S + 10)
    now = status(templated)
    workers_mb = sum(
        variant["memory_mb"] * (len(variant["workers"]) + variant["starting"])
        for endpoint in now["endpoints"].values()
        for variant in endpoint["variants"]
    )
    held = workers_mb + sum(t["memory_mb"] for t in now["templates"])
    assert now["reserved_mb"] == held, "the budget holds exactly the live workers and templates"
    assert not wait_all_dead({template["pid"]}, 5), "its process is gone"


def test_an_update_drops_the_replaced_variants_template_and_its_process(
    templated: ServerProcess, misbehaving_tarball: Path
) -> None:
    template = deployed_idle(templated, "replaced", misbehaving_tarball)
    sm = templated.sagemaker()
    model_and_config(sm, "replaced-v2", str(misbehaving_tarball))
    sm.update_endpoint(EndpointName="replaced", EndpointConfigName="replaced-v2")
    assert wait_for_endpoint(sm, "replaced")["EndpointStatus"] == "InService"
    assert wait_until(lambda: template["pid"] not in {t["pid"] for t in status(templated)["templates"]}, 5)
    assert not wait_all_dead({template["pid"]}, 5), "its process is gone"
    # Dropped for the update, not because its TTL happened to run out meanwhile.
    dropped = [line for line in wait_for_lines(templated.logs(), "replaced", [REPLACED]) if REPLACED in line]
    assert len(dropped) == 1 and dropped[0].startswith("zeroserve worker template_dropped"), dropped
