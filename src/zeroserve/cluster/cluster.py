"""The server on a Ray cluster: join it, listen for remote workers, and keep the pool's nodes in step with
Ray's node table.

The head (where `zeroserve serve --ray` runs) is the pool's own node, served in-process by the server's hub:
its agent is the server itself. Every other alive Ray node gets a NodeAgent (agent.py) and becomes a pool
Node whose budget is that node's Ray `memory` resource (`ray start --memory`). Joins are seen by polling
`ray.nodes()` every `ray_poll_s`; a loss is seen by whichever comes first: the agent's pending `watch()`
call failing (its process died), the node leaving Ray's table, or the agent missing pings for
`ray_node_lost_after_s` (the machine is gone and Ray has not noticed yet).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import RayError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from zeroserve.cluster import ClusterUnavailable
from zeroserve.cluster.agent import NodeAgent
from zeroserve.cluster.bundles import BundleShipper
from zeroserve.cluster.membership import Membership
from zeroserve.cluster.spawner import RemoteSpawner
from zeroserve.config import Settings
from zeroserve.scheduler.ledger import MemoryLedger
from zeroserve.scheduler.nodes import Node
from zeroserve.scheduler.pool import Pool
from zeroserve.workers.hub import WorkerHub

log = logging.getLogger("zeroserve.cluster")
NAMESPACE = "zeroserve"
AGENT_START_TIMEOUT_S = 120.0
# ray.init() retries an address where no cluster answers for a long time, unkillable from the event loop.
JOIN_TIMEOUT_S = 30.0


@dataclass
class RemoteNode:
    node_id: str
    address: str
    agent: Any
    spawner: RemoteSpawner
    agent_pid: int
    watch: asyncio.Future[Any] | None = None


class RayCluster:
    def __init__(self, settings: Settings, head_node_id: str, head_ip: str) -> None:
        self.settings = settings
        self.head_node_id = head_node_id
        self.head_ip = head_ip
        self.token = secrets.token_hex(32)  # per server start: a restarted server's old workers are refused
        # Names this server's agents apart from another zeroserve server's on the same cluster.
        self.server_id = secrets.token_hex(4)
        self.shipper = BundleShipper()
        self.membership: Membership  # on the pool's clock, from `start`
        self.remote: dict[str, RemoteNode] = {}
        self.connect = ""
        self._pool: Pool | None = None
        self._hub: WorkerHub | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._join_failed: set[str] = set()
        self._agent_class: Any = ray.remote(NodeAgent)

    @classmethod
    async def connect_to(cls, settings: Settings) -> RayCluster:
        # Ray's core worker installs its own SIGTERM/SIGINT handlers (a crash dump, then exit); the server's
        # (uvicorn's: drain in-flight requests, then stop) are put back once it is connected.
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

        def init() -> tuple[str, str]:
            ray.init(
                address=settings.ray,
                namespace=NAMESPACE,
                log_to_driver=False,
                logging_level=logging.WARNING,
                configure_logging=False,
            )
            node_id = ray.get_runtime_context().get_node_id()
            # The address Ray knows this node by: the cluster's own (private) interface.
            table = ray.nodes()  # type: ignore[no-untyped-call]
            ips = [n["NodeManagerAddress"] for n in table if n["NodeID"] == node_id]
            return node_id, str(ips[0]) if ips else ray.util.get_node_ip_address()  # type: ignore[no-untyped-call]

        node_id, ip = await _in_daemon_thread(init, JOIN_TIMEOUT_S, settings.ray)
        for sig, handler in previous.items():
            if handler is not None:
                signal.signal(sig, handler)
        log.info("joined the Ray cluster at %s as node %s (%s)", settings.ray, node_id, ip)
        return cls(settings, node_id, ip)

    async def start(self, hub: WorkerHub, pool: Pool) -> None:
        self._hub, self._pool = hub, pool
        # One clock: when a ping was sent is compared with when the pool saw a worker there crash.
        self.membership = Membership(self.settings.ray_node_lost_after_s, clock=pool.clock.now)
        host = self.settings.cluster_host or self.head_ip
        bound_host, port = await hub.listen_tcp(host, self.settings.cluster_port, self.token)
        self.connect = f"tcp:{bound_host}:{port}"
        log.info("remote workers connect to %s", self.connect)
        await self.refresh()
        self._loop_task = asyncio.get_running_loop().create_task(self._run())

    # --- membership ----------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.ray_poll_s)
            try:
                await self.refresh()
            except Exception:  # a GCS hiccup must not end membership tracking
                log.exception("could not read the Ray cluster's membership")

    async def refresh(self) -> None:
        """One round: joins and departures from Ray's table, then a ping of every member."""
        table = await asyncio.to_thread(ray.nodes)
        alive = {n["NodeID"]: n for n in table if n.get("Alive") and n["NodeID"] != self.head_node_id}
        joined, left = self.membership.update(alive)
        for node_id in left:
            self._lose(node_id, "the node left the Ray cluster")
        for node_id in joined:
            self._background(self._join(alive[node_id]))
        await asyncio.gather(*(self._ping(node) for node in list(self.remote.values())))
        for node_id in self.membership.silent():
            self._lose(node_id, f"its agent did not answer for {self.settings.ray_node_lost_after_s:g} s")

    async def _join(self, info: dict[str, Any]) -> None:
        node_id, address = str(info["NodeID"]), str(info["NodeManagerAddress"])
        budget_mb = int(float(info.get("Resources", {}).get("memory", 0)) // (1024 * 1024))
        agent = self._agent_class.options(
            name=f"agent-{self.server_id}-{node_id}",
            get_if_exists=True,
            num_cpus=0,
            max_restarts=-1,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
        ).remote(node_id, self.connect, self.token, self.settings.zygote_ack_timeout_s)
        try:
            ready = await asyncio.wait_for(agent.ready.remote(), AGENT_START_TIMEOUT_S)
        except (RayError, TimeoutError) as exc:
            # Often a node that just died and is still in Ray's table: say so once, then retry quietly.
            level = logging.DEBUG if node_id in self._join_failed else logging.WARNING
            log.log(level, "node %s (%s): its agent did not start (%s); retrying", node_id, address, exc)
            self._join_failed.add(node_id)
            self.membership.forget(node_id)
            return
        self._join_failed.discard(node_id)
        if not self.membership.joined(node_id) or self._pool is None or self._hub is None:
            return  # it left while its agent started
        spawner = RemoteSpawner(node_id, agent, self._hub, self.shipper)
        remote = RemoteNode(node_id, address, agent, spawner, int(ready.get("pid", 0)))
        self.remote[node_id] = remote
        node = Node(node_id, address, spawner, MemoryLedger(budget_mb), bundles=spawner.bundles)
        self._pool.add_node(node)
        remote.watch = asyncio.wrap_future(agent.watch.remote().future())
        remote.watch.add_done_callback(lambda done: self._watch_ended(done, node_id))
        log.info("node %s (%s) joined: %d MB, agent pid %s", node_id, address, budget_mb, ready.get("pid"))

    def _watch_ended(self, watch: asyncio.Future[Any], node_id: str) -> None:
        if not watch.cancelled():
            watch.exception()  # retrieved: it is the news, not an error to report again
            self._lose(node_id, "its agent died")

    async def _ping(self, node: RemoteNode) -> None:
        sent_s = self.membership.clock()
        with contextlib.suppress(RayError, TimeoutError):
            await asyncio.wait_for(node.agent.ping.remote(), self.settings.ray_poll_s)
            self.membership.heard(node.node_id)
            if self._pool is not None:
                self._pool.vouch(node.node_id, sent_s)

    def _lose(self, node_id: str, reason: str) -> None:
        self.membership.forget(node_id)
        remote = self.remote.pop(node_id, None)
        if remote is None:
            return
        log.warning("node %s (%s) lost: %s; re-placing its workers", node_id, remote.address, reason)
        if remote.watch is not None and not remote.watch.done():
            remote.watch.cancel()
        if self._pool is not None:
            self._pool.remove_node(node_id, reason=f"node {node_id} lost: {reason}")

    def _background(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- reading ---------------------------------------------------------------------------------------

    def node_status(self, node_id: str) -> dict[str, Any]:
        remote = self.remote.get(node_id)
        if remote is None:
            return {"role": "head"} if node_id == self.head_node_id else {}
        return {"role": "agent", "agent_pid": remote.agent_pid, "bundle_fetches": remote.spawner.fetches}

    def summary(self) -> dict[str, Any]:
        return {
            "ray_address": self.settings.ray,
            "head_node_id": self.head_node_id,
            "worker_channel": self.connect,
        }

    async def close(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
        for task in list(self._tasks):
            task.cancel()
        for remote in list(self.remote.values()):
            if remote.watch is not None:
                remote.watch.cancel()
            with contextlib.suppress(RayError, ValueError):
                ray.kill(remote.agent, no_restart=True)
        self.remote.clear()
        await asyncio.to_thread(ray.shutdown)


async def _in_daemon_thread(
    join: Callable[[], tuple[str, str]], timeout_s: float, address: str
) -> tuple[str, str]:
    """Run `join` in a daemon thread (one stuck in ray.init must not keep the process alive at exit)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[tuple[str, str]] = loop.create_future()

    def settle(result: tuple[str, str] | None, error: BaseException | None) -> None:
        if done.done():  # the wait timed out meanwhile
            return
        if error is not None:
            done.set_exception(error)
        else:
            assert result is not None
            done.set_result(result)

    def run() -> None:
        try:
            result = join()
        except BaseException as exc:  # handed to the waiting coroutine
            loop.call_soon_threadsafe(settle, None, exc)
        else:
            loop.call_soon_threadsafe(settle, result, None)

    threading.Thread(target=run, name="ray-join", daemon=True).start()
    try:
        return await asyncio.wait_for(done, timeout_s)
    except TimeoutError:
        raise ClusterUnavailable(
            f"--ray {address}: no Ray cluster answered within {timeout_s:.0f} s (is `ray start --head` "
            "running there, and is its port reachable?)"
        ) from None
    except (ConnectionError, RayError, RuntimeError, ValueError) as exc:
        raise ClusterUnavailable(f"--ray {address}: could not join the Ray cluster: {exc}") from None
