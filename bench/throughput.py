"""Section 7: throughput and latency at 1, 8, 32, 64 concurrent clients, short reviews, against zeroserve, a
naive FastAPI app and real serving frameworks (LitServe, Ray Serve), each in its default configuration and
in the best one its docs describe (batching, workers), and against the in-process floor: zeroserve's handler
called with no server at all, the most these cores can give this model.

The load generator is wrk (bench/wrk.py): compiled, a few hundredths of a millisecond of CPU per request, so
the 2 cores it shares with the server go to the server. Its CPU per request is measured and shown.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

from bench import inprocess, peerenv, wrk
from bench.context import Context, log
from bench.models import cache_root
from bench.peerserver import Running, peer, tree_cpu_s
from bench.report import Section, Table, Target, line_plot
from bench.stats import fmt, fmt_ratio, ratio
from bench.workload import body, short_reviews
from bench.wrk import WrkResult
from bench.zsserver import running

NAME = "throughput"
TITLE = "7. Throughput and latency vs concurrent clients: zeroserve vs peers and the in-process floor"
ENDPOINT = "throughput"
ZEROSERVE = "zeroserve"
NAIVE = "naive FastAPI + pipeline"
NAIVE_ONNX = "naive FastAPI + ONNX int8"
KEY_CLIENTS = 32
FLOOR_BATCH = 16
# The best documented configurations: batching as each framework's docs show it (16 requests, 10 ms), and
# for the frameworks that run several model workers, one per core with one runtime thread each.
BATCHED = {"PEER_MAX_BATCH_SIZE": "16", "PEER_BATCH_WAIT_MS": "10"}
# Every contender serves the same int8 model: zeroserve's fidelity gate may choose fp32 for this checkpoint
# (a quality decision, section 11), which would compare runtimes instead of servers.
SAME_INT8 = {"ZEROSERVE_QUANTIZE": "true"}


@dataclass
class Contender:
    name: str
    framework: str  # "zeroserve" or a key of peerenv.FRAMEWORKS / "fastapi"
    start: Callable[[], AbstractContextManager[Running]]
    best: bool = False  # the framework's best documented configuration (not its default)
    results: dict[int, WrkResult] = field(default_factory=dict)
    server_cpu_ms: dict[int, float] = field(default_factory=dict)  # server CPU per request, whole tree
    failure: str = ""


def _zeroserve(ctx: Context) -> Callable[[], AbstractContextManager[Running]]:
    @contextmanager
    def start() -> Iterator[Running]:
        with running(log_name=NAME) as zs:
            zs.redeploy(ENDPOINT, ctx.sentiment, max_concurrency=64, memory_mb=2048, env=SAME_INT8)
            assert zs.process.process is not None
            yield Running(zs.invocations_url(ENDPOINT), zs.process.process.pid)

    return start


def _peer(
    ctx: Context, app: str, mode: str, env: dict[str, str] | None = None
) -> Callable[[], AbstractContextManager[Running]]:
    def start() -> AbstractContextManager[Running]:
        suffix = "-" + "-".join(f"{k}={v}" for k, v in env.items()) if env else ""
        logs = cache_root() / "peer-logs" / f"{app.removesuffix('.py')}-{mode}{suffix}.log"
        return peer(
            app,
            mode,
            ctx.sentiment.checkpoint,
            ctx.sentiment_bundle,
            logs,
            body(short_reviews()[0]),
            extra_env=env,
        )

    return start


def contenders(ctx: Context) -> list[Contender]:
    out = [
        Contender(ZEROSERVE, ZEROSERVE, _zeroserve(ctx)),
        Contender(NAIVE, "fastapi", _peer(ctx, "naive_fastapi.py", "pipeline")),
    ]
    if ctx.quick:  # a smoke run: zeroserve against the naive baseline only (peers take ~30 s to start)
        return out
    workers = {"PEER_WORKERS": "2", "PEER_ORT_THREADS": "1"}
    out += [
        Contender(NAIVE_ONNX, "fastapi", _peer(ctx, "naive_fastapi.py", "onnx")),
        Contender("LitServe + pipeline", "litserve", _peer(ctx, "litserve_app.py", "pipeline")),
        Contender("LitServe + ONNX int8", "litserve", _peer(ctx, "litserve_app.py", "onnx")),
        Contender(
            "LitServe + ONNX int8, batch 16 / 10 ms, fast_queue",
            "litserve",
            _peer(ctx, "litserve_app.py", "onnx", {**BATCHED, "PEER_FAST_QUEUE": "1"}),
            best=True,
        ),
        Contender(
            "LitServe + ONNX int8, batch 16 / 10 ms, fast_queue, 2 workers x 1 thread",
            "litserve",
            _peer(ctx, "litserve_app.py", "onnx", {**BATCHED, "PEER_FAST_QUEUE": "1", **workers}),
            best=True,
        ),
        Contender("Ray Serve + ONNX int8", "ray-serve", _peer(ctx, "ray_serve_app.py", "onnx")),
        Contender(
            "Ray Serve + ONNX int8, @serve.batch 16 / 10 ms, 2 replicas x 1 thread, max_ongoing 64",
            "ray-serve",
            _peer(ctx, "ray_serve_app.py", "onnx", {**BATCHED, **workers, "PEER_MAX_ONGOING": "64"}),
            best=True,
        ),
        # zeroserve again at the end: shows how much the machine drifted during the section
        Contender(f"{ZEROSERVE} (again, at the end)", ZEROSERVE, _zeroserve(ctx)),
    ]
    return out


def _measure(
    target: Contender, levels: tuple[int, ...], ctx: Context, beside: Callable[[], None] | None = None
) -> None:
    """Every level in turn; `beside` runs right before and right after the key level (the floor, so that
    it sees the machine as zeroserve's key measurement does)."""
    bodies = [body(text) for text in short_reviews()]
    duration_s = ctx.seconds(5, 2)
    with target.start() as server:
        for clients in levels:
            log(f"throughput: {target.name}, {clients} clients")
            # Warm-up, not counted: opens the connections and lets the server scale to this load.
            wrk.closed_loop(server.url, bodies, clients, 1)
            if beside is not None and clients == KEY_CLIENTS:
                beside()
            cpu_before = tree_cpu_s(server.pid)
            result = wrk.closed_loop(server.url, bodies, clients, duration_s)
            cpu_s = tree_cpu_s(server.pid) - cpu_before
            if beside is not None and clients == KEY_CLIENTS:
                beside()
            target.results[clients] = result
            target.server_cpu_ms[clients] = cpu_s * 1000 / result.requests if result.requests else math.nan


@dataclass
class Floor:
    """In-process requests/s and CPU ms per request for each (processes, threads) split, batch FLOOR_BATCH."""

    runs: dict[tuple[int, int], list[tuple[float, float]]] = field(default_factory=dict)

    def measure(self, ctx: Context, cores: int) -> None:
        texts = list(short_reviews())
        for processes, threads in ((cores, 1), (1, cores)):
            log(f"throughput: in-process floor, {processes} x {threads} thread(s), batch {FLOOR_BATCH}")
            figures = inprocess.floor_rps(
                ctx.sentiment_bundle,
                texts,
                processes=processes,
                threads=threads,
                batch=FLOOR_BATCH,
                duration_s=ctx.seconds(3, 1),
            )
            self.runs.setdefault((processes, threads), []).append(figures)

    def mean(self, split: tuple[int, int], index: int = 0) -> float:
        runs = self.runs.get(split, [])
        return sum(run[index] for run in runs) / len(runs) if runs else math.nan

    def best_split(self) -> tuple[int, int] | None:
        return max(self.runs, key=self.mean, default=None)


def run(ctx: Context) -> Section:
    import os

    section = Section(NAME, TITLE)
    levels = (1, 8, 32, 64) if not ctx.quick else (1, 32)
    wrk.binary()  # fail the section at once, with what to do, when wrk is missing
    ctx.sentiment_bundle  # noqa: B018 - built before any peer needs it
    problems = peerenv.ensure()
    cores = len(os.sched_getaffinity(0))
    floor = Floor()
    all_targets = contenders(ctx)
    for target in all_targets:
        if target.framework in problems:
            target.failure = problems[target.framework]
            continue
        beside = (lambda: floor.measure(ctx, cores)) if target.framework == ZEROSERVE else None
        try:
            _measure(target, levels, ctx, beside)
        except Exception as exc:  # a peer that cannot start is reported, not fatal
            target.failure = f"{type(exc).__name__}: {str(exc)[:300]}"
            log(f"throughput: {target.name} failed: {target.failure}")
    measured = [t for t in all_targets if t.results]
    _tables(section, measured, levels, floor, cores, ctx)
    for target in all_targets:
        if target.failure:
            section.findings.append(f"{target.name} was not measured: {target.failure}")
    return section


def _zeroserve_mean(measured: list[Contender], clients: int, value: Callable[[WrkResult], float]) -> float:
    runs = [value(t.results[clients]) for t in measured if t.framework == ZEROSERVE and clients in t.results]
    return sum(runs) / len(runs) if runs else math.nan


def _rps(measured: list[Contender], clients: int) -> float:
    return _zeroserve_mean(measured, clients, lambda r: r.throughput_rps)


def _p99(measured: list[Contender], clients: int) -> float:
    return _zeroserve_mean(measured, clients, lambda r: r.p99_ms)


def _p50(measured: list[Contender], clients: int) -> float:
    return _zeroserve_mean(measured, clients, lambda r: r.p50_ms)


def _zs_cpu_ms(measured: list[Contender]) -> float:
    runs = [
        t.server_cpu_ms[KEY_CLIENTS]
        for t in measured
        if t.framework == ZEROSERVE and KEY_CLIENTS in t.server_cpu_ms
    ]
    return sum(runs) / len(runs) if runs else math.nan


def _tables(
    section: Section,
    measured: list[Contender],
    levels: tuple[int, ...],
    floor: Floor,
    cores: int,
    ctx: Context,
) -> None:
    duration = ctx.seconds(5, 2)
    section.intro = (
        f"Model: {ctx.sentiment.description}, int8 ONNX for every contender but the `pipeline` "
        'ones. Payload: short reviews (Rotten Tomatoes, ~25 tokens), one per request, `{"inputs": text}`. '
        "Closed loop with "
        f"wrk: N keep-alive connections, each sends its next request when its previous one is answered, "
        f"{duration:.0f} s per level after a 1 s warm-up. wrk runs on the same {cores} cores as the servers; "
        "its CPU per request (from /proc) is shown, and so is each server's (its whole process tree: "
        "workers, replicas, helpers). zeroserve: one endpoint, MaxConcurrency 64, the defaults a user gets "
        "but `ZEROSERVE_QUANTIZE=true`, so that it serves the same int8 model as the peers. "
        "Peers: their defaults (`pipeline` = transformers pipeline on the checkpoint, PyTorch fp32; "
        "`ONNX int8` = zeroserve's int8 model run by plain onnxruntime + tokenizers in the peer's own app, "
        "bench/peers/) and their best documented configuration (batching 16 requests / 10 ms, ZeroMQ queue "
        "for LitServe, one worker or replica per core with one runtime thread each). The in-process floor is "
        "zeroserve's handler called on batches of "
        f"{FLOOR_BATCH} with no server and no client, in {cores} processes of 1 thread and in 1 process of "
        f"{cores} threads, right before and after zeroserve's {KEY_CLIENTS}-client runs: the most these "
        "cores give this model."
    )
    rows = []
    for t in measured:
        row = [t.name]
        for clients in levels:
            result = t.results.get(clients)
            row += [fmt(result.throughput_rps), fmt(result.p99_ms)] if result else ["-", "-"]
        one = t.results.get(1)
        row += [fmt(one.p50_ms, 2) if one else "-"]
        key = t.server_cpu_ms.get(KEY_CLIENTS, math.nan)
        failures = sum(r.failures() for r in t.results.values())
        client_cpu = [r.client_cpu_ms_per_request for r in t.results.values()]
        row += [fmt(key, 2), str(failures), fmt(sum(client_cpu) / len(client_cpu), 3)]
        rows.append(row)
    headers = ["server"] + [h for c in levels for h in (f"{c} cl req/s", f"{c} cl p99 ms")]
    headers += ["1 cl p50 ms", f"server CPU ms/req at {KEY_CLIENTS} cl", "non-200", "wrk CPU ms/req"]
    section.tables.append(Table(headers, rows, "Throughput (req/s) and latency (ms)"))

    floor_rows = [
        [
            f"{p} process(es) x {th} thread(s), batch {FLOOR_BATCH}",
            str(len(runs)),
            fmt(floor.mean((p, th))),
            fmt(floor.mean((p, th), 1), 2),
        ]
        for (p, th), runs in floor.runs.items()
    ]
    section.tables.append(
        Table(
            ["in-process floor (no server, no client)", "runs", "requests/s", "CPU ms/req"],
            floor_rows,
            f"The in-process floor, measured right before and after zeroserve at {KEY_CLIENTS} clients",
            note="CPU ms per request does not depend on what else the shared machine runs; requests/s does.",
        )
    )

    ratio_rows = []
    for t in measured:
        if t.framework == ZEROSERVE:
            continue
        row = [t.name]
        for clients in levels:
            result = t.results.get(clients)
            rps = result.throughput_rps if result else math.nan
            p99 = result.p99_ms if result else math.nan
            row += [
                fmt_ratio(ratio(_rps(measured, clients), rps)),
                fmt_ratio(ratio(p99, _p99(measured, clients))),
            ]
        row.append(fmt_ratio(ratio(t.server_cpu_ms.get(KEY_CLIENTS, math.nan), _zs_cpu_ms(measured))))
        ratio_rows.append(row)
    ratio_headers = ["peer"] + [
        h for c in levels for h in (f"{c} cl: zs throughput x", f"{c} cl: peer p99 / zs")
    ]
    ratio_headers.append(f"{KEY_CLIENTS} cl: peer CPU/req / zs")
    section.tables.append(
        Table(
            ratio_headers,
            ratio_rows,
            "zeroserve vs each peer (> 1x: zeroserve better)",
            note="zeroserve's figure is the mean of its runs in this section. CPU per request (server, "
            "workers and helpers) is what the shared machine's other load changes least: where throughput "
            "ratios move between runs, it says which server does less work per request.",
        )
    )
    xs = list(levels)
    series = {
        t.name: (xs, [t.results[c].throughput_rps if c in t.results else math.nan for c in xs])
        for t in measured
    }
    section.plots.append(
        line_plot(
            ctx.plot("throughput"),
            "Throughput vs concurrent clients (short reviews)",
            "clients",
            "req/s",
            series,
            logx=True,
            logy=True,
            highlight=ZEROSERVE,
        )
    )
    section.plots.append(
        line_plot(
            ctx.plot("throughput_p99"),
            "p99 latency vs concurrent clients",
            "clients",
            "ms",
            {
                t.name: (xs, [t.results[c].p99_ms if c in t.results else math.nan for c in xs])
                for t in measured
            },
            logx=True,
            logy=True,
            highlight=ZEROSERVE,
        )
    )
    _verdicts(section, measured, levels, floor, cores)


def _verdicts(
    section: Section, measured: list[Contender], levels: tuple[int, ...], floor: Floor, cores: int
) -> None:
    key = KEY_CLIENTS if KEY_CLIENTS in levels else levels[-1]
    zs_rps, zs_p99 = _rps(measured, key), _p99(measured, key)
    section.headline[f"throughput at {key} clients, zeroserve (wrk)"] = (
        f"{fmt(zs_rps)} req/s, p99 {fmt(zs_p99)} ms"
    )
    split = floor.best_split()
    if split is not None:
        floor_rps, floor_cpu = floor.mean(split), floor.mean(split, 1)
        share = ratio(zs_rps, floor_rps)
        zs_cpu = _zs_cpu_ms(measured)
        efficiency = ratio(floor_cpu, zs_cpu)
        section.headline["  in-process floor (no server)"] = (
            f"{fmt(floor_rps)} req/s (zeroserve {share:.0%}); CPU per request {fmt(floor_cpu, 2)} ms vs "
            f"zeroserve's {fmt(zs_cpu, 2)} ms, server and workers ({efficiency:.0%})"
        )
        section.targets.append(
            Target(
                f"throughput at {key} clients vs the in-process floor ({split[0]} x {split[1]} thread(s), "
                f"batch {FLOOR_BATCH})",
                ">= 60%",
                f"{share:.0%} ({fmt(zs_rps)} / {fmt(floor_rps)} req/s); by CPU per request {efficiency:.0%}",
                share >= 0.6,
            )
        )
    section.targets.append(
        Target(f"p99 latency at {key} clients", "<= 60 ms", f"{fmt(zs_p99)} ms", zs_p99 <= 60)
    )
    for t in measured:
        if t.framework == ZEROSERVE or key not in t.results:
            continue
        peer_rps = t.results[key].throughput_rps
        factor = ratio(zs_rps, peer_rps)
        section.headline[f"  vs {t.name}"] = f"{fmt(peer_rps)} req/s (zeroserve {fmt_ratio(factor)})"
        if t.name == NAIVE:
            section.targets.append(
                Target(f"throughput at {key} clients vs {NAIVE}", ">= 3x", fmt_ratio(factor), factor >= 3)
            )
        if factor < 1:
            section.findings.append(
                f"**Loses** to {t.name} at {key} clients: {fmt(peer_rps)} vs {fmt(zs_rps)} req/s."
            )
        peer_p99 = t.results[key].p99_ms
        if peer_p99 < zs_p99:
            section.findings.append(
                f"**Loses** on p99 latency to {t.name} at {key} clients: {fmt(peer_p99)} vs {fmt(zs_p99)} ms."
            )
    litserve = [t for t in measured if t.framework == "litserve" and key in t.results]
    if litserve:
        best = max(litserve, key=lambda t: t.results[key].throughput_rps)
        factor = ratio(zs_rps, best.results[key].throughput_rps)
        section.targets.append(
            Target(
                f"throughput at {key} clients vs LitServe's best configuration in this run",
                ">= 2.5x",
                f"{fmt_ratio(factor)} ({best.name}: {fmt(best.results[key].throughput_rps)} req/s)",
                factor >= 2.5,
            )
        )
    naive = next((t for t in measured if t.name == NAIVE_ONNX and 1 in t.results), None)
    if naive is not None and 1 in levels:
        gap = _p50(measured, 1) - naive.results[1].p50_ms
        section.targets.append(
            Target(
                f"1 client p50 vs {NAIVE_ONNX} (same model, in-process server)",
                "within 0.5 ms",
                f"{gap:+.2f} ms ({fmt(_p50(measured, 1), 2)} vs {fmt(naive.results[1].p50_ms, 2)} ms)",
                gap <= 0.5,
            )
        )
    wrk_cpu = [
        r.client_cpu_ms_per_request
        for t in measured
        for r in t.results.values()
        if not math.isnan(r.client_cpu_ms_per_request)
    ]
    if wrk_cpu:
        worst = max(wrk_cpu)
        section.targets.append(
            Target(
                "load generator: a compiled client (wrk), its CPU per request reported",
                "wrk, CPU shown",
                f"wrk, {fmt(sum(wrk_cpu) / len(wrk_cpu), 3)} ms/req mean, {fmt(worst, 3)} worst",
                True,
            )
        )
    for t in measured:
        if t.framework == ZEROSERVE:
            continue
        worse = [
            c for c in levels if c in t.results and ratio(_rps(measured, c), t.results[c].throughput_rps) < 1
        ]
        if worse and key not in worse:
            section.findings.append(
                f"**Loses** to {t.name} in throughput at {', '.join(map(str, worse))} client(s)."
            )
