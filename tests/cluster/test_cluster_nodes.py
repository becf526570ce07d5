"""zeroserve on a real three-node Ray cluster on this machine: workers placed on other nodes, requests
routed to all of them, bundles fetched once per node, a node lost under load (its requests retried, its
workers placed again) and a node added and used. One cluster and one server for the whole module."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from processes import loaded_ray, wait_all_dead
from raycluster import NODE_ARGS, cluster_server, remote_nodes, status, wait_for, workers
from server import ServerProcess, deploy
from zeroserve.workers.protocol import encode


@pytest.fixture(scope="module")
def nodes(ray_cluster: Any) -> list[Any]:
    added = [ray_cluster.add_node(**NODE_ARGS) for _ in range(2)]
    ray_cluster.wait_for_nodes()
    return added


@pytest.fixture(scope="module")
def server(
    ray_cluster: Any, nodes: list[Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with cluster_server(tmp_path_factory.mktemp("cluster") / "data", ray_cluster.address) as running:
        wait_for(lambda: len(remote_nodes(status(running))) == 2, 60, "both nodes' agents")
        yield running


def invoke(server: ServerProcess, endpoint: str, text: str) -> dict[str, Any]:
    answer = server.runtime().invoke_endpoint(
        EndpointName=endpoint, Body=json.dumps({"inputs": text}), ContentType="application/json"
    )
    result: dict[str, Any] = json.loads(answer["Body"].read())[0]
    return result


def node_of_pid(answer: dict[str, Any], endpoint: str) -> dict[int, str]:
    return {w["pid"]: w["node_id"] for w in workers(answer, endpoint)}


def busy_on(answer: dict[str, Any], endpoint: str, node_id: str) -> dict[str, Any] | None:
    """The endpoint's worker on that node, once it has a request in flight."""
    return next((w for w in workers(answer, endpoint) if w["node_id"] == node_id and w["inflight"]), None)


def test_the_server_joined_the_cluster_and_loaded_ray(server: ServerProcess) -> None:
    answer = status(server)
    assert answer["cluster"]["head_node_id"] in {n["node_id"] for n in answer["nodes"]}
    assert loaded_ray(server.pid)  # the probe the single-machine test relies on does see ray


def test_a_worker_hello_without_the_servers_token_is_refused(server: ServerProcess) -> None:
    host, port = status(server)["cluster"]["worker_channel"].removeprefix("tcp:").rsplit(":", 1)
    for hello in ({"token": "not-the-token"}, {}):
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(encode({"type": "hello", "role": "worker", "worker_id": "w1", "pid": 1, **hello}))
            assert sock.recv(1) == b""  # closed on us
    assert "refused a worker connection" in server.log()


def test_provisioned_workers_are_spread_over_the_nodes(server: ServerProcess, pid_tarball: Path) -> None:
    described = deploy(server.sagemaker(), "spread", str(pid_tarball), memory_mb=1024, provisioned=3)
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    answer = wait_for(lambda: (a := status(server)) and len(workers(a, "spread")) == 3 and a, 30, "3 workers")
    placed = {w["node_id"] for w in workers(answer, "spread")}
    head = answer["cluster"]["head_node_id"]
    assert placed == {head, *(n["node_id"] for n in remote_nodes(answer))}


def test_requests_are_routed_to_workers_on_every_node(server: ServerProcess) -> None:
    with ThreadPoolExecutor(6) as threads:
        pids = {r["pid"] for r in threads.map(lambda _: invoke(server, "spread", "sleep:0.3"), range(6))}
    answer = status(server)
    served_on = {node_of_pid(answer, "spread")[pid] for pid in pids}
    assert len(served_on) == 3  # the head's worker and both remote ones


def test_a_bundle_is_fetched_once_per_node(server: ServerProcess, pid_tarball: Path) -> None:
    assert [n["bundle_fetches"] for n in remote_nodes(status(server))] == [1, 1]
    # The same artifact again: one conversion (the bundle's digest is known), and the worker placed on a
    # node that already holds it fetches nothing.
    described = deploy(server.sagemaker(), "again", str(pid_tarball), memory_mb=1024, provisioned=1)
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    answer = wait_for(lambda: (a := status(server)) and workers(a, "again") and a, 30, "a worker of again")
    assert {w["node_id"] for w in workers(answer, "again")} <= {n["node_id"] for n in remote_nodes(answer)}
    assert [n["bundle_fetches"] for n in remote_nodes(answer)] == [1, 1]
    assert server.log().count("serves onnx") == 1  # converted once
    server.sagemaker().delete_endpoint(EndpointName="again")
    wait_for(lambda: "again" not in status(server)["endpoints"], 30, "again deleted")


def test_a_lost_node_has_its_requests_retried_and_its_workers_placed_again(
    server: ServerProcess, ray_cluster: Any, nodes: list[Any]
) -> None:
    before = status(server)
    lost = next(n for n in nodes if n.node_id in {w["node_id"] for w in workers(before, "spread")})
    old_pids = set(node_of_pid(before, "spread"))

    def replaced() -> dict[str, Any] | None:
        answer = status(server)
        placed = workers(answer, "spread")
        on_lost = any(w["node_id"] == lost.node_id for w in placed)
        return answer if len(placed) == 3 and not on_lost else None

    with ThreadPoolExecutor(6) as threads:
        # Long enough that the lost node's processes are surely dead before they could answer: a killed
        # raylet's actor (the agent) notices within about a second, and its zygote and workers die with it.
        pending = [threads.submit(invoke, server, "spread", "sleep:3") for _ in range(6)]
        doomed = wait_for(lambda: busy_on(status(server), "spread", lost.node_id), 5, "requests on that node")
        ray_cluster.remove_node(lost, allow_graceful=False)  # raylet and its workers killed -9
        removed_s = time.monotonic()
        answer = wait_for(replaced, 5.0, "the lost node's worker placed again")
        assert time.monotonic() - removed_s < 5.0
        answers = [p.result(timeout=30) for p in pending]  # none failed: those on the lost node were retried
    assert doomed["inflight"] >= 1  # requests were on the lost worker when its node went
    assert len(answers) == 6 and doomed["pid"] not in {a["pid"] for a in answers}
    # The node itself leaves the pool once its agent's death is reported (or it misses pings for 2 s).
    wait_for(lambda: lost.node_id not in {n["node_id"] for n in status(server)["nodes"]}, 10, "node dropped")
    assert set(node_of_pid(answer, "spread")) - old_pids  # a new process took the lost one's place
    assert invoke(server, "spread", "hello")["pid"] in node_of_pid(status(server), "spread")


def test_a_node_added_to_the_cluster_takes_new_workers(
    server: ServerProcess, ray_cluster: Any, pid_tarball: Path
) -> None:
    added = ray_cluster.add_node(**NODE_ARGS)
    wait_for(lambda: added.node_id in {n["node_id"] for n in status(server)["nodes"]}, 30, "the new node")
    # The head and the surviving node are full with `spread`: only the new node has room.
    described = deploy(server.sagemaker(), "grow", str(pid_tarball), memory_mb=1024, provisioned=2)
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    answer = wait_for(lambda: (a := status(server)) and len(workers(a, "grow")) == 2 and a, 30, "2 workers")
    assert {w["node_id"] for w in workers(answer, "grow")} == {added.node_id}
    assert invoke(server, "grow", "hello")["pid"] in node_of_pid(answer, "grow")


def test_a_crashed_agent_is_restarted_by_ray_and_its_node_serves_again(server: ServerProcess) -> None:
    before = status(server)
    grow_pids = set(node_of_pid(before, "grow"))
    [node] = [n for n in remote_nodes(before) if n["node_id"] in set(node_of_pid(before, "grow").values())]
    os.kill(node["agent_pid"], signal.SIGKILL)  # its zygote and workers die with it

    def back() -> dict[str, Any] | None:
        answer = status(server)
        [again] = [n for n in answer["nodes"] if n["node_id"] == node["node_id"]] or [None]
        restarted = again is not None and again["agent_pid"] != node["agent_pid"] and again["workers"] > 0
        grow, spread = node_of_pid(answer, "grow"), node_of_pid(answer, "spread")
        floors = len(grow) == 2 and len(spread) == 3 and not set(grow) & grow_pids
        return answer if restarted and floors else None

    # Back within seconds: Ray restarts the agent, the server joins the node again and fills the floors
    # (the workers may land elsewhere first: an idle worker of another variant can be evicted for them).
    answer = wait_for(back, 30, "the restarted agent's node serving again")
    # The node serves again: a request is answered by a worker on it, not merely by some worker.
    on_node = [
        (name, pid)
        for name in ("grow", "spread")
        for pid, node_id in node_of_pid(answer, name).items()
        if node_id == node["node_id"]
    ]
    assert on_node, "no worker of ours on the restarted node"
    endpoint, pid = on_node[0]
    count = 2 * len(workers(answer, endpoint))  # enough at once that every worker of it takes some
    with ThreadPoolExecutor(count) as threads:
        answers = threads.map(lambda _: invoke(server, endpoint, "sleep:0.3"), range(count))
        served = {a["pid"] for a in answers}
    assert pid in served, f"{endpoint}'s worker {pid} on the restarted node answered none of {served}"


def test_stopping_the_server_leaves_no_worker_behind(server: ServerProcess) -> None:
    pids = list(node_of_pid(status(server), "spread")) + list(node_of_pid(status(server), "grow"))
    server.stop()
    assert wait_all_dead(set(pids), 10) == set()
