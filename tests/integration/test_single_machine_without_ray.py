"""What a single-machine user pays for cluster mode: nothing. Without --ray the server never loads ray
(checked in the running server and zygote processes, not by importing modules here) and its status shows
one node, "local", holding the whole budget."""

from __future__ import annotations

from typing import Any

import httpx

from processes import loaded_ray
from server import ServerProcess


def test_a_plain_server_never_loads_ray_and_shows_one_local_node(
    server: ServerProcess, tiny_endpoint: str
) -> None:
    rt: Any = server.runtime()
    rt.invoke_endpoint(EndpointName=tiny_endpoint, Body=b'{"inputs": "fine"}', ContentType="application/json")
    answer = httpx.get(f"{server.url}/zeroserve/status").json()
    assert not loaded_ray(server.pid)
    assert not loaded_ray(answer["zygote_pid"])
    assert "cluster" not in answer
    [node] = answer["nodes"]
    assert node["node_id"] == "local"
    assert node["memory_total_mb"] == answer["memory_budget_mb"]
    assert node["memory_reserved_mb"] == answer["reserved_mb"]
    worker_nodes = {
        w["node_id"] for v in answer["endpoints"][tiny_endpoint]["variants"] for w in v["workers"]
    }
    assert worker_nodes == {"local"}
    every_worker = [w for e in answer["endpoints"].values() for v in e["variants"] for w in v["workers"]]
    assert node["workers"] == len(every_worker)  # the shared server may hold other tests' endpoints
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'zeroserve_node_workers{node="local"}' in metrics
