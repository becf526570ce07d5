"""Load generation in Python: one open burst (asyncio + httpx, one connection per request) and sequential
requests. The closed-loop throughput load is wrk's (bench/wrk.py): a Python client costs ~1.4 ms CPU per
request on the cores it shares with the server. Loopback only."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlparse

import httpx

from bench.stats import Summary

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def check_loopback(url: str) -> None:
    host = urlparse(url).hostname or ""
    if host not in LOOPBACK and not host.startswith("127."):
        raise ValueError(f"the benchmark only sends load to loopback addresses, not {host}")


@dataclass
class LoadResult:
    clients: int
    duration_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)  # successful (200) requests only
    outcomes: Counter[str] = field(default_factory=Counter)  # "200", "400 ThrottlingException", "lost: ..."
    client_cpu_s: float = 0.0  # CPU the load generator itself used (it shares the machine with the server)

    @property
    def ok(self) -> int:
        return self.outcomes["200"]

    @property
    def sent(self) -> int:
        return sum(self.outcomes.values())

    @property
    def throughput_rps(self) -> float:
        return self.ok / self.duration_s if self.duration_s > 0 else float("nan")

    @property
    def summary(self) -> Summary:
        return Summary.of(self.latencies_ms)

    @property
    def client_cpu_ms_per_request(self) -> float:
        return self.client_cpu_s * 1000 / self.sent if self.sent else float("nan")

    def failures(self) -> int:
        return self.sent - self.ok


def _outcome(response: httpx.Response) -> str:
    if response.status_code == 200:
        return "200"
    code = response.headers.get("x-amzn-errortype", "")
    if not code:
        try:
            code = str(response.json().get("__type") or response.json().get("ErrorCode") or "")
        except Exception:
            code = ""
    return f"{response.status_code} {code.split(':')[0]}".strip()


async def _send(client: httpx.AsyncClient, url: str, body: bytes, result: LoadResult) -> None:
    started = time.perf_counter()
    try:
        response = await client.post(url, content=body, headers={"Content-Type": "application/json"})
    except httpx.HTTPError as exc:
        result.outcomes[f"lost: {type(exc).__name__}"] += 1
        return
    elapsed_ms = (time.perf_counter() - started) * 1000
    outcome = _outcome(response)
    result.outcomes[outcome] += 1
    if outcome == "200":
        result.latencies_ms.append(elapsed_ms)


def _client(connections: int, timeout_s: float) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(limits=limits, timeout=timeout_s)


async def _burst(url: str, body: bytes, count: int, timeout_s: float) -> LoadResult:
    result = LoadResult(count)
    async with _client(count, timeout_s) as client:
        started = time.perf_counter()
        await asyncio.gather(*(_send(client, url, body, result) for _ in range(count)))
        result.duration_s = time.perf_counter() - started
    return result


def burst(url: str, body: bytes, count: int, timeout_s: float = 90.0) -> LoadResult:
    """`count` requests sent at once, each on its own connection; every one ends as an outcome."""
    check_loopback(url)
    return asyncio.run(_burst(url, body, count, timeout_s))


def sequential(client: httpx.Client, url: str, body: bytes, count: int, max_s: float = 60.0) -> list[float]:
    """Latencies (ms) of `count` requests one after another on one keep-alive connection."""
    check_loopback(url)
    latencies: list[float] = []
    deadline = time.monotonic() + max_s
    for _ in range(count):
        if time.monotonic() > deadline:
            break
        started = time.perf_counter()
        response = client.post(url, content=body, headers={"Content-Type": "application/json"})
        elapsed_ms = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:300]}")
        latencies.append(elapsed_ms)
    return latencies
