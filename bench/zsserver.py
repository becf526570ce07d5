"""A zeroserve server for a benchmark: start it, (re)deploy endpoints, watch workers, read its request log.

The server keeps its data dir under the bench cache, so the deploy-time conversion of each checkpoint is paid
once across sections and runs; only the deploy-time measurement uses a fresh, empty data dir.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from tests.server import ServerProcess, deploy

from bench.models import ModelSource, cache_root

TEXT_CLASSIFICATION = {"HF_TASK": "text-classification"}


def forget(sm: Any, name: str) -> None:
    """Delete the endpoint, endpoint config and model called `name`, whichever exist (no wait)."""
    for call, key in (
        (sm.delete_endpoint, "EndpointName"),
        (sm.delete_endpoint_config, "EndpointConfigName"),
        (sm.delete_model, "ModelName"),
    ):
        with contextlib.suppress(Exception):
            call(**{key: name})


@dataclass
class Zeroserve:
    process: ServerProcess
    sm: Any  # boto3 sagemaker client
    http: httpx.Client

    @property
    def url(self) -> str:
        return self.process.url

    def invocations_url(self, endpoint: str) -> str:
        return f"{self.url}/endpoints/{endpoint}/invocations"

    def redeploy(
        self,
        name: str,
        source: ModelSource,
        *,
        env: Mapping[str, str] | None = None,
        memory_mb: int = 2048,
        max_concurrency: int = 10,
    ) -> float:
        """Delete `name` if it exists, deploy `source` as `name`; return CreateEndpoint -> InService in s."""
        self.delete(name)
        started = time.perf_counter()
        described = deploy(
            self.sm,
            name,
            source.url,
            env={**TEXT_CLASSIFICATION, **(env or {})},
            memory_mb=memory_mb,
            max_concurrency=max_concurrency,
        )
        if described["EndpointStatus"] != "InService":
            raise RuntimeError(
                f"endpoint {name} is {described['EndpointStatus']}: {described.get('FailureReason')}"
            )
        return time.perf_counter() - started

    def delete(self, name: str) -> None:
        forget(self.sm, name)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.sm.describe_endpoint(EndpointName=name)
            except Exception:
                return
            time.sleep(0.05)

    def variant(self, endpoint: str) -> dict[str, Any]:
        status = self.http.get(f"{self.url}/zeroserve/status").json()
        variant: dict[str, Any] = status["endpoints"][endpoint]["variants"][0]
        return variant

    def workers(self, endpoint: str) -> int:
        """Live plus starting workers of the endpoint's first variant."""
        variant = self.variant(endpoint)
        return len(variant["workers"]) + int(variant["starting"])

    def wait_for_workers(self, endpoint: str, count: int, timeout_s: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.workers(endpoint) == count:
                return True
            time.sleep(0.02)
        return False

    def request_log(self, endpoint: str, tail: int) -> list[dict[str, Any]]:
        """The last `tail` request-log lines (server-side queue/model/overhead ms); [] when the server has no
        request log route. The log is written in batches: wait for it to catch up first."""
        time.sleep(0.5)
        answer = self.http.get(f"{self.url}/zeroserve/logs/{endpoint}", params={"tail": tail})
        if answer.status_code != 200:
            return []
        lines: list[dict[str, Any]] = answer.json().get("lines", [])
        return lines

    def metric(self, name: str, endpoint: str) -> float:
        """A counter or gauge from /metrics for `endpoint`, summed over variants and other labels; NaN if
        absent."""
        answer = self.http.get(f"{self.url}/metrics")
        if answer.status_code != 200:
            return float("nan")
        total, found = 0.0, False
        for line in answer.text.splitlines():
            if line.startswith(name) and f'endpoint="{endpoint}"' in line:
                total += float(line.rsplit(" ", 1)[1])
                found = True
        return total if found else float("nan")


@contextlib.contextmanager
def running(
    env: Mapping[str, str] | None = None, data_dir: Path | None = None, log_name: str = "server"
) -> Iterator[Zeroserve]:
    """A zeroserve server (`python -m zeroserve serve --port 0`) for the duration of the block."""
    folder = data_dir or cache_root() / "zeroserve-data"
    process = ServerProcess(folder, env={"HF_HUB_OFFLINE": "1", **(env or {})})
    process.log_path = folder / f"{log_name}.log"
    process.start(timeout_s=120)
    try:
        with httpx.Client(timeout=60) as http:
            yield Zeroserve(process, process.sagemaker(), http)
    finally:
        process.stop()
