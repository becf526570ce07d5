"""Section: recovery after a fault under steady load. One client invokes a provisioned sentiment endpoint back
to back while each kind of process is killed in turn (a worker, the zygote, then a worker is SIGSTOPped, then
the server itself is killed -9 and restarted on the same data dir). Measured: how long serving stopped and
which answers were not 200. The same faults are asserted in tests/integration/test_chaos.py."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from tests.server import ServerProcess, deploy

from bench.context import Context, log
from bench.models import cache_root
from bench.report import Section, Table, Target
from bench.stats import fmt
from bench.workload import body, short_reviews

NAME = "recovery"
TITLE = "9. Recovery after a fault, under steady load"
ENDPOINT = "recovery"
TIMEOUT_S = 2  # the invocation timeout, so that a stopped worker is noticed in a bench-sized time
TARGET_S = 2.0


@dataclass
class Steady:
    url: str
    payload: bytes
    answers: list[tuple[float, int, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                try:
                    reply = client.post(
                        self.url, content=self.payload, headers={"Content-Type": "application/json"}
                    )
                    error = "" if reply.status_code == 200 else str(reply.json().get("__type"))
                    self.answers.append((time.monotonic(), reply.status_code, error))
                except httpx.HTTPError as exc:
                    self.answers.append((time.monotonic(), 0, type(exc).__name__))
                    time.sleep(0.02)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        return thread

    def stop(self, thread: threading.Thread) -> None:
        self._stop.set()
        thread.join(30)

    def outage_s(self, since_s: float) -> float:
        oks = [since_s] + [t for t, status, _ in list(self.answers) if t >= since_s and status == 200]
        return max((b - a for a, b in itertools.pairwise(oks)), default=0.0)

    def not_ok(self, since_s: float) -> list[str]:
        return [
            error or str(status) for t, status, error in list(self.answers) if t >= since_s and status != 200
        ]

    def settle(self, since_s: float, count: int = 20, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            recent = [a for a in list(self.answers) if a[0] >= since_s][-count:]
            if len(recent) == count and all(status == 200 for _, status, _ in recent):
                return
            time.sleep(0.02)
        raise RuntimeError(f"not serving steadily {timeout_s} s after the fault")


def _status(server: ServerProcess) -> dict[str, Any]:
    return dict(httpx.get(f"{server.url}/zeroserve/status", timeout=10).json())


def _worker_pid(server: ServerProcess) -> int:
    return int(_status(server)["endpoints"][ENDPOINT]["variants"][0]["workers"][0]["pid"])


def _start(folder: Any) -> ServerProcess:
    env = {"HF_HUB_OFFLINE": "1", "ZEROSERVE_INVOCATION_TIMEOUT_S": str(TIMEOUT_S)}
    process = ServerProcess(folder, env=env)
    process.log_path = folder / f"{NAME}.log"
    return process.start(timeout_s=120)


def run(ctx: Context) -> Section:
    section = Section(NAME, TITLE)
    folder = cache_root() / "recovery-data"  # its own: a kill -9 here must not touch the other sections' dir
    payload = body(short_reviews()[0])
    rows: list[list[str]] = []
    server = _start(folder)
    try:
        _forget(server.sagemaker())
        described = deploy(
            server.sagemaker(),
            ENDPOINT,
            ctx.sentiment.url,
            env={"HF_TASK": "text-classification"},
            provisioned=1,
        )
        if described["EndpointStatus"] != "InService":
            raise RuntimeError(f"{ENDPOINT}: {described.get('FailureReason')}")
        load = Steady(f"{server.url}/endpoints/{ENDPOINT}/invocations", payload)
        thread = load.start()
        load.settle(time.monotonic())
        faults: list[tuple[str, Callable[[], int], signal.Signals, float]] = [
            ("worker, kill -9", lambda: _worker_pid(server), signal.SIGKILL, 0.0),
            ("zygote, kill -9", lambda: int(_status(server)["zygote_pid"]), signal.SIGKILL, 0.0),
            ("worker, SIGSTOP (hung)", lambda: _worker_pid(server), signal.SIGSTOP, float(TIMEOUT_S)),
        ]
        for label, victim, signum, expected_s in faults:
            log(f"recovery: {label}")
            pid = victim()
            sent_before = len(load.answers)
            at = time.monotonic()
            os.kill(pid, signum)
            load.settle(at)
            outage = load.outage_s(at)
            lost = load.not_ok(at)
            rows.append(
                [label, fmt((outage - expected_s) * 1000), str(len(load.answers) - sent_before), _count(lost)]
            )
        load.stop(thread)
    finally:
        log("recovery: server, kill -9 and restart")
        os.kill(server.pid, signal.SIGKILL)
        server.stop()
    killed = time.monotonic()
    server = _start(folder)
    try:
        load = Steady(f"{server.url}/endpoints/{ENDPOINT}/invocations", payload)
        thread = load.start()
        load.settle(killed)
        rows.append(
            [
                "server, kill -9 + restart",
                fmt(load.outage_s(killed) * 1000),
                str(len(load.answers)),
                _count(load.not_ok(killed)),
            ]
        )
        load.stop(thread)
        _forget(server.sagemaker())
    finally:
        server.stop()
    section.intro = (
        "One client invokes a provisioned MiniLM sentiment endpoint back to back (short review, HTTP) while "
        f"one process is killed at a time. Invocation timeout {TIMEOUT_S} s for this section."
    )
    section.tables.append(
        Table(
            ["fault", "serving stopped ms", "answers during recovery", "answers other than 200"],
            rows,
            note="`serving stopped` is the longest gap between successful answers from the fault until 20 "
            "successes in a row; for SIGSTOP the invocation timeout it must wait out is subtracted. A killed "
            "worker's in-flight request is retried once on a fresh worker; a hung one's requests get "
            "ModelError (timed out). The server row includes the new server's start (a new process: Python "
            "and its imports).",
        )
    )
    process_rows = rows[:3]
    worst_ms = max(float(r[1].replace(",", "")) for r in process_rows)
    section.targets.append(
        Target(
            "recovery after any one process is killed -9",
            "serving again within 2 s; no request lost but those on the killed worker, retried once",
            f"worst {worst_ms:.0f} ms (worker, zygote, hung worker)",
            worst_ms <= TARGET_S * 1000,
        )
    )
    section.headline = {"recovery after kill -9 of a worker / the zygote": f"{rows[0][1]} / {rows[1][1]} ms"}
    return section


def _forget(sm: Any) -> None:
    """Remove this section's endpoint, config and model (its data dir keeps the converted bundle)."""
    for call, key in (
        (sm.delete_endpoint, "EndpointName"),
        (sm.delete_endpoint_config, "EndpointConfigName"),
        (sm.delete_model, "ModelName"),
    ):
        with contextlib.suppress(Exception):
            call(**{key: ENDPOINT})


def _count(errors: list[str]) -> str:
    if not errors:
        return "none"
    return ", ".join(f"{name} x{errors.count(name)}" for name in sorted(set(errors)))
