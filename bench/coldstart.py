"""Section 1: cold start. A request to an idle endpoint (no worker) over HTTP -> answer, p50/p99 over many
cold starts, next to a warm request, boto3's end-to-end view, a naive fresh-process start, and deploy time."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import load, probe
from bench.context import Context, log
from bench.models import cache_root
from bench.report import Section, Table, Target, bar_plot
from bench.stats import Summary, fmt, fmt_ratio, ratio
from bench.workload import body
from bench.zsserver import Zeroserve, running

NAME = "coldstart"
TITLE = "1. Cold start: idle endpoint -> answer"
ENDPOINT = "coldstart"
IDLE_TIMEOUT_S = 0.3
TEXT = "A warm, funny and surprisingly moving film."
NAIVE_SCRIPT = Path(__file__).parent / "peers" / "naive_cold.py"


def cold_request(zs: Zeroserve, endpoint: str, text: str = TEXT) -> float:
    """Wait until the endpoint has no worker, then time one HTTP request (ms)."""
    if not zs.wait_for_workers(endpoint, 0, timeout_s=30):
        raise RuntimeError(f"{endpoint} kept a worker for 30 s; is ZEROSERVE_IDLE_TIMEOUT_S honoured?")
    time.sleep(0.05)
    return load.sequential(zs.http, zs.invocations_url(endpoint), body(text), 1)[0]


def _boto3_cold(zs: Zeroserve, endpoint: str) -> float:
    runtime = zs.process.runtime()
    runtime.invoke_endpoint(
        EndpointName=endpoint, ContentType="application/json", Body=body(TEXT)
    )  # warm SDK
    zs.wait_for_workers(endpoint, 0)
    time.sleep(0.05)
    started = time.perf_counter()
    answer = runtime.invoke_endpoint(EndpointName=endpoint, ContentType="application/json", Body=body(TEXT))
    answer["Body"].read()
    return (time.perf_counter() - started) * 1000


def naive_start_ms(checkpoint: Path) -> float:
    """Fresh `python` + transformers pipeline: process start -> first answer printed."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, str(NAIVE_SCRIPT), str(checkpoint), TEXT],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    elapsed_ms = (time.perf_counter() - started) * 1000
    process.wait(60)
    if not line.strip().startswith(b"["):
        raise RuntimeError(f"naive start printed {line!r}")
    return elapsed_ms


def _deploy_times(ctx: Context) -> tuple[float, float]:
    """CreateEndpoint -> InService on an empty data dir (conversion runs), then again for a second endpoint
    with the same artifact (conversion cached by digest)."""
    folder = Path(tempfile.mkdtemp(prefix="deploy-", dir=cache_root()))
    try:
        with running(data_dir=folder, log_name="deploy") as zs:
            uncached = zs.redeploy("deploy-a", ctx.sentiment)
            cached = zs.redeploy("deploy-b", ctx.sentiment)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return uncached, cached


def run(ctx: Context) -> Section:
    section = Section(NAME, TITLE)
    colds, warms, boto3_colds = [], [], []
    with running({"ZEROSERVE_IDLE_TIMEOUT_S": str(IDLE_TIMEOUT_S)}, log_name=NAME) as zs:
        zs.redeploy(ENDPOINT, ctx.sentiment)
        count = ctx.pick(30, 8)
        log(f"coldstart: {count} cold starts over HTTP")
        setup_before = _setup_totals(zs)
        for _ in range(count):
            colds.append(cold_request(zs, ENDPOINT))
            warms.append(load.sequential(zs.http, zs.invocations_url(ENDPOINT), body(TEXT), 1)[0])
        setup_after = _setup_totals(zs)
        setup_ms = ratio(setup_after[0] - setup_before[0], setup_after[1] - setup_before[1]) / 1000
        server_lines = [line for line in zs.request_log(ENDPOINT, 2 * count) if line.get("cold")]
        boto3_colds = [_boto3_cold(zs, ENDPOINT) for _ in range(ctx.pick(10, 2))]
        cold_starts_metric = zs.metric("zeroserve_cold_starts_total", ENDPOINT)
    naive_count = ctx.pick(5, 2)
    log(f"coldstart: {naive_count} naive fresh-process starts")
    naive = [naive_start_ms(ctx.sentiment.checkpoint) for _ in range(naive_count)]
    log("coldstart: deploy times")
    uncached_s, cached_s = _deploy_times(ctx) if not ctx.quick else (float("nan"), float("nan"))

    cold, warm, naive_s, boto = (
        Summary.of(colds),
        Summary.of(warms),
        Summary.of(naive),
        Summary.of(boto3_colds),
    )
    speedup = ratio(naive_s.p50, cold.p50)
    rows = [
        [
            "zeroserve, idle endpoint (0 workers) -> answer, HTTP",
            str(cold.n),
            fmt(cold.p50),
            fmt(cold.p99),
            fmt(cold.max),
        ],
        [
            "zeroserve, boto3 invoke_endpoint on an idle endpoint",
            str(boto.n),
            fmt(boto.p50),
            fmt(boto.p99),
            fmt(boto.max),
        ],
        [
            "zeroserve, warm request right after (HTTP)",
            str(warm.n),
            fmt(warm.p50),
            fmt(warm.p99),
            fmt(warm.max),
        ],
        [
            "naive: fresh python + transformers pipeline -> answer",
            str(naive_s.n),
            fmt(naive_s.p50),
            fmt(naive_s.p99),
            fmt(naive_s.max),
        ],
    ]
    section.intro = (
        f"Model: {ctx.sentiment.description}. The server runs with "
        f"`ZEROSERVE_IDLE_TIMEOUT_S={IDLE_TIMEOUT_S}`; "
        "before each timed request the benchmark waits until `/zeroserve/status` shows no worker, so every "
        "timed "
        "request forks a worker from the zygote, loads the int8 ONNX model, warms it up and answers. The "
        "naive "
        "baseline starts a fresh Python process that builds a transformers `pipeline` from the same "
        "checkpoint "
        "and answers one request (process start -> answer printed)."
    )
    section.tables.append(
        Table(
            ["path", "n", "p50 ms", "p99 ms", "max ms"],
            rows,
            "Cold start (targets: p50 <= 150 ms, p99 <= 300 ms)",
        )
    )
    section.tables.append(
        Table(
            ["figure", "value"],
            [
                ["naive p50 / zeroserve cold p50", fmt_ratio(speedup)],
                ["zeroserve cold p50 / warm p50", fmt_ratio(ratio(cold.p50, warm.p50))],
            ],
        )
    )
    fresh_load_ms = float(probe.run(ctx.sentiment_bundle, 1, {})["load_ms"])  # type: ignore[arg-type]
    section.tables.append(_breakdown(server_lines, cold_starts_metric, setup_ms, fresh_load_ms))
    section.tables.append(
        Table(
            ["deploy (CreateEndpoint -> InService)", "seconds"],
            [
                [
                    "uncached: unpack + ONNX export + int8 quantization + optimization + first load",
                    fmt(uncached_s, 1),
                ],
                ["cached: same artifact again (conversion cached by digest)", fmt(cached_s, 2)],
            ],
            note="Skipped in --quick runs." if ctx.quick else "",
        )
    )
    section.plots.append(
        bar_plot(
            ctx.plot("coldstart"),
            "Cold start vs naive fresh process (log scale)",
            "ms",
            ["zeroserve cold", "zeroserve boto3 cold", "zeroserve warm", "naive process"],
            {
                "p50": [cold.p50, boto.p50, warm.p50, naive_s.p50],
                "p99": [cold.p99, boto.p99, warm.p99, naive_s.p99],
            },
            logy=True,
        )
    )
    section.headline = {
        "cold start p50 / p99 (HTTP, MiniLM sentiment)": f"{fmt(cold.p50)} / {fmt(cold.p99)} ms",
        "naive fresh-process start p50": f"{fmt(naive_s.p50, 0)} ms ({fmt_ratio(speedup)} slower)",
        "deploy, uncached / cached conversion": f"{fmt(uncached_s)} s / {fmt(cached_s, 2)} s",
    }
    section.targets.append(
        Target(
            "cold start, MiniLM sentiment, HTTP request -> answer, p50 / p99",
            "<= 150 ms / <= 300 ms",
            f"{fmt(cold.p50)} / {fmt(cold.p99)} ms",
            cold.p50 <= 150 and cold.p99 <= 300,
        )
    )
    return section


def _setup_totals(zs: Zeroserve) -> tuple[float, float]:
    """(sum us, count) of the ModelSetupTime histogram: worker load + warm-up, measured in the worker."""
    name = "zeroserve_model_setup_time_microseconds"
    return zs.metric(f"{name}_sum", ENDPOINT), zs.metric(f"{name}_count", ENDPOINT)


def _breakdown(
    lines: list[dict[str, object]], cold_starts_metric: float, setup_ms: float, fresh_load_ms: float
) -> Table:
    def column(key: str) -> Summary:
        return Summary.of([float(line[key]) for line in lines if isinstance(line.get(key), int | float)])

    total, queue, model = column("total_ms"), column("queue_ms"), column("model_ms")
    rows = [
        ["server: arrival -> answer", fmt(total.p50), fmt(total.p99)],
        ["waiting for a worker (fork + load + warm-up)", fmt(queue.p50), fmt(queue.p99)],
        ["  of which the worker's own load + warm-up (ModelSetupTime, mean)", fmt(setup_ms), ""],
        ["  same load + warm-up in a fresh process, for reference (`load_handler`)", fmt(fresh_load_ms), ""],
        ["model (in-worker inference)", fmt(model.p50, 2), fmt(model.p99, 2)],
    ]
    note = (
        f"From the server's request log ({len(lines)} cold requests; `zeroserve_cold_starts_total` = "
        f"{fmt(cold_starts_metric, 0)}). The rest of the client's time is HTTP and the client itself."
        if lines
        else "The server has no request log route; no breakdown."
    )
    return Table(
        ["cold request, server side", "p50 ms", "p99 ms"], rows, "Where a cold start's time goes", note
    )
