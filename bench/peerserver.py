"""Starting and stopping one peer server (an app from bench/peers/ in bench/.venv-peers) for a measurement.

The peer runs in its own session; stopping it sends SIGTERM to it and everything it started (Ray starts a
cluster of helper processes), then SIGKILL to whatever is left after a grace period.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench import peerenv

PEERS_DIR = Path(__file__).resolve().parent / "peers"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _signal_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def tree_cpu_s(root: int) -> float:
    """CPU seconds (user + system) used so far by `root` and every live process below it."""
    total = 0
    for pid in [root, *descendants(root)]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat(5)
    return total / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Running:
    url: str  # the peer's /predict
    pid: int  # the peer's top process (its workers are below it)


@contextlib.contextmanager
def peer(
    app: str,
    mode: str,
    checkpoint: Path,
    bundle: Path,
    log_path: Path,
    ready_body: bytes,
    timeout_s: float = 240.0,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Running]:
    """Run bench/peers/`app` and yield where it listens once it answers `ready_body` with 200."""
    port = free_port()
    command = [
        str(peerenv.PYTHON),
        str(PEERS_DIR / app),
        "--mode",
        mode,
        "--checkpoint",
        str(checkpoint),
        "--bundle",
        str(bundle),
        "--port",
        str(port),
    ]
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(PEERS_DIR),
        "RAY_USAGE_STATS_ENABLED": "0",
        "TOKENIZERS_PARALLELISM": "false",
        **(extra_env or {}),
    }
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=log_path.parent,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}/predict"
    try:
        _wait_ready(process, url, ready_body, timeout_s, log_path)
        yield Running(url, process.pid)
    finally:
        family = [process.pid, *descendants(process.pid)]
        _signal_all([process.pid], signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(20)
        _signal_all(family + descendants(process.pid), signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)


def _wait_ready(
    process: subprocess.Popen[bytes], url: str, body: bytes, timeout_s: float, log_path: Path
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"peer exited with {process.returncode}: {_tail(log_path)}")
        try:
            answer = httpx.post(url, content=body, headers={"Content-Type": "application/json"}, timeout=30)
            if answer.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"peer not ready after {timeout_s:.0f} s: {_tail(log_path)}")


def _tail(path: Path) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return " ".join(text.strip().splitlines()[-3:])[-500:]
