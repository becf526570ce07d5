"""A real multi-node Ray cluster on this machine (ray.cluster_utils.Cluster), one per test module, and a
zeroserve server joined to it with `--ray`.

These tests need ray (the `ray` extra, which `make install` installs): without it they fail at import,
loudly, unless ZEROSERVE_SKIP_RAY_TESTS=1 says to skip them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from raycluster import NODE_ARGS
from server import pack_model

# Ray binds every node (and the server's driver) to loopback, as everything in the test suite does; set
# before ray is imported, and inherited by the servers the tests start.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
if os.environ.get("ZEROSERVE_SKIP_RAY_TESTS") == "1":  # only when asked explicitly
    collect_ignore_glob = ["test_*.py"]
else:
    import ray  # noqa: F401  (missing ray fails here, loudly: `make install` installs the ray extra)

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
