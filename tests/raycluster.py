"""Helpers for the cluster tests and benchmarks (tests/cluster/, bench/cluster.py): a server joined to a
Ray cluster and what its status says about nodes and workers. Plain functions, no pytest import."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from server import ServerProcess

GIB = 1024**3
# Each Ray node: one CPU, a small object store (Ray's minimum is ~75 MB), no dashboard; `memory` is what
# zeroserve takes as the node's budget for workers.
NODE_ARGS: dict[str, Any] = {
    "num_cpus": 1,
    "object_store_memory": 80 * 1024**2,
    "memory": 2 * GIB,
    "node_ip_address": "127.0.0.1",
}


def cluster_server(data_dir: Path, address: str, *, budget_mb: int = 1024) -> ServerProcess:
    """A server joined to the cluster; the head's own budget holds one 1024 MB worker."""
    return ServerProcess(
        data_dir,
        env={"ZEROSERVE_RAY_POLL_S": "0.5", "ZEROSERVE_RAY_NODE_LOST_AFTER_S": "2"},
        args=["--ray", address, "--memory-budget-mb", str(budget_mb)],
    )


def status(server: ServerProcess) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{server.url}/zeroserve/status", timeout=5).json()
    return answer


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if found := predicate():
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def workers(answer: dict[str, Any], endpoint: str) -> list[dict[str, Any]]:
    return [w for v in answer["endpoints"][endpoint]["variants"] for w in v["workers"]]


def remote_nodes(answer: dict[str, Any]) -> list[dict[str, Any]]:
    return [n for n in answer["nodes"] if n.get("role") == "agent"]
