"""The soak: `python -m bench.soak [--minutes 30]` runs mixed traffic for a long time and reports what drifts.

Traffic: one client invokes a provisioned (warm) endpoint back to back; another invokes a serverless endpoint
with pauses longer than the idle timeout, so that each of its requests is a cold start; every minute the warm
endpoint is updated (blue/green) to the other of two configs. Reported: the server's RSS at the start, the end
and its peak, every answer that was a 5xx, every request lost (no answer), and the updates that did not end
InService. Not part of `python -m bench` (it takes as long as it is asked to); it writes
bench/results/soak.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tests.server import ServerProcess, deploy, wait_for_endpoint

from bench import REPO_ROOT
from bench.context import Context, log
from bench.models import cache_root
from bench.workload import body, short_reviews
from bench.zsserver import forget

IDLE_TIMEOUT_S = 3.0
UPDATE_EVERY_S = 60.0
SAMPLE_EVERY_S = 10.0


@dataclass
class Tally:
    statuses: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, outcome: str) -> None:
        with self.lock:
            self.statuses[outcome] += 1


def _client_loop(url: str, payload: bytes, pause_s: float, tally: Tally, stop: threading.Event) -> None:
    with httpx.Client(timeout=60) as client:
        while not stop.is_set():
            try:
                reply = client.post(url, content=payload, headers={"Content-Type": "application/json"})
                tally.add(str(reply.status_code) if reply.status_code < 500 else f"5xx {reply.status_code}")
            except httpx.HTTPError as exc:
                tally.add(f"lost {type(exc).__name__}")
            if pause_s:
                stop.wait(pause_s)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _config(sm: Any, name: str, model: str, max_concurrency: int) -> None:
    with contextlib.suppress(Exception):
        sm.delete_endpoint_config(EndpointConfigName=name)
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": model,
                "ServerlessConfig": {
                    "MemorySizeInMB": 2048,
                    "MaxConcurrency": max_concurrency,
                    "ProvisionedConcurrency": 1,
                },
            }
        ],
    )


def soak(minutes: float, out: Path) -> dict[str, Any]:
    ctx = Context(quick=False, plots_dir=out.parent, allow_training=False)
    folder = cache_root() / "soak-data"
    env = {"HF_HUB_OFFLINE": "1", "ZEROSERVE_IDLE_TIMEOUT_S": str(IDLE_TIMEOUT_S)}
    server = ServerProcess(folder, env=env)
    server.log_path = folder / "soak.log"
    server.start(timeout_s=120)
    payload = body(short_reviews()[0])
    tally, updates = Tally(), Counter[str]()
    samples: list[tuple[float, float]] = []
    stop = threading.Event()
    try:
        sm = server.sagemaker()
        for name in ("soak-warm", "soak-cold"):
            forget(sm, name)
        task = {"HF_TASK": "text-classification"}
        deploy(sm, "soak-warm", ctx.sentiment.url, env=task, provisioned=1)
        deploy(sm, "soak-cold", ctx.sentiment.url, env=task)
        for config, concurrency in (("soak-a", 10), ("soak-b", 20)):
            _config(sm, config, "soak-warm", concurrency)
        threads = [
            threading.Thread(
                target=_client_loop,
                args=(f"{server.url}/endpoints/{name}/invocations", payload, pause_s, tally, stop),
                daemon=True,
            )
            for name, pause_s in (("soak-warm", 0.0), ("soak-cold", IDLE_TIMEOUT_S + 1.0))
        ]
        for thread in threads:
            thread.start()
        started = time.monotonic()
        next_update, next_sample, flip = started + UPDATE_EVERY_S, started, 0
        while (now := time.monotonic()) < started + minutes * 60:
            if now >= next_sample:
                samples.append((now - started, _rss_mb(server.pid)))
                next_sample += SAMPLE_EVERY_S
            if now >= next_update:
                config = ("soak-a", "soak-b")[flip % 2]
                flip += 1
                sm.update_endpoint(EndpointName="soak-warm", EndpointConfigName=config)
                final = wait_for_endpoint(sm, "soak-warm", 120)["EndpointStatus"]
                updates[final] += 1
                log(f"soak: update {flip} -> {final}; {dict(tally.statuses)}; rss {samples[-1][1]:.0f} MB")
                next_update += UPDATE_EVERY_S
            time.sleep(0.2)
        stop.set()
        for thread in threads:
            thread.join(60)
        samples.append((time.monotonic() - started, _rss_mb(server.pid)))
    finally:
        stop.set()
        server.stop()
    rss = [mb for _, mb in samples]
    result = {
        "minutes": minutes,
        "answers": dict(tally.statuses),
        "fivexx": sum(v for k, v in tally.statuses.items() if k.startswith("5xx")),
        "lost": sum(v for k, v in tally.statuses.items() if k.startswith("lost")),
        "updates": dict(updates),
        "rss_start_mb": rss[0],
        "rss_end_mb": rss[-1],
        "rss_peak_mb": max(rss),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        "# Soak\n\n"
        f"{minutes:g} minutes of mixed traffic (a warm endpoint back to back, a cold start every "
        f"{IDLE_TIMEOUT_S + 1:.0f} s, an UpdateEndpoint every {UPDATE_EVERY_S:.0f} s), "
        "`python -m bench.soak`.\n\n"
        "| figure | value |\n|---|---:|\n"
        f"| answers by status | {', '.join(f'{k}: {v}' for k, v in sorted(tally.statuses.items()))} |\n"
        f"| 5xx answers | {result['fivexx']} |\n"
        f"| requests lost (no answer) | {result['lost']} |\n"
        f"| updates (final status) | {', '.join(f'{k}: {v}' for k, v in updates.items()) or '-'} |\n"
        f"| server RSS start / end / peak | {rss[0]:.0f} / {rss[-1]:.0f} / {max(rss):.0f} MB |\n"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "soak.md")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(soak(args.minutes, args.out))


if __name__ == "__main__":
    main()
