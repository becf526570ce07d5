"""Section 7: throughput and p99 at 1, 8, 32, 64 concurrent clients, short reviews, against zeroserve, a
naive FastAPI app and real serving frameworks (Ray Serve, LitServe), each serving the same model both their
idiomatic way (transformers pipeline) and with the same int8 ONNX model, so framework and runtime are
separated."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

from bench import load, peerenv
from bench.context import Context, log
from bench.load import LoadResult
from bench.models import cache_root
from bench.peerserver import peer
from bench.report import Section, Table, Target, line_plot
from bench.stats import fmt, fmt_ratio, ratio
from bench.workload import body, short_reviews
from bench.zsserver import running

NAME = "throughput"
TITLE = "7. Throughput and p99 vs concurrent clients: zeroserve vs peers"
ENDPOINT = "throughput"
ZEROSERVE = "zeroserve"
NAIVE = "naive FastAPI + pipeline"


@dataclass
class Contender:
    name: str
    framework: str  # "zeroserve" or a key of peerenv.FRAMEWORKS / "fastapi"
    start: Callable[[], AbstractContextManager[str]]
    results: dict[int, LoadResult] = field(default_factory=dict)
    failure: str = ""


def _zeroserve(ctx: Context) -> Callable[[], AbstractContextManager[str]]:
    @contextmanager
    def start() -> Iterator[str]:
        with running(log_name=NAME) as zs:
            zs.redeploy(ENDPOINT, ctx.sentiment, max_concurrency=64, memory_mb=2048)
            yield zs.invocations_url(ENDPOINT)

    return start


def _peer(
    ctx: Context, app: str, mode: str, env: dict[str, str] | None = None
) -> Callable[[], AbstractContextManager[str]]:
    def start() -> AbstractContextManager[str]:
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
    out = [Contender(ZEROSERVE, ZEROSERVE, _zeroserve(ctx))]
    for label, app, framework in (
        ("naive FastAPI", "naive_fastapi.py", "fastapi"),
        ("Ray Serve", "ray_serve_app.py", "ray-serve"),
        ("LitServe", "litserve_app.py", "litserve"),
    ):
        out.append(Contender(f"{label} + pipeline", framework, _peer(ctx, app, "pipeline")))
        if ctx.quick:  # a smoke run: zeroserve against the naive baseline only (peers take ~30 s to start)
            return out
        out.append(Contender(f"{label} + ONNX int8", framework, _peer(ctx, app, "onnx")))
        if framework == "fastapi":  # the naive baseline again, spared PyTorch's thread contention
            one = {"OMP_NUM_THREADS": "1"}
            out.append(Contender(f"{NAIVE}, 1 thread", framework, _peer(ctx, app, "pipeline", one)))
    if not ctx.quick:  # zeroserve again at the end: shows how much the machine drifted during the section
        out.append(Contender(f"{ZEROSERVE} (again, at the end)", ZEROSERVE, _zeroserve(ctx)))
    return out


def _measure(target: Contender, levels: tuple[int, ...], ctx: Context) -> None:
    bodies = [body(text) for text in short_reviews()]
    duration_s = ctx.seconds(6, 1.5)
    with target.start() as url:
        for clients in levels:
            log(f"throughput: {target.name}, {clients} clients")
            target.results[clients] = load.closed_loop(
                url, bodies, clients, max_requests=20_000, duration_s=duration_s, warmup=clients
            )


def run(ctx: Context) -> Section:
    section = Section(NAME, TITLE)
    levels = (1, 8, 32, 64) if not ctx.quick else (1, 32)
    ctx.sentiment_bundle  # noqa: B018 - built before any peer needs it
    problems = peerenv.ensure()
    all_targets = contenders(ctx)
    for target in all_targets:
        if target.framework in problems:
            target.failure = problems[target.framework]
            continue
        try:
            _measure(target, levels, ctx)
        except Exception as exc:  # a peer that cannot start is reported, not fatal
            target.failure = f"{type(exc).__name__}: {str(exc)[:300]}"
            log(f"throughput: {target.name} failed: {target.failure}")
    measured = [t for t in all_targets if t.results]
    _tables(section, measured, levels, ctx)
    for target in all_targets:
        if target.failure:
            section.findings.append(f"{target.name} was not measured: {target.failure}")
    return section


def _zeroserve_rps(measured: list[Contender], clients: int) -> float:
    runs = [
        t.results[clients].throughput_rps
        for t in measured
        if t.framework == ZEROSERVE and clients in t.results
    ]
    return sum(runs) / len(runs) if runs else math.nan


def _zeroserve_p99(measured: list[Contender], clients: int) -> float:
    runs = [
        t.results[clients].summary.p99 for t in measured if t.framework == ZEROSERVE and clients in t.results
    ]
    return sum(runs) / len(runs) if runs else math.nan


def _tables(section: Section, measured: list[Contender], levels: tuple[int, ...], ctx: Context) -> None:
    section.intro = (
        f"Model: {ctx.sentiment.description}. Payload: short reviews (Rotten Tomatoes, ~25 tokens), one per "
        'request, `{"inputs": text}`. Closed loop: each client sends its next request when its previous one '
        f"is answered, {ctx.seconds(6, 1.5):.1f} s per level after a warm-up. The load generator (asyncio + "
        "httpx, one keep-alive connection per client) runs on the same 2 cores as the servers and costs the "
        "same CPU per request for every target; its share is shown below. zeroserve: one endpoint, "
        "MaxConcurrency 64, defaults otherwise (dynamic batching up to 16, no batch wait). Peers use the "
        "defaults their docs show: `pipeline` = transformers pipeline on the checkpoint (PyTorch fp32); "
        "`ONNX int8` = zeroserve's int8 model run by plain onnxruntime + tokenizers in the peer's own app "
        "(bench/peers/), which separates framework overhead from runtime choice. PyTorch-based contenders "
        "are very sensitive to other load on the cores (see section 6), so compare them within this run only."
    )
    rows = []
    for t in measured:
        row = [t.name]
        for clients in levels:
            result = t.results.get(clients)
            row += [fmt(result.throughput_rps), fmt(result.summary.p99)] if result else ["-", "-"]
        failures = sum(r.failures() for r in t.results.values())
        client_cpu = [r.client_cpu_ms_per_request for r in t.results.values()]
        row += [str(failures), fmt(sum(client_cpu) / len(client_cpu), 2)]
        rows.append(row)
    headers = ["server"] + [h for c in levels for h in (f"{c} cl req/s", f"{c} cl p99 ms")]
    headers += ["non-200", "load generator CPU ms/req"]
    section.tables.append(Table(headers, rows, "Throughput (req/s) and p99 latency (ms)"))

    ratio_rows = []
    for t in measured:
        if t.framework == ZEROSERVE:
            continue
        row = [t.name]
        for clients in levels:
            result = t.results.get(clients)
            rps = result.throughput_rps if result else math.nan
            p99 = result.summary.p99 if result else math.nan
            row += [
                fmt_ratio(ratio(_zeroserve_rps(measured, clients), rps)),
                fmt_ratio(ratio(p99, _zeroserve_p99(measured, clients))),
            ]
        ratio_rows.append(row)
    ratio_headers = ["peer"] + [
        h for c in levels for h in (f"{c} cl: zs throughput x", f"{c} cl: peer p99 / zs")
    ]
    section.tables.append(
        Table(
            ratio_headers,
            ratio_rows,
            "zeroserve vs each peer (> 1x: zeroserve better)",
            note="zeroserve's figure is the mean of its runs in this section." if not ctx.quick else "",
        )
    )
    xs = list(levels)
    section.plots.append(
        line_plot(
            ctx.plot("throughput"),
            "Throughput vs concurrent clients (short reviews)",
            "clients",
            "req/s",
            {
                t.name: (xs, [t.results[c].throughput_rps if c in t.results else math.nan for c in xs])
                for t in measured
            },
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
                t.name: (xs, [t.results[c].summary.p99 if c in t.results else math.nan for c in xs])
                for t in measured
            },
            logx=True,
            logy=True,
            highlight=ZEROSERVE,
        )
    )
    key = 32 if 32 in levels else levels[-1]
    zs_rps = _zeroserve_rps(measured, key)
    section.headline[f"throughput at {key} clients, zeroserve"] = f"{fmt(zs_rps)} req/s"
    for t in measured:
        if t.framework == ZEROSERVE or key not in t.results:
            continue
        peer_rps = t.results[key].throughput_rps
        factor = ratio(zs_rps, peer_rps)
        section.headline[f"  vs {t.name}"] = f"{fmt(peer_rps)} req/s (zeroserve {fmt_ratio(factor)})"
        if t.name == NAIVE:
            section.targets.append(
                Target(
                    f"throughput at {key} clients vs naive FastAPI + pipeline",
                    ">= 3x",
                    fmt_ratio(factor),
                    factor >= 3,
                )
            )
        if factor < 1:
            section.findings.append(
                f"**Loses** to {t.name} at {key} clients: {fmt(peer_rps)} vs {fmt(zs_rps)} req/s."
            )
        peer_p99, zs_p99 = t.results[key].summary.p99, _zeroserve_p99(measured, key)
        if peer_p99 < zs_p99:
            section.findings.append(
                f"**Loses** on p99 latency to {t.name} at {key} clients: {fmt(peer_p99)} vs {fmt(zs_p99)} ms."
            )
    for t in measured:
        if t.framework == ZEROSERVE:
            continue
        worse = [
            c
            for c in levels
            if c in t.results and ratio(_zeroserve_rps(measured, c), t.results[c].throughput_rps) < 1
        ]
        if worse and key not in worse:
            section.findings.append(
                f"**Loses** to {t.name} in throughput at {', '.join(map(str, worse))} client(s)."
            )
