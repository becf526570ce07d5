"""Running the local S3 store: one `weed mini` process at a time, supervised.

- A death is noticed at once: the supervisor awaits the process, it does not poll it.
- It is restarted at once, then with doubling delays while starts keep failing (`restart_delay_s`); clients
  keep the same S3 port, the front's. From the third failure in a row the state says `failed` (logged once,
  with weed's last output line) while restarts go on at the longest delay.
- It dies with the server: stopped (SIGTERM, then SIGKILL) by `close()`, and killed by Linux when the server
  dies, even by SIGKILL (PR_SET_PDEATHSIG, set in the child before it runs weed).
- Ready means its S3 port answers an HTTP request.
- Clients reach it through `front.Front` on the fixed S3 port (it turns SSE-KMS into SSE-S3, see there);
  weed's own S3 port is picked free at every start, like its other ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import re
import signal
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from zeroserve.local_s3.front import Front
from zeroserve.local_s3.weed import HOST, WeedLaunch, free_port, plan_launch, port_is_free

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
PROBE_INTERVAL_S = 0.05
FAILED_AFTER = 3  # consecutive failed starts before the state says "failed"
STABLE_RUN_S = 10.0  # a run this long resets the backoff
STOP_TIMEOUT_S = 10.0
LONGEST_DELAY_S = 30.0


def restart_delay_s(failures: int, *, first_s: float = 0.5, longest_s: float = LONGEST_DELAY_S) -> float:
    """Seconds to wait before the next start, after `failures` consecutive starts that did not stay up.
    A store that ran for a while and then died, or the first start that failed, is retried at once."""
    if failures <= 1:
        return 0.0
    return min(first_s * 2.0 ** min(failures - 2, 30), longest_s)


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    # Looked up here, in the parent: a dlopen between fork and exec could wait forever on a loader lock that
    # another thread of the server held at fork time.
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def preexec() -> None:  # runs in the child between fork and exec
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent_pid:  # the server died before prctl took effect
            os._exit(1)

    return preexec


class LocalStore:
    """The store under `folder` answering S3 on 127.0.0.1:`s3_port`; its output is appended to `log_path`."""

    def __init__(
        self,
        weed: str,
        folder: Path,
        s3_port: int,
        log_path: Path,
        *,
        environ: Mapping[str, str] | None = None,
        ready_timeout_s: float = 60.0,
        memory_limit_mb: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._weed = weed
        self._folder = folder
        self.s3_port = s3_port
        self._log_path = log_path
        self._environ = dict(os.environ if environ is None else environ)
        self._ready_timeout_s = ready_timeout_s
        self._memory_limit_mb = memory_limit_mb
        self._clock = clock
        self._process: asyncio.subprocess.Process | None = None
        self._weed_port: int | None = None  # weed's own S3 port while it answers there
        self._front = Front(s3_port, lambda: self._weed_port)
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._failed = asyncio.Event()  # set while the state is "failed": waiting for ready is pointless
        self._closing = False
        self.state = "stopped"  # starting | running | restarting | failed | stopped
        self.restarts = 0
        self.failures = 0  # consecutive starts that did not stay up
        self.last_exit: int | None = None  # returncode; negative: killed by that signal
        self.last_error: str | None = None
        self.ready_s: float | None = None  # how long the last start took to answer

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.s3_port}"

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    def start(self) -> None:
        assert self._task is None, "start() once"
        self._task = asyncio.get_running_loop().create_task(self._supervise(), name="local-s3")

    async def wait_ready(self, timeout_s: float) -> bool:
        """Until the store answers (True), or it has failed to start FAILED_AFTER times in a row or
        `timeout_s` passed (False). Supervision goes on either way."""
        waits = [asyncio.ensure_future(self._ready.wait()), asyncio.ensure_future(self._failed.wait())]
        try:
            await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        return self._ready.is_set()

    def status(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "pid": self.pid,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "last_error": self.last_error,
            "ready_s": self.ready_s,
        }

    async def close(self) -> None:
        """Stop the store (SIGTERM, SIGKILL after STOP_TIMEOUT_S) and the supervision with it."""
        self._closing = True
        await self._stop_process()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._stop_process()  # one started while we were stopping the first
        await self._front.close()
        self.state = "stopped"

    async def _stop_process(self) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            process.kill()
            await process.wait()

    # --- the supervision loop -----------------------------------------------------------------

    async def _supervise(self) -> None:
        self.state = "starting"
        while not self._closing:
            started = self._clock()
            came_up = False
            try:
                if not await self._listen():
                    raise _CannotListen()
                _remove(_recorded(self._folder))  # what a store of a server killed -9 left
                launch = plan_launch(
                    self._weed,
                    self._folder,
                    free_port(),
                    self._environ,
                    memory_limit_mb=self._memory_limit_mb,
                )
                _remove(launch.leftovers)
                _record(self._folder, launch.leftovers)
                came_up = await self._run(launch)
                _remove(launch.leftovers)
            except _CannotListen:
                pass  # a failed start like any other, told in last_error
            except Exception as exc:  # our own side failed (disk full, folder gone): same backoff, logged
                log.exception("local S3 store: supervising it failed")
                self.last_exit, self.last_error = None, f"could not be started: {exc}"
            if self._closing:
                return
            stayed_up = came_up and self._clock() - started >= STABLE_RUN_S
            self.failures = 0 if stayed_up else self.failures + 1
            delay_s = restart_delay_s(self.failures)
            self.restarts += 1
            if self.failures < FAILED_AFTER:
                self.state = "restarting"
                log.warning("local S3 store %s; restarting in %.1f s", self.last_error, delay_s)
            elif self.state != "failed":
                self.state = "failed"
                self._failed.set()
                log.error(
                    "local S3 store failed to start %d times in a row, last: %s; still retrying, "
                    "every %.0f s at most (its output: %s)",
                    self.failures,
                    self.last_error,
                    LONGEST_DELAY_S,
                    self._log_path,
                )
            await asyncio.sleep(delay_s)

    async def _listen(self) -> bool:
        """The front listens on the S3 port (from the first start on; a port taken by another program is
        retried like a store that fails to start)."""
        if self._front.listening:
            return True
        try:
            await self._front.start()
        except OSError as exc:
            self.last_exit, self.last_error = None, f"cannot listen on port {self.s3_port}: {exc}"
            return False
        return True

    async def _run(self, launch: WeedLaunch) -> bool:
        """One process from start to exit; True if it answered on its S3 port in between."""
        with self._log_path.open("ab") as output:
            try:
                process = await asyncio.create_subprocess_exec(
                    *launch.argv,
                    cwd=launch.cwd,
                    env=launch.env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=output,
                    stderr=output,
                    start_new_session=True,  # a Ctrl-C in the terminal reaches the server, which stops us
                    preexec_fn=_die_with_parent(os.getpid()),
                )
            except OSError as exc:
                self.last_exit, self.last_error = None, f"could not be started ({self._weed}: {exc})"
                return False
        self._process = process
        begun = self._clock()
        exited = asyncio.ensure_future(process.wait())
        came_up = await self._until_ready(launch.s3_port, exited)
        why = ""
        if came_up:
            self._weed_port = launch.s3_port
            self.ready_s = round(self._clock() - begun, 3)
            self.state = "running"
            self._failed.clear()
            self._ready.set()
            log.info(
                "local S3 store ready at %s (pid %d, %.2f s)", self.endpoint_url, process.pid, self.ready_s
            )
        elif not exited.done():
            why = f"did not answer on port {launch.s3_port} within {self._ready_timeout_s:.0f} s, killed; "
            process.kill()
        try:
            returncode = await exited
        finally:
            self._ready.clear()
            self._weed_port = None
        self.last_exit = returncode
        self.last_error = f"(pid {process.pid}) {why}exited with {_describe(returncode)}: {self._last_line()}"
        return came_up

    async def _until_ready(self, port: int, exited: asyncio.Future[int]) -> bool:
        deadline = self._clock() + self._ready_timeout_s
        while not exited.done() and self._clock() < deadline:
            if await _answers_http(HOST, port):
                return True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(exited), PROBE_INTERVAL_S)
        return False

    def _last_line(self) -> str:
        try:
            with self._log_path.open("rb") as output:
                output.seek(max(0, output.seek(0, os.SEEK_END) - 4096))
                lines = [line.strip() for line in output.read().decode(errors="replace").splitlines()]
        except OSError:
            return "no output"
        lines = [line for line in lines if line]
        return lines[-1] if lines else "no output"


class _CannotListen(Exception):
    pass


async def _answers_http(host: str, port: int) -> bool:
    """True when something on host:port answers an HTTP request with a status line (any status)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 2.0)
        return line.startswith(b"HTTP/1.")
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def _describe(returncode: int) -> str:
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-returncode).name}"
    return f"status {returncode}"


_LEFTOVERS_FILE = "zeroserve-sockets"
_GRPC_SOCKET = re.compile(r"/tmp/seaweedfs-[a-z0-9]+-grpc-(\d+)\.sock")


def _record(folder: Path, paths: tuple[Path, ...]) -> None:
    (folder / _LEFTOVERS_FILE).write_text("".join(f"{path}\n" for path in paths))


def _recorded(folder: Path) -> tuple[Path, ...]:
    """Sockets listed by an earlier start that are stale now: ours under `folder` (one store per folder), and
    weed's /tmp ones whose port nothing listens on any more."""
    try:
        lines = (folder / _LEFTOVERS_FILE).read_text().splitlines()
    except OSError:
        return ()
    stale = []
    for line in lines:
        path = Path(line)
        if path.parent == folder and path.suffix == ".sock":
            stale.append(path)
            continue
        found = _GRPC_SOCKET.fullmatch(line)
        if found and port_is_free(int(found.group(1))):
            stale.append(path)
    return tuple(stale)


def _remove(paths: tuple[Path, ...]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
