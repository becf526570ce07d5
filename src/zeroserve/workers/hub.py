"""Where worker processes come from: the zygote subprocess and the socket workers call back on.

The server listens on an abstract Unix socket (no path-length or cleanup trouble). The zygote connects and
says hello; `spawn()` asks it to fork, and the new worker connects on its own and says hello with its id.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
import time

from zeroserve.workers.connection import WorkerConnection
from zeroserve.workers.protocol import Header, encode, read_frame
from zeroserve.workers.spec import WorkerSpec


class SpawnFailed(Exception):
    """The worker could not start or load its model; the message says why."""


class WorkerHub:
    def __init__(self) -> None:
        self.address = f"\0zeroserve-{os.getpid()}-{secrets.token_hex(6)}"
        self._server: asyncio.Server | None = None
        self._zygote_process: asyncio.subprocess.Process | None = None
        self._zygote_writer: asyncio.StreamWriter | None = None
        self._zygote_ready: asyncio.Future[None] | None = None
        self._hellos: dict[str, asyncio.Future[WorkerConnection]] = {}

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._zygote_ready = loop.create_future()
        self._server = await asyncio.start_unix_server(self._on_connect, path=self.address)
        env = dict(os.environ, ZEROSERVE_SOCKET="@" + self.address[1:])
        self._zygote_process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "zeroserve.workers.zygote", env=env, start_new_session=True
        )

    @property
    def zygote_pid(self) -> int | None:
        return self._zygote_process.pid if self._zygote_process is not None else None

    async def wait_zygote(self, timeout_s: float = 60.0) -> None:
        assert self._zygote_ready is not None, "start() first"
        await asyncio.wait_for(asyncio.shield(self._zygote_ready), timeout_s)

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            hello, _ = await read_frame(reader)
        except (asyncio.IncompleteReadError, ValueError):
            writer.close()
            return
        if hello.get("role") == "zygote" and self._zygote_ready is not None:
            self._zygote_writer = writer
            if not self._zygote_ready.done():
                self._zygote_ready.set_result(None)
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                while True:  # "spawned" acknowledgements carry nothing we need; the worker's hello does
                    await read_frame(reader)
            return
        waiter = self._hellos.pop(str(hello.get("worker_id")), None)
        if hello.get("role") != "worker" or waiter is None or waiter.done():
            writer.close()
            return
        waiter.set_result(WorkerConnection(str(hello["worker_id"]), int(hello["pid"]), reader, writer))

    async def spawn(self, spec: WorkerSpec, timeout_s: float) -> tuple[WorkerConnection, Header]:
        """Fork a worker and wait until its model is loaded and warmed up. Returns the connection and the
        ready header (setup_ms, rss_mb)."""
        deadline = time.monotonic() + timeout_s
        await self.wait_zygote(timeout_s)
        waiter: asyncio.Future[WorkerConnection] = asyncio.get_running_loop().create_future()
        self._hellos[spec.worker_id] = waiter
        assert self._zygote_writer is not None
        self._zygote_writer.write(encode({"type": "spawn", "spec": spec.to_json()}))
        try:
            connection = await asyncio.wait_for(waiter, max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            self._hellos.pop(spec.worker_id, None)
            raise SpawnFailed(f"worker {spec.worker_id} did not start within {timeout_s:.0f} s") from None
        try:
            ready = await asyncio.wait_for(connection.wait_ready(), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            connection.kill()
            raise SpawnFailed(f"model did not load within {timeout_s:.0f} s") from None
        except (asyncio.IncompleteReadError, ConnectionError):
            raise SpawnFailed("worker exited while loading the model") from None
        if ready.get("type") != "ready":
            connection.kill()
            raise SpawnFailed(str(ready.get("error", "worker failed to load the model")))
        connection.start()
        return connection, ready

    async def close(self) -> None:
        if self._zygote_writer is not None:
            self._zygote_writer.close()
        if self._zygote_process is not None and self._zygote_process.returncode is None:
            try:
                await asyncio.wait_for(self._zygote_process.wait(), 5.0)
            except TimeoutError:
                self._zygote_process.kill()
                await self._zygote_process.wait()
        if self._server is not None:
            self._server.close()
