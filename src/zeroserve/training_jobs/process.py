"""One training job's process: its own process group (so its children die with it), niced below serving,
with a data-size limit and PDEATHSIG; its output lines go to a callback as they come.

Death is noticed by awaiting the process, never by polling. Stopping sends SIGTERM to the whole group and
SIGKILL after a grace period; when the entry point exits, anything it left behind in its group is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import resource
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_PR_SET_PDEATHSIG = 1
_LINE_LIMIT_BYTES = 1024 * 1024
NICENESS = 10

LineCallback = Callable[[str, str], None]  # (stream name "stdout" | "stderr", line without newline)


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stop_requested: bool
    timed_out: bool

    @property
    def signal_name(self) -> str | None:
        if self.returncode >= 0:
            return None
        try:
            return signal.Signals(-self.returncode).name
        except ValueError:
            return f"signal {-self.returncode}"


def _child_setup(memory_limit_mb: int) -> Callable[[], None]:
    def setup() -> None:  # runs in the child between fork and exec: keep it to system calls
        with contextlib.suppress(OSError):
            os.nice(NICENESS)
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if memory_limit_mb > 0:
            # RLIMIT_DATA, not RLIMIT_AS: torch reserves large address ranges it never touches.
            limit = memory_limit_mb * 1024 * 1024
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))

    return setup


class JobProcess:
    def __init__(
        self,
        command: list[str],
        *,
        cwd: Path,
        env: dict[str, str],
        on_line: LineCallback,
        memory_limit_mb: int = 0,
        stop_grace_s: float = 10.0,
    ) -> None:
        self.command = command
        self.cwd = cwd
        self.env = env
        self.on_line = on_line
        self.memory_limit_mb = memory_limit_mb
        self.stop_grace_s = stop_grace_s
        self._process: asyncio.subprocess.Process | None = None
        self._stop_requested = False
        self._killer: asyncio.TimerHandle | None = None
        self._readers: list[asyncio.Future[None]] = []

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    async def start(self) -> int:
        """Start the process; returns its pid, which is also its process group id."""
        self._process = await asyncio.create_subprocess_exec(
            *self.command,
            cwd=self.cwd,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_child_setup(self.memory_limit_mb),
            limit=_LINE_LIMIT_BYTES,
        )
        assert self._process.stdout is not None and self._process.stderr is not None
        self._readers = [
            asyncio.ensure_future(self._pump(self._process.stdout, "stdout")),
            asyncio.ensure_future(self._pump(self._process.stderr, "stderr")),
        ]
        if self._stop_requested:
            self.stop()
        return self._process.pid

    async def wait(self, max_runtime_s: float) -> Outcome:
        """Until the process exits (stopped after `max_runtime_s`); its group is killed afterwards."""
        assert self._process is not None, "start() first"
        timed_out = False
        try:
            await asyncio.wait_for(asyncio.shield(self._process.wait()), timeout=max_runtime_s)
        except TimeoutError:
            timed_out = True
            self.stop()
            await self._process.wait()
        except asyncio.CancelledError:
            self.kill()
            raise
        finally:
            if self._killer is not None:
                self._killer.cancel()
            self._kill_group()  # whatever the entry point left running
            await asyncio.gather(*self._readers, return_exceptions=True)
        return Outcome(int(self._process.returncode or 0), self._stop_requested, timed_out)

    def stop(self) -> None:
        """SIGTERM to the group now, SIGKILL after the grace period (SageMaker gives 120 s; we give less)."""
        if self._process is None or self._process.returncode is not None:
            self._stop_requested = True
            return
        self._stop_requested = True
        self._signal_group(signal.SIGTERM)
        self._killer = asyncio.get_running_loop().call_later(self.stop_grace_s, self.kill)

    def kill(self) -> None:
        self._signal_group(signal.SIGKILL)

    def _kill_group(self) -> None:
        self._signal_group(signal.SIGKILL)

    def _signal_group(self, sig: signal.Signals) -> None:
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, sig)

    async def _pump(self, stream: asyncio.StreamReader, name: str) -> None:
        while True:
            try:
                raw = await stream.readline()
            except ValueError:  # a line longer than the limit: take it in pieces
                raw = await stream.read(_LINE_LIMIT_BYTES)
            if not raw:
                return
            self.on_line(name, raw.decode("utf-8", errors="replace").rstrip("\r\n"))


def kill_leftover_job(pgid: int, marker: str) -> int:
    """Kill what is left of a job's process group from before a server restart; returns how many.

    A pgid can be reused after its processes are gone, so only processes that carry the job's own
    environment marker (TRAINING_JOB_ARN=...) are killed."""
    killed = 0
    needle = marker.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) != pgid or needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            os.kill(int(entry.name), signal.SIGKILL)
            killed += 1
        except (OSError, ValueError, IndexError):
            continue
    return killed
