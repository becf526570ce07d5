"""The server's side of one template process (workers/template.py): wait for it to load, ask it to fork.

A link is alive until its socket closes (the template died, was killed or dropped); `closed` resolves then,
which is how its owner learns to forget it. A fork request the template does not acknowledge in time kills
it: a hung template must never hold a cold start, which then takes the zygote's plain path.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from zeroserve.workers.protocol import Header, encode, read_frame
from zeroserve.workers.spec import WorkerSpec
from zeroserve.workers.supervisor import kill_quietly


class TemplateFailed(Exception):
    """The template could not load its bundle or is gone; the message says why."""


@dataclass(frozen=True)
class TemplateInfo:
    key: str
    pid: int
    setup_ms: float
    private_mb: float
    rss_mb: float


class TemplateLink:
    def __init__(
        self, key: str, pid: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.key = key
        self.pid = pid
        self._reader = reader
        self._writer = writer
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._acks: dict[str, asyncio.Future[None]] = {}
        self._read_task: asyncio.Task[None] | None = None

    async def wait_ready(self) -> TemplateInfo:
        try:
            header, _ = await read_frame(self._reader)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            self._close()
            raise TemplateFailed("the template exited while loading the model") from None
        if header.get("type") != "ready":
            self.kill()
            raise TemplateFailed(str(header.get("error", "the template failed to load the model")))
        self._read_task = asyncio.get_running_loop().create_task(self._read_acks())
        return TemplateInfo(
            self.key,
            self.pid,
            float(header.get("setup_ms", 0.0)),
            float(header.get("private_mb", 0.0)),
            float(header.get("rss_mb", 0.0)),
        )

    @property
    def alive(self) -> bool:
        return not self.closed.done()

    async def fork(self, spec: WorkerSpec, timeout_s: float) -> bool:
        """Ask the template to fork this worker; True once it has. False (and the template is killed) if it
        did not acknowledge within `timeout_s` or is gone."""
        if not self.alive:
            return False
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._acks[spec.worker_id] = ack
        self._writer.write(encode({"type": "spawn", "spec": spec.to_json()}))
        await asyncio.wait(
            [ack, asyncio.shield(self.closed)], timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
        self._acks.pop(spec.worker_id, None)
        if ack.done():
            return True
        ack.cancel()
        self.kill()
        return False

    async def _read_acks(self) -> None:
        try:
            while True:
                header: Header = (await read_frame(self._reader))[0]
                ack = self._acks.pop(str(header.get("worker_id")), None)
                if ack is not None and not ack.done():
                    ack.set_result(None)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        self._close()

    def _close(self) -> None:
        self._writer.close()
        if not self.closed.done():
            self.closed.set_result(None)

    def kill(self) -> None:
        """Drop the template now; the workers it forked are the server's children and live on."""
        kill_quietly(self.pid)
        with contextlib.suppress(Exception):
            self._close()
