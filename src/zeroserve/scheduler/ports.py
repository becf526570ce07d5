"""What the scheduler needs of the world outside it, defined once: a worker process (`Connection`) and a
place workers come from (`Spawner`). workers/ and cluster/ provide them; the unit tests provide fakes."""

from __future__ import annotations

import asyncio
from typing import Protocol

from zeroserve.workers.connection import WorkerReply
from zeroserve.workers.generation_call import GenerationCall
from zeroserve.workers.protocol import Header
from zeroserve.workers.spec import WorkerSpec


class Connection(Protocol):
    """A running worker (workers/connection.py): what the pool and router need of it."""

    worker_id: str
    pid: int
    closed: asyncio.Future[None]

    @property
    def inflight(self) -> int: ...

    def submit(
        self, body: bytes, content_type: str, accept: str, custom_attributes: str | None
    ) -> asyncio.Future[WorkerReply]: ...

    def submit_generate(
        self, body: bytes, content_type: str, accept: str, custom_attributes: str | None, *, stream: bool
    ) -> GenerationCall: ...

    def stop(self) -> None: ...

    def kill(self) -> None: ...


class Spawner(Protocol):
    """Where a node's workers come from: workers/hub.py on the server's own machine, cluster/spawner.py on
    another Ray node."""

    async def spawn(self, spec: WorkerSpec, timeout_s: float) -> tuple[Connection, Header]: ...
