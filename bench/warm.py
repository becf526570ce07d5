"""Section 2: warm requests. What the server adds on top of the model (OverheadLatency), and the latency of a
16-token input at batch 1, over HTTP and in process, side by side."""

from __future__ import annotations

import time

from bench import inprocess, load
from bench.context import Context, log
from bench.report import Section, Table, Target
from bench.stats import Summary, fmt
from bench.workload import TokenTexts, body
from bench.zsserver import running

NAME = "warm"
TITLE = "2. Warm overhead and 16-token latency"
ENDPOINT = "warm"
TOKENS = 16


def _ping_ms(zs_url: str, http: object, count: int) -> list[float]:
    out = []
    for _ in range(count):
        started = time.perf_counter()
        http.get(f"{zs_url}/ping")  # type: ignore[attr-defined]
        out.append((time.perf_counter() - started) * 1000)
    return out


def run(ctx: Context) -> Section:
    section = Section(NAME, TITLE)
    text = TokenTexts(ctx.sentiment.checkpoint / "tokenizer.json").text(TOKENS)
    rounds, per_round = 3, ctx.pick(150, 20)
    http_ms: list[float] = []
    local_ms: list[float] = []
    handler, _ = inprocess.load(ctx.sentiment_bundle)
    with running(log_name=NAME) as zs:
        # The same int8 model as the in-process handler (the fidelity gate may pick fp32 for this one).
        zs.redeploy(ENDPOINT, ctx.sentiment, max_concurrency=4, env={"ZEROSERVE_QUANTIZE": "true"})
        url = zs.invocations_url(ENDPOINT)
        load.sequential(zs.http, url, body(text), 20)  # wake the worker and the connection
        log(f"warm: {rounds} x {per_round} sequential requests, HTTP and in-process alternating")
        for _ in range(rounds):  # alternate so that background noise hits both sides alike
            http_ms += load.sequential(zs.http, url, body(text), per_round)
            local_ms += inprocess.latencies_ms(handler, text, per_round)
        server = zs.request_log(ENDPOINT, rounds * per_round)
        ping = Summary.of(_ping_ms(zs.url, zs.http, per_round))
    del handler

    over = Summary.of([float(line["overhead_ms"]) for line in server])
    model = Summary.of([float(line["model_ms"]) for line in server])
    total = Summary.of([float(line["total_ms"]) for line in server])
    http, local = Summary.of(http_ms), Summary.of(local_ms)
    section.intro = (
        f"Model: {ctx.sentiment.description}, int8 ONNX (`ZEROSERVE_QUANTIZE=true`). {rounds} rounds of "
        f"{per_round} sequential requests "
        "with a "
        f"{TOKENS}-token input (batch 1, one keep-alive connection), alternating with the same number of "
        "calls of "
        "zeroserve's handler in this process (`zeroserve.runtimes.loader.load_handler`, same bundle, same "
        "input). "
        "Server-side figures come from the server's request log, one line per request: OverheadLatency is "
        "server "
        "latency minus in-worker model latency, as SageMaker defines it."
    )
    section.tables.append(
        Table(
            ["figure", "n", "p50 ms", "p99 ms"],
            [
                [
                    "OverheadLatency (server: arrival -> answer, minus model)",
                    str(over.n),
                    fmt(over.p50, 2),
                    fmt(over.p99, 2),
                ],
                ["ModelLatency (in the worker)", str(model.n), fmt(model.p50, 2), fmt(model.p99, 2)],
                ["server latency (arrival -> answer)", str(total.n), fmt(total.p50, 2), fmt(total.p99, 2)],
                ["client: HTTP round trip", str(http.n), fmt(http.p50, 2), fmt(http.p99, 2)],
                ["in process: handler only (no server)", str(local.n), fmt(local.p50, 2), fmt(local.p99, 2)],
                ["client round trip minus in-process (p50s)", "", fmt(http.p50 - local.p50, 2), ""],
                [
                    "client: GET /ping round trip (HTTP floor)",
                    str(ping.n),
                    fmt(ping.p50, 2),
                    fmt(ping.p99, 2),
                ],
            ],
            f"Warm, {TOKENS}-token input, batch 1 (targets: overhead p50 <= 1 ms; latency <= 5 ms)",
        )
    )
    section.headline = {
        "warm overhead p50 / p99 (server minus model latency)": f"{fmt(over.p50, 2)} / {fmt(over.p99, 2)} ms",
        f"warm latency, {TOKENS}-token input, HTTP p50 / p99": f"{fmt(http.p50, 2)} / {fmt(http.p99, 2)} ms",
    }
    section.targets += [
        Target(
            "warm overhead (server minus model latency), p50",
            "<= 1 ms",
            f"{fmt(over.p50, 2)} ms",
            over.p50 <= 1,
        ),
        Target(
            f"warm latency, {TOKENS}-token input, batch 1, HTTP p50",
            "<= 5 ms",
            f"{fmt(http.p50, 2)} ms (model alone {fmt(model.p50, 2)} ms)",
            http.p50 <= 5,
        ),
    ]
    return section
