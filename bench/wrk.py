"""Closed-loop load from `wrk`, a compiled HTTP benchmarking client: N keep-alive connections, each sends
its next request when the last one is answered, for a fixed time. It costs a small fraction of the CPU per
request that a Python client does, which matters here: the load generator shares the cores with the server
it measures, and an expensive one caps (and flattens) every target's throughput alike.

wrk's own CPU (every thread, user + system) is the kernel's account of the process when it is reaped, reported
per request, so every table says what the load generator took from the machine.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.load import check_loopback

SCRIPT = Path(__file__).resolve().parent / "wrk.lua"
_MARKER = "ZS_WRK_SUMMARY "


class WrkMissing(RuntimeError):
    """wrk is not installed; `make bench` installs it (Debian package `wrk`)."""


def binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise WrkMissing(
            "wrk is not installed: `make bench` installs it with apt-get (Debian package `wrk`); "
            "or install it yourself (`sudo apt-get install wrk`, or build github.com/wg/wrk) and put it on "
            "PATH"
        )
    return found


@dataclass(frozen=True)
class WrkResult:
    """One wrk run. Latencies in ms; wrk's histogram covers every response it read (non-200 included)."""

    clients: int
    duration_s: float
    requests: int  # responses read
    non_200: int  # responses with status >= 400 (wrk's "Non-2xx or 3xx")
    socket_errors: int  # connect/read/write errors and timeouts: requests without an answer
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    client_cpu_s: float

    @property
    def ok(self) -> int:
        return self.requests - self.non_200

    @property
    def throughput_rps(self) -> float:
        return self.ok / self.duration_s if self.duration_s > 0 else math.nan

    @property
    def client_cpu_ms_per_request(self) -> float:
        return self.client_cpu_s * 1000 / self.requests if self.requests else math.nan

    def failures(self) -> int:
        return self.non_200 + self.socket_errors


def closed_loop(
    url: str, bodies: Sequence[bytes], clients: int, duration_s: float, *, timeout_s: float = 30.0
) -> WrkResult:
    """`clients` connections for `duration_s`, rounded to whole seconds (wrk's unit)."""
    check_loopback(url)
    if any(b"\n" in body for body in bodies):
        raise ValueError("wrk bodies are read one per line: a body must not contain a newline")
    threads = max(1, min(clients, os.cpu_count() or 1))
    with tempfile.NamedTemporaryFile("wb", suffix=".jsonl", delete=False) as file:
        file.write(b"\n".join(bodies) + b"\n")
        bodies_path = file.name
    command = [
        binary(),
        f"-t{threads}",
        f"-c{clients}",
        f"-d{max(1, round(duration_s))}s",
        f"--timeout={max(1, round(timeout_s))}s",
        "-s",
        str(SCRIPT),
        url,
        "--",
        bodies_path,
    ]
    try:
        stdout, stderr, returncode, cpu_s = _run(command, duration_s + timeout_s + 30)
    finally:
        os.unlink(bodies_path)
    summary = next((line[len(_MARKER) :] for line in stdout.splitlines() if line.startswith(_MARKER)), None)
    if returncode != 0 or summary is None:
        raise RuntimeError(f"wrk failed ({returncode}): {(stderr or stdout).strip()[-500:]}")
    raw = json.loads(summary)
    errors = sum(int(raw[key]) for key in ("connect", "read", "write", "timeout"))
    answered = int(raw["requests"]) > 0  # with no answer, wrk's histogram reads 0: no latency at all
    ms = {key: raw[key] / 1000 if answered else math.nan for key in ("p50_us", "p90_us", "p99_us", "max_us")}
    return WrkResult(
        clients=clients,
        duration_s=raw["duration_us"] / 1e6,
        requests=int(raw["requests"]),
        non_200=int(raw["status"]),
        socket_errors=errors,
        p50_ms=ms["p50_us"],
        p90_ms=ms["p90_us"],
        p99_ms=ms["p99_us"],
        mean_ms=raw["mean_us"] / 1000 if answered else math.nan,
        max_ms=ms["max_us"],
        client_cpu_s=cpu_s,
    )


def _run(command: list[str], timeout_s: float) -> tuple[str, str, int, float]:
    """(stdout, stderr, exit status, CPU seconds): the CPU is the kernel's own account of the wrk process,
    every thread, user + system, read when it is reaped (wait4), at microsecond resolution."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, stdout=out, stderr=err)
        try:
            _, status, usage = _wait4(process.pid, timeout_s)
        except BaseException:
            process.kill()
            os.waitpid(process.pid, 0)
            raise
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        out.seek(0)
        err.seek(0)
        return (
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            process.returncode,
            usage.ru_utime + usage.ru_stime,
        )


def _wait4(pid: int, timeout_s: float) -> tuple[int, int, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        reaped, status, usage = os.wait4(pid, os.WNOHANG)
        if reaped:
            return reaped, status, usage
        if time.monotonic() > deadline:
            raise TimeoutError(f"wrk did not finish in {timeout_s:.0f} s")
        time.sleep(0.05)
