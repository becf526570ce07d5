"""The zygote's supervisor: starts it, notices its death at once, replaces it with backoff, and re-issues
spawn requests the dead (or hung) zygote never acknowledged.

Death is noticed two ways, both events, never a poll: the child watcher's `wait()` returning and the zygote's
control socket closing. A zygote that does not acknowledge a spawn within `ack_timeout_s` is taken for hung
(SIGSTOP, a deadlock) and killed, which turns a hang into a death. Workers do not die with the zygote: the
server is their subreaper (see `adopt_orphans`), so a zygote crash costs only the cold starts in flight,
and those are re-sent to its successor within their deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from zeroserve.metrics.events import NullObserver, Observer, WorkerEvent, WorkerEventKind
from zeroserve.workers.protocol import Header, encode, read_frame

log = logging.getLogger("zeroserve.zygote")
_PR_SET_CHILD_SUBREAPER = 36


def adopt_orphans() -> bool:
    """Make this process the subreaper of its descendants: a worker whose zygote died becomes our child
    instead of init's, so it can still die with us (PDEATHSIG) and we reap it. False where Linux says no."""
    try:
        return int(ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


class ZygoteUnavailable(Exception):
    """No zygote could take a spawn request before the deadline; the message says why."""


@dataclass
class Backoff:
    """Delay before restarting a process that died: none after a healthy run, doubling while it keeps dying
    soon after start; after `give_up_after` such deaths in a row it is reported as failing (restarts go on at
    the capped delay, so a passing cause heals). Pure: the caller passes the times."""

    base_s: float = 0.05
    cap_s: float = 5.0
    healthy_after_s: float = 10.0
    give_up_after: int = 5
    failures: int = 0

    def record_death(self, started_s: float, died_s: float) -> float:
        if died_s - started_s >= self.healthy_after_s:
            self.failures = 0
        self.failures += 1
        return 0.0 if self.failures == 1 else min(self.cap_s, self.base_s * 2 ** (self.failures - 2))

    @property
    def failing(self) -> bool:
        return self.failures >= self.give_up_after


@dataclass
class _Zygote:
    """One incarnation of the zygote process."""

    process: asyncio.subprocess.Process
    started_s: float
    ready: asyncio.Future[None]
    died: asyncio.Future[None]
    writer: asyncio.StreamWriter | None = None
    acks: dict[str, asyncio.Future[None]] = field(default_factory=dict)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()


class ZygoteSupervisor:
    def __init__(
        self,
        env: dict[str, str],
        *,
        observer: Observer | None = None,
        ack_timeout_s: float = 3.0,
        start_timeout_s: float = 120.0,
        backoff: Backoff | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._env = env
        self.observer: Observer = observer or NullObserver()
        self.ack_timeout_s = ack_timeout_s
        self.start_timeout_s = start_timeout_s
        self.backoff = backoff or Backoff()
        self._clock = clock
        self._current: _Zygote | None = None
        self._changed: asyncio.Future[None] | None = None
        self._closing = False
        self._watcher: asyncio.Task[None] | None = None
        self.restarts = 0
        self.last_error = ""

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    @property
    def pid(self) -> int | None:
        return self._current.process.pid if self._current is not None else None

    async def start(self) -> None:
        await self._launch()

    async def _launch(self) -> None:
        loop = asyncio.get_running_loop()
        # Our pid lets the zygote tell whether we died before its PDEATHSIG was in place (zygote.run).
        env = dict(self._env, ZEROSERVE_PARENT_PID=str(os.getpid()))
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "zeroserve.workers.zygote", env=env, start_new_session=True
        )
        zygote = _Zygote(process, self._now(), loop.create_future(), loop.create_future())
        self._current = zygote
        self._wake()
        self._watcher = loop.create_task(self._watch(zygote))
        # One that never says hello (stuck importing the runtime stack) is hung too: replace it.
        loop.call_later(self.start_timeout_s, lambda: None if zygote.ready.done() else zygote.kill())

    async def _watch(self, zygote: _Zygote) -> None:
        code = await zygote.process.wait()
        self._bury(zygote)
        if self._closing:
            return
        delay_s = self.backoff.record_death(zygote.started_s, self._now())
        self.restarts += 1
        self.last_error = f"the zygote process exited with code {code}"
        log.warning("%s; restarting it in %.2f s (restart %d)", self.last_error, delay_s, self.restarts)
        failing = self.backoff.failing
        kind = WorkerEventKind.ZYGOTE_FAILING if failing else WorkerEventKind.ZYGOTE_RESTARTED
        self.observer.worker(WorkerEvent("", "", kind, reason=self.last_error))
        if delay_s:
            await asyncio.sleep(delay_s)
        if not self._closing:
            try:
                await self._launch()
            except OSError as exc:  # cannot even exec python: say so to every spawn, try again later
                self.last_error = f"the zygote could not be started: {exc}"
                log.error(self.last_error)
                loop = asyncio.get_running_loop()
                self._watcher = loop.create_task(self._retry_later())

    async def _retry_later(self) -> None:
        while not self._closing:
            await asyncio.sleep(self.backoff.cap_s)
            try:
                await self._launch()
                return
            except OSError as exc:
                self.last_error = f"the zygote could not be started: {exc}"

    def _bury(self, zygote: _Zygote) -> None:
        if not zygote.died.done():
            zygote.died.set_result(None)
        if zygote.writer is not None:
            zygote.writer.close()
        if self._current is zygote:
            self._wake()

    def _wake(self) -> None:
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)
        self._changed = None

    # --- the zygote's control connection (the hub hands it over on hello) ---------------------

    async def serve(self, hello: Header, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        zygote = self._current
        if zygote is None or int(hello.get("pid", -1)) != zygote.process.pid or zygote.died.done():
            writer.close()  # a late hello from a zygote already replaced
            return
        zygote.writer = writer
        if not zygote.ready.done():
            zygote.ready.set_result(None)
        self._wake()
        try:
            while True:
                header, _ = await read_frame(reader)
                ack = zygote.acks.pop(str(header.get("worker_id")), None)
                if ack is not None and not ack.done():
                    ack.set_result(None)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        # Its socket closed: dead or broken either way; the watcher sees the exit and replaces it.
        if not self._closing:
            zygote.kill()

    # --- spawn requests ------------------------------------------------------------------------

    async def _ready(self, deadline_s: float) -> _Zygote:
        while True:
            zygote = self._current
            if zygote is not None and zygote.ready.done() and not zygote.died.done():
                return zygote
            if self._closing:
                raise ZygoteUnavailable("the server is shutting down")
            remaining = deadline_s - self._now()
            if remaining <= 0:
                detail = f" ({self.last_error})" if self.last_error else ""
                raise ZygoteUnavailable(f"no zygote process was ready to fork a worker{detail}")
            if self.backoff.failing and self.last_error:
                raise ZygoteUnavailable(
                    f"the zygote process keeps dying ({self.last_error}, {self.backoff.failures} times in a "
                    "row); see the server log"
                )
            if self._changed is None:
                self._changed = asyncio.get_running_loop().create_future()
            waits: list[asyncio.Future[None]] = [asyncio.shield(self._changed)]
            if zygote is not None:
                waits += [asyncio.shield(zygote.ready), asyncio.shield(zygote.died)]
            await asyncio.wait(waits, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)

    async def wait_ready(self, deadline_s: float) -> None:
        """Until a zygote can take spawn requests; ZygoteUnavailable past the deadline."""
        await self._ready(deadline_s)

    async def request_spawn(
        self, worker_id: str, spec: Header, deadline_s: float, role: str = "worker"
    ) -> None:
        """Have a zygote fork this worker (or, with role `template`, a template): returns once one
        acknowledged the fork. A zygote that dies first gets the request re-sent to its successor; one that
        does not answer in time is killed (hung)."""
        while True:
            zygote = await self._ready(deadline_s)
            ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            zygote.acks[worker_id] = ack
            assert zygote.writer is not None
            zygote.writer.write(encode({"type": "spawn", "spec": spec, "role": role}))
            timeout_s = max(0.0, min(self.ack_timeout_s, deadline_s - self._now()))
            full_wait = timeout_s >= self.ack_timeout_s
            await asyncio.wait(
                [ack, asyncio.shield(zygote.died)], timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
            zygote.acks.pop(worker_id, None)
            if ack.done():
                return
            ack.cancel()
            if not zygote.died.done() and full_wait:
                log.warning(
                    "zygote %d did not answer a spawn request in %.1f s: killing it",
                    zygote.process.pid,
                    self.ack_timeout_s,
                )
                zygote.kill()
                await asyncio.shield(zygote.died)

    async def close(self) -> None:
        self._closing = True
        self._wake()
        zygote = self._current
        if zygote is None:
            return
        if zygote.writer is not None:
            zygote.writer.close()  # the zygote takes its process group down on EOF
        if zygote.process.returncode is None:
            try:
                await asyncio.wait_for(zygote.process.wait(), 5.0)
            except TimeoutError:
                zygote.kill()
                await zygote.process.wait()
        if self._watcher is not None:
            self._watcher.cancel()


def kill_quietly(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)
