"""Joining a Ray cluster that does not answer ends in ClusterUnavailable naming the address, instead of a
server stuck in ray.init() forever (it retries an unreachable address for a long time)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from zeroserve.cluster import ClusterUnavailable
from zeroserve.cluster.cluster import _in_daemon_thread


def test_a_join_that_never_returns_times_out_with_the_address() -> None:
    release = threading.Event()

    def stuck() -> tuple[str, str]:
        release.wait()
        return "node", "10.0.0.1"

    try:
        with pytest.raises(ClusterUnavailable, match=r"--ray 10\.0\.0\.1:6379: no Ray cluster answered"):
            asyncio.run(_in_daemon_thread(stuck, 0.05, "10.0.0.1:6379"))
    finally:
        release.set()


def test_a_join_that_fails_says_why() -> None:
    def refused() -> tuple[str, str]:
        raise ConnectionError("GCS refused the connection")

    with pytest.raises(ClusterUnavailable, match="could not join the Ray cluster: GCS refused"):
        asyncio.run(_in_daemon_thread(refused, 5.0, "auto"))


def test_a_join_that_succeeds_returns_the_node() -> None:
    assert asyncio.run(_in_daemon_thread(lambda: ("n1", "10.0.0.2"), 5.0, "auto")) == ("n1", "10.0.0.2")
