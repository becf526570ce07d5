"""Section: many machines (Ray). A real Ray cluster of one-CPU nodes on this machine
(ray.cluster_utils.Cluster, everything on loopback) with the server joined to it (`--ray`): cold start and
warm latency on a remote node's worker vs a head-local one (the remote hop is TCP, the local one a Unix
socket), throughput with workers on one node vs two, and how long an endpoint whose only worker was on a
node that is killed (raylet and its processes, -9) stops answering. The nodes share this machine's two
cores, so two nodes show the overhead of the hop, not a speed-up."""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Iterator
from typing import Any

import httpx
from tests.server import ServerProcess, deploy

from bench import load, wrk
from bench.context import Context, log
from bench.models import cache_root
from bench.recovery import Steady
from bench.report import Section, Table, Target
from bench.stats import Summary, fmt
from bench.workload import body, short_reviews
from bench.zsserver import forget

NAME = "cluster"
TITLE = "13. Many machines: Ray cluster nodes on this machine"
GIB = 1024**3
NODE_ARGS: dict[str, Any] = {
    "num_cpus": 1,
    "object_store_memory": 200 * 1024**2,
    "memory": 2 * GIB,  # one 2048 MB worker per node
    "node_ip_address": "127.0.0.1",
}
IDLE_TIMEOUT_S = 0.3
TEXT = "A warm, funny and surprisingly moving film."
HOP_TARGET_MS = 0.5
RECOVERY_TARGET_S = 5.0


@contextlib.contextmanager
def _server(
    name: str, address: str | None, budget_mb: int, data: str = "near", **env: str
) -> Iterator[ServerProcess]:
    # Two data dirs, for the two servers running at once; each converts the bundle once and keeps it.
    folder = cache_root() / f"cluster-data-{data}"
    args = ["--memory-budget-mb", str(budget_mb)] + (["--ray", address] if address else [])
    process = ServerProcess(folder, env={"HF_HUB_OFFLINE": "1", **env}, args=args)
    process.log_path = folder / f"{name}.log"
    process.start(timeout_s=120)
    try:
        yield process
    finally:
        with contextlib.suppress(Exception):  # the next server on this data dir restores nothing
            sm = process.sagemaker()
            for endpoint in sm.list_endpoints()["Endpoints"]:
                forget(sm, endpoint["EndpointName"])
        process.stop()


def _status(server: ServerProcess) -> dict[str, Any]:
    return dict(httpx.get(f"{server.url}/zeroserve/status", timeout=10).json())


def _workers(server: ServerProcess, endpoint: str) -> list[dict[str, Any]]:
    variants = _status(server)["endpoints"].get(endpoint, {}).get("variants", [])
    return [w for v in variants for w in v["workers"]]


def _wait(predicate: Any, timeout_s: float, what: str, server: ServerProcess | None = None) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if found := predicate():
            return found
        time.sleep(0.02)
    state = f"; status: {_status(server)}" if server is not None else ""
    raise RuntimeError(f"timed out waiting for {what}{state}")


def _deploy(server: ServerProcess, ctx: Context, name: str, **kwargs: Any) -> None:
    """Deploy `name` afresh (data dirs are reused by this section's servers: a bundle is converted once)."""
    forget(server.sagemaker(), name)
    _wait(lambda: name not in _status(server)["endpoints"], 30, f"{name} deleted")
    described = deploy(
        server.sagemaker(), name, ctx.sentiment.url, env={"HF_TASK": "text-classification"}, **kwargs
    )
    if described["EndpointStatus"] != "InService":
        raise RuntimeError(f"{name}: {described.get('FailureReason')}")


def _cold_and_warm(
    near: ServerProcess, far: ServerProcess, ctx: Context
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Cold starts and warm requests, alternating between a server whose workers fork on the head and one
    whose workers fork on another node, so both see the same (shared, noisy) machine at the same time."""
    endpoint = "cold"
    for server in (near, far):
        _deploy(server, ctx, endpoint, memory_mb=2048)
    urls = {server: f"{server.url}/endpoints/{endpoint}/invocations" for server in (near, far)}
    colds: dict[ServerProcess, list[float]] = {near: [], far: []}
    warms: dict[ServerProcess, list[float]] = {near: [], far: []}
    with httpx.Client(timeout=60) as client:
        for _ in range(ctx.pick(20, 4)):
            for server in (near, far):
                _wait(lambda s=server: not _workers(s, endpoint), 30, "no worker", server)
                time.sleep(0.05)
                colds[server].append(load.sequential(client, urls[server], body(TEXT), 1)[0])
                _check_placement(server, endpoint, remote=server is far)
        for _ in range(ctx.pick(600, 50)):
            for server in (near, far):  # back to back: neither worker idles out
                warms[server] += load.sequential(client, urls[server], body(TEXT), 1)
    return colds[near], colds[far], warms[near], warms[far]


def _server_overhead_ms(server: ServerProcess, endpoint: str, count: int) -> list[float]:
    """Server latency minus in-worker model latency of the last `count` warm requests (the request log):
    the socket hop to the worker is in it, the HTTP client's noise is not."""
    time.sleep(0.5)  # the log is written in batches
    answer = httpx.get(f"{server.url}/zeroserve/logs/{endpoint}", params={"tail": count}, timeout=30)
    return [float(line["overhead_ms"]) for line in answer.json().get("lines", []) if not line.get("cold")]


def _check_placement(server: ServerProcess, endpoint: str, remote: bool) -> None:
    answer = _status(server)
    head = answer["cluster"]["head_node_id"]
    placed = {w["node_id"] != head for v in answer["endpoints"][endpoint]["variants"] for w in v["workers"]}
    if placed != {remote}:
        raise RuntimeError(f"the worker was not where this run expects it (remote={remote}): {answer}")


def _throughput(one_node: ServerProcess, two_nodes: ServerProcess, ctx: Context) -> tuple[float, float]:
    """req/s at 32 clients, median of alternating rounds on the two servers."""
    bodies = [body(t) for t in short_reviews()]
    rounds: dict[ServerProcess, list[float]] = {one_node: [], two_nodes: []}
    for turn in range(ctx.pick(4, 1)):
        for server in (one_node, two_nodes) if turn % 2 == 0 else (two_nodes, one_node):
            url = f"{server.url}/endpoints/tput/invocations"
            wrk.closed_loop(url, bodies, 32, 1.0)  # warm-up
            result = wrk.closed_loop(url, bodies, 32, ctx.seconds(4.0, 1.5))
            rounds[server].append(result.throughput_rps)
    return statistics.median(rounds[one_node]), statistics.median(rounds[two_nodes])


def _recovery(cluster: Any, ctx: Context) -> tuple[float, float, int, int]:
    """(serving stopped s, node dropped from status s, answers other than 200, answers) when the node
    holding an endpoint's only worker is killed -9."""
    spare = cluster.add_node(**NODE_ARGS)
    with _server("cluster-recovery", cluster.address, 0, data="far") as server:
        _wait(lambda: len(_status(server)["nodes"]) == 3, 60, "both agents")
        _deploy(server, ctx, "lonely", memory_mb=2048, provisioned=1)
        [worker] = _wait(lambda: _workers(server, "lonely"), 30, "the provisioned worker")
        victim = next(n for n in cluster.worker_nodes if n.node_id == worker["node_id"])
        steady = Steady(f"{server.url}/endpoints/lonely/invocations", body(TEXT))
        thread = steady.start()
        steady.settle(time.monotonic())
        killed = time.monotonic()
        cluster.remove_node(victim, allow_graceful=False)
        _wait(lambda: victim.node_id not in {n["node_id"] for n in _status(server)["nodes"]}, 30, "loss seen")
        dropped_s = time.monotonic() - killed
        steady.settle(killed)
        steady.stop(thread)
        errors = steady.not_ok(killed)
        answers = len([a for a in steady.answers if a[0] >= killed])
        del spare
        return steady.outage_s(killed), dropped_s, len(errors), answers


def run(ctx: Context) -> Section:
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # every Ray process on loopback
    from ray.cluster_utils import Cluster

    section = Section(NAME, TITLE)
    os.environ["ZEROSERVE_NODE_CACHE_DIR"] = str(cache_root() / "cluster-node-caches")
    cluster = Cluster(initialize_head=True, head_node_args={**NODE_ARGS, "include_dashboard": False})
    try:
        cluster.add_node(**NODE_ARGS)
        cluster.wait_for_nodes()
        idle = {"ZEROSERVE_IDLE_TIMEOUT_S": str(IDLE_TIMEOUT_S)}
        log("cluster: cold and warm, head-local vs remote node, alternating")
        with (
            _server("cluster-local", cluster.address, 8192, data="near", **idle) as near,
            _server("cluster-remote", cluster.address, 0, data="far", **idle) as far,
        ):
            for server in (near, far):
                _wait(lambda s=server: len(_status(s)["nodes"]) == 2, 60, "the agent", server)
            local_cold, remote_cold, local_warm, remote_warm = _cold_and_warm(near, far, ctx)
            local_overhead, remote_overhead = (
                _server_overhead_ms(s, "cold", len(local_warm)) for s in (near, far)
            )
        log("cluster: throughput, 2 workers on 1 node vs on 2 nodes, alternating")
        with (
            _server("cluster-one-node", None, 4096, data="near") as one_node,
            _server("cluster-two-nodes", cluster.address, 2048, data="far") as two_nodes,
        ):
            _wait(lambda: len(_status(two_nodes)["nodes"]) == 2, 60, "the agent", two_nodes)
            for server in (one_node, two_nodes):
                _deploy(server, ctx, "tput", memory_mb=2048, provisioned=2, max_concurrency=64)
                _wait(lambda s=server: len(_workers(s, "tput")) == 2, 30, "2 workers", server)
            if len({w["node_id"] for w in _workers(two_nodes, "tput")}) != 2:
                raise RuntimeError("the two provisioned workers did not land on two nodes")
            one_node_rps, two_nodes_rps = _throughput(one_node, two_nodes, ctx)
        log("cluster: a node lost under load")
        outage_s, dropped_s, not_ok, answers = _recovery(cluster, ctx)
    finally:
        cluster.shutdown()

    lc, lw, rc, rw = (Summary.of(x) for x in (local_cold, local_warm, remote_cold, remote_warm))
    lo, ro = Summary.of(local_overhead), Summary.of(remote_overhead)
    hop_ms = ro.p50 - lo.p50
    section.intro = (
        f"Model: {ctx.sentiment.description}. A Ray cluster of one-CPU nodes on this machine "
        "(`ray.cluster_utils.Cluster`, loopback); each non-head node's Ray `memory` is 2 GiB: one "
        "2048 MB worker. Local rows: the server's budget has room, workers fork on the head and talk over a "
        "Unix socket. Remote rows: the server's own budget is 0, so every worker forks on another node's "
        "agent and connects back over TCP. The two servers run at once on the same cluster and the "
        "benchmark alternates between them, so both see the same load on the shared cores. "
        "Cold: before each timed request the endpoint has no worker "
        f"(`ZEROSERVE_IDLE_TIMEOUT_S={IDLE_TIMEOUT_S}`); the bundle is already in the node's cache after the "
        "first one."
    )
    rows = (
        [
            [f"cold start, {where}", str(s.n), fmt(s.p50), fmt(s.p99), fmt(s.max)]
            for where, s in (("head (local)", lc), ("remote node", rc))
        ]
        + [
            [f"warm request, {where}", str(s.n), fmt(s.p50, 2), fmt(s.p99, 2), fmt(s.max, 2)]
            for where, s in (("head (local)", lw), ("remote node", rw))
        ]
        + [
            [
                f"warm, server overhead (server minus model), {where}",
                str(s.n),
                fmt(s.p50, 2),
                fmt(s.p99, 2),
                fmt(s.max, 2),
            ]
            for where, s in (("head (local)", lo), ("remote node", ro))
        ]
    )
    section.tables.append(
        Table(
            ["HTTP request -> answer, ms", "n", "p50", "p99", "max"],
            rows,
            note=f"Remote hop (server overhead p50, remote minus local): **{hop_ms:.2f} ms**; the "
            f"client-side warm p50 differs by {rw.p50 - lw.p50:.2f} ms. The server overhead leaves out the "
            "HTTP client's share of the shared cores: the steadier measure of the hop.",
        )
    )
    section.tables.append(
        Table(
            ["32 concurrent clients, short reviews, 2 workers", "req/s"],
            [
                ["both workers on one node (no --ray)", f"{one_node_rps:,.0f}"],
                ["one worker on the head, one on another node (--ray)", f"{two_nodes_rps:,.0f}"],
            ],
            note="wrk, 32 connections; median of 4 rounds of 4 s on each server, alternating (and swapping "
            "which goes first), "
            "both servers running at once. "
            'Both "nodes" are this machine\'s two cores, shared with the server and the load '
            "generator: this row shows what the TCP hop costs under load, not what a second machine adds.",
        )
    )
    section.tables.append(
        Table(
            ["a node killed -9 (raylet and its processes) under steady load", "value"],
            [
                ["endpoint whose only worker was there: serving stopped, s", f"{outage_s:.2f}"],
                ["node dropped from the pool after, s", f"{dropped_s:.2f}"],
                ["answers other than 200 / answers since the kill", f"{not_ok} / {answers}"],
            ],
            note="The worker's sockets close when its node's processes die; the pool marks the node suspect "
            "and places the replacement on the surviving node (its first cold start there includes the "
            "bundle fetch from the object store). The request in flight on the lost worker is retried "
            "once.",
        )
    )
    section.targets.append(
        Target(
            "remote-worker hop, warm p50 over loopback",
            f"<= {HOP_TARGET_MS} ms",
            f"{hop_ms:.2f} ms",
            hop_ms <= HOP_TARGET_MS,
        )
    )
    section.targets.append(
        Target(
            "endpoint with its workers on a lost node answers again",
            f"<= {RECOVERY_TARGET_S:.0f} s",
            f"{outage_s:.2f} s",
            outage_s <= RECOVERY_TARGET_S,
        )
    )
    section.headline = {
        "remote node: cold start p50 / warm hop": f"{rc.p50:.0f} ms / {hop_ms:.2f} ms",
        "lost node: serving again after": f"{outage_s:.2f} s",
    }
    return section
