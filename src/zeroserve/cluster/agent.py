"""The node agent: one long-lived Ray actor per non-head node, pinned to it, holding a zygote there.

Started by the server (cluster.py) with `num_cpus=0` (it never takes a CPU from Ray's scheduling), hard
node affinity and `max_restarts=-1`: Ray restarts an agent that crashed, which is its supervision; it is not
detached, so it dies with the server's driver. Its zygote (the same one as on the head, workers/zygote.py,
supervised the same way by workers/supervisor.py) dies with it (PDEATHSIG), and the zygote's workers with
the zygote: nothing outlives the server. Workers connect straight to the server over TCP, so requests never
pass through the agent; it only forks, kills, and fetches bundles.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

from zeroserve.cluster.bundles import BundleCache
from zeroserve.workers.protocol import read_frame
from zeroserve.workers.supervisor import ZygoteSupervisor, kill_quietly


def cache_root(node_id: str) -> Path:
    """Per node, even when several Ray nodes share a machine (tests): each fetches its own copy."""
    base = os.environ.get("ZEROSERVE_NODE_CACHE_DIR") or tempfile.gettempdir()
    return Path(base) / f"zeroserve-node-{node_id[:16]}"


# What Ray sets for the actor's own process, not for the node: OMP_NUM_THREADS=1 (from the agent's
# num_cpus=0) would make a remote worker's numeric libraries single-threaded, unlike a head-local one's.
# Remote workers get the node's environment; their runtime threads come from the variant, as on the head.
_RAY_PROCESS_VARIABLES = {"OMP_NUM_THREADS", "PYTHONBREAKPOINT", "SPT_NOENV"}


def node_environment() -> dict[str, str]:
    return {
        name: value
        for name, value in os.environ.items()
        if name not in _RAY_PROCESS_VARIABLES and not name.startswith("RAY_")
    }


class NodeAgent:
    def __init__(self, node_id: str, connect: str, token: str, ack_timeout_s: float = 3.0) -> None:
        self.node_id = node_id
        self._connect = connect
        self._token = token
        self._ack_timeout_s = ack_timeout_s
        self.bundles = BundleCache(cache_root(node_id))
        self._zygote: ZygoteSupervisor | None = None
        self._server: asyncio.Server | None = None
        self._starting: asyncio.Lock | None = None

    async def _started(self) -> ZygoteSupervisor:
        """Start the zygote on first use (an actor's __init__ cannot await; a restarted agent starts anew)."""
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._zygote is None:
                address = f"\0zeroserve-agent-{os.getpid()}-{secrets.token_hex(6)}"
                self._server = await asyncio.start_unix_server(self._on_connect, path=address)
                env = dict(
                    node_environment(),
                    ZEROSERVE_SOCKET="@" + address[1:],
                    ZEROSERVE_WORKER_CONNECT=self._connect,
                    ZEROSERVE_WORKER_TOKEN=self._token,
                )
                zygote = ZygoteSupervisor(env, ack_timeout_s=self._ack_timeout_s)
                await zygote.start()
                self._zygote = zygote
            return self._zygote

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            hello, _ = await read_frame(reader)
        except (asyncio.IncompleteReadError, ValueError):
            writer.close()
            return
        if hello.get("role") == "zygote" and self._zygote is not None:
            await self._zygote.serve(hello, reader, writer)
        else:
            writer.close()

    # --- called by the server ------------------------------------------------------------------------

    async def ready(self) -> dict[str, Any]:
        """Once the zygote is up (the server waits for this before placing anything here)."""
        zygote = await self._started()
        await zygote.wait_ready(asyncio.get_running_loop().time() + 120.0)
        return {"pid": os.getpid(), "zygote_pid": zygote.pid, "cache_dir": str(self.bundles.root)}

    async def spawn(self, spec: dict[str, Any], timeout_s: float) -> None:
        """Fork a worker of this spec; returns once the zygote acknowledged the fork (the worker then says
        hello to the server itself)."""
        zygote = await self._started()
        await zygote.request_spawn(
            str(spec["worker_id"]), spec, asyncio.get_running_loop().time() + timeout_s
        )

    def kill(self, pid: int) -> None:
        kill_quietly(pid)

    async def ensure_bundle(self, name: str, refs: list[Any]) -> tuple[str, bool]:
        return await self.bundles.ensure(name, refs)

    def fetches(self) -> int:
        return self.bundles.fetches

    def ping(self) -> int:
        return os.getpid()

    async def watch(self) -> None:
        """Never returns: the server keeps one call pending, which fails (RayActorError) when we die."""
        await asyncio.get_running_loop().create_future()
