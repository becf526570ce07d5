"""A remote node's Spawner: the bundle onto the node (once), a fork by its agent, and the worker's hello and
readiness on the server's own hub (the worker connects back over TCP). Ray errors become the pool's:
the agent gone is NodeLost (the worker is placed again elsewhere), anything else SpawnFailed."""

from __future__ import annotations

import os
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

from ray.exceptions import RayActorError, RayError

from zeroserve.cluster.bundles import BundleShipper
from zeroserve.scheduler.nodes import NodeLost
from zeroserve.workers.connection import WorkerConnection
from zeroserve.workers.hub import SpawnFailed, WorkerHub
from zeroserve.workers.protocol import Header
from zeroserve.workers.spec import WorkerSpec


class RemoteSpawner:
    def __init__(self, node_id: str, agent: Any, hub: WorkerHub, shipper: BundleShipper) -> None:
        self.node_id = node_id
        self.agent = agent
        self.hub = hub
        self.shipper = shipper
        self.bundles: set[str] = set()  # what this node's cache holds, as its agent said
        self.fetches = 0

    async def spawn(self, spec: WorkerSpec, timeout_s: float) -> tuple[WorkerConnection, Header]:
        remote = replace(spec, bundle_dir=await self._ensure_bundle(spec.bundle_dir))

        async def request(deadline_s: float) -> None:
            await self._call(self.agent.spawn.remote(remote.to_json(), timeout_s))

        return await self.hub.spawn_with(spec, timeout_s, request, killer=self._kill)

    async def _ensure_bundle(self, bundle_dir: str) -> str:
        ref = await self.shipper.ref_for(bundle_dir)
        path, fetched = await self._call(
            self.agent.ensure_bundle.remote(os.path.basename(bundle_dir.rstrip("/")), [ref])
        )
        self.bundles.add(os.path.basename(bundle_dir.rstrip("/")))
        self.fetches += int(fetched)
        return str(path)

    async def _call(self, ref: Any) -> Any:
        try:
            return await ref
        except RayActorError as exc:
            raise NodeLost(f"the agent of node {self.node_id} is gone: {type(exc).__name__}") from None
        except RayError as exc:
            raise SpawnFailed(f"node {self.node_id}: {_last_line(exc)}") from None

    def _kill(self, pid: int) -> None:
        # Fire and forget: if the agent is gone, so is the worker (PDEATHSIG through the zygote). The answer
        # is taken (and dropped) so that Ray does not report an agent's death as an unhandled error.
        self.agent.kill.remote(pid).future().add_done_callback(_ignore)


def _ignore(done: Future[Any]) -> None:
    done.exception()


def _last_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
