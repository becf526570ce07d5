"""A real multi-node Ray cluster on this machine (ray.cluster_utils.Cluster), one per test module, and a
zeroserve server joined to it with `--ray`.

These tests need ray (the `ray` extra, which `make install` installs): without it they fail at import,
loudly, unless ZEROSERVE_SKIP_RAY_TESTS=1 says to skip them.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from server import ServerProcess, pack_model

if os.environ.get("ZEROSERVE_SKIP_RAY_TESTS") == "1":
    pytest.skip("ZEROSERVE_SKIP_RAY_TESTS=1", allow_module_level=True)

# Ray binds every node (and the server's driver) to loopback, as everything in the test suite does; set
# before ray is imported, and inherited by the servers the tests start.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
import ray  # noqa: E402,F401  (missing ray fails here, loudly: `make install` installs the ray extra)

GIB = 1024**3
# Each Ray node: one CPU, a small object store (Ray's minimum is ~75 MB), no dashboard; `memory` is what
# zeroserve takes as the node's budget for workers.
NODE_ARGS: dict[str, Any] = {
    "num_cpus": 1,
    "object_store_memory": 80 * 1024**2,
    "memory": 2 * GIB,
    "node_ip_address": "127.0.0.1",
}

# The input picks a behaviour: every answer says which process served it.
PID_INFERENCE = """
import os
import time


def predict_fn(data, model):
    text = data["inputs"]
    if text.startswith("sleep:"):
        time.sleep(float(text.split(":", 1)[1]))
    return [{"pid": os.getpid()}]
"""


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from ray.cluster_utils import Cluster

    # Each node's agent caches bundles here, in a folder of its own per node.
    os.environ["ZEROSERVE_NODE_CACHE_DIR"] = str(tmp_path_factory.mktemp("node-caches"))
    cluster = Cluster(
        initialize_head=True,
        head_node_args={**NODE_ARGS, "include_dashboard": False},
    )
    try:
        yield cluster
    finally:
        cluster.shutdown()


@pytest.fixture(scope="module")
def pid_tarball(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pid-model") / "model"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "code").mkdir()
    (folder / "code" / "inference.py").write_text(PID_INFERENCE)
    return pack_model(folder, folder.parent / "model.tar.gz")


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
