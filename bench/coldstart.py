"""Section 1: cold start. A request to an idle endpoint (no worker) over HTTP -> answer, p50/p99 over many
cold starts, with the variant's template (the default) and without (templates off, and the first use after a
server restart), next to a warm request, boto3's end-to-end view, a naive fresh-process start, where a
worker's start goes (fork, connect, load, warm-up, from each worker's ready header) and deploy time."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import load, models, probe
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
NO_TEMPLATES = {"ZEROSERVE_TEMPLATE_IDLE_TIMEOUT_S": "0"}
DEPLOY_ROUNDS = 3  # uncached deploys, each on a fresh server and data dir (one is too noisy to compare)
DEPLOY_TARGET_S = 5.0
PHASES = ("fork", "connect", "load", "warm_up")
TEXT = "A warm, funny and surprisingly moving film."
NAIVE_SCRIPT = Path(__file__).parent / "peers" / "naive_cold.py"


def cold_request(zs: Zeroserve, endpoint: str, text: str = TEXT) -> float:
    """Wait until the endpoint has no worker, then time one HTTP request (ms)."""
    if not zs.wait_for_workers(endpoint, 0, timeout_s=30):
        raise RuntimeError(f"{endpoint} kept a worker for 30 s; is ZEROSERVE_IDLE_TIMEOUT_S honoured?")
    time.sleep(0.05)
    return load.sequential(zs.http, zs.invocations_url(endpoint), body(text), 1)[0]


def worker_start(zs: Zeroserve, endpoint: str) -> dict[str, Any]:
    """The setup phases (ms) of the worker that just answered, and whether a template forked it."""
    workers = zs.variant(endpoint)["workers"]
    if not workers:
        return {}
    worker = workers[0]
    return {**(worker.get("setup_phases_ms") or {}), "template": worker.get("template_pid") is not None}


def cold_series(
    zs: Zeroserve, endpoint: str, count: int, text: str = TEXT
) -> tuple[list[float], list[float], list[dict[str, Any]]]:
    """`count` cold requests, each followed by a warm one: (cold ms, warm ms, each cold worker's start)."""
    colds, warms, starts = [], [], []
    for _ in range(count):
        colds.append(cold_request(zs, endpoint, text))
        starts.append(worker_start(zs, endpoint))
        warms.append(load.sequential(zs.http, zs.invocations_url(endpoint), body(text), 1)[0])
    return colds, warms, starts


def first_use_after_restart(folder: Path, endpoint: str, restarts: int, text: str = TEXT) -> list[float]:
    """Restart the server on `folder` (the endpoint comes back from its database, no template yet) and time
    the first request, `restarts` times."""
    firsts = []
    for _ in range(restarts):
        with running({"ZEROSERVE_IDLE_TIMEOUT_S": str(IDLE_TIMEOUT_S)}, data_dir=folder, log_name=NAME) as zs:
            deadline = time.monotonic() + 60
            while zs.http.get(f"{zs.url}/zeroserve/status").json()["endpoints"].get(endpoint) is None:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{endpoint} did not come back after a restart")
                time.sleep(0.05)
            firsts.append(cold_request(zs, endpoint, text))
    return firsts


def phase_rows(label: str, starts: list[dict[str, Any]]) -> list[str]:
    def p50(key: str) -> str:
        values = [float(s[key]) for s in starts if isinstance(s.get(key), int | float)]
        return fmt(Summary.of(values).p50) if values else "-"

    forked = sum(1 for s in starts if s.get("template"))
    return [label, f"{forked}/{len(starts)}", *(p50(key) for key in PHASES)]


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


def _deploy_times(ctx: Context, rounds: int) -> tuple[list[float], float]:
    """CreateEndpoint -> InService on an empty data dir (conversion runs), `rounds` times, each on a new
    server; then, on the last one, again for a second endpoint with the same artifact (conversion cached
    by digest)."""
    uncached: list[float] = []
    cached = float("nan")
    for _ in range(rounds):
        folder = Path(tempfile.mkdtemp(prefix="deploy-", dir=cache_root()))
        try:
            with running(data_dir=folder, log_name="deploy") as zs:
                uncached.append(zs.redeploy("deploy-a", ctx.sentiment))
                cached = zs.redeploy("deploy-b", ctx.sentiment)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return uncached, cached


def run(ctx: Context) -> Section:
    section = Section(NAME, TITLE)
    folder = cache_root() / "coldstart-data"  # its own: restarted below, so shared by no other section
    count = ctx.pick(30, 8)
    with running({"ZEROSERVE_IDLE_TIMEOUT_S": str(IDLE_TIMEOUT_S)}, data_dir=folder, log_name=NAME) as zs:
        zs.redeploy(ENDPOINT, ctx.sentiment)
        cold_request(zs, ENDPOINT)  # the variant's first cold start (untimed): its template is built after it
        log(f"coldstart: {count} cold starts over HTTP, templates on (the default)")
        setup_before = _setup_totals(zs)
        colds, warms, starts = cold_series(zs, ENDPOINT, count)
        setup_after = _setup_totals(zs)
        setup_ms = ratio(setup_after[0] - setup_before[0], setup_after[1] - setup_before[1]) / 1000
        server_lines = [line for line in zs.request_log(ENDPOINT, 2 * count) if line.get("cold")]
        boto3_colds = [_boto3_cold(zs, ENDPOINT) for _ in range(ctx.pick(10, 2))]
        cold_starts_metric = zs.metric("zeroserve_cold_starts_total", ENDPOINT)
        weights = str(zs.variant(ENDPOINT)["model"].get("weights") or "int8")
        template_mb = zs.metric("zeroserve_template_memory_megabytes", ENDPOINT)
    log("coldstart: first use after a server restart (no template yet)")
    firsts = first_use_after_restart(folder, ENDPOINT, ctx.pick(5, 2))
    log(f"coldstart: {count} cold starts with templates off")
    with running(
        {"ZEROSERVE_IDLE_TIMEOUT_S": str(IDLE_TIMEOUT_S), **NO_TEMPLATES}, data_dir=folder, log_name=NAME
    ) as zs:
        plain_colds, _, plain_starts = cold_series(zs, ENDPOINT, count)
    naive_count = ctx.pick(5, 2)
    log(f"coldstart: {naive_count} naive fresh-process starts")
    naive = [naive_start_ms(ctx.sentiment.checkpoint) for _ in range(naive_count)]
    log("coldstart: deploy times")
    deploys, cached_s = _deploy_times(ctx, DEPLOY_ROUNDS) if not ctx.quick else ([], float("nan"))
    uncached_s = statistics.median(deploys) if deploys else float("nan")

    cold, warm, naive_s, boto = (
        Summary.of(colds),
        Summary.of(warms),
        Summary.of(naive),
        Summary.of(boto3_colds),
    )
    plain, first = Summary.of(plain_colds), Summary.of(firsts)
    speedup = ratio(naive_s.p50, cold.p50)
    rows = [
        [
            "zeroserve, idle endpoint (0 workers) -> answer, HTTP (forked from the variant's template)",
            str(cold.n),
            fmt(cold.p50),
            fmt(cold.p99),
            fmt(cold.max),
        ],
        [
            "zeroserve, same, templates off (each cold start forks the zygote and loads)",
            str(plain.n),
            fmt(plain.p50),
            fmt(plain.p99),
            fmt(plain.max),
        ],
        [
            "zeroserve, first request after a server restart (no template yet)",
            str(first.n),
            fmt(first.p50),
            fmt(first.p99),
            fmt(first.max),
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
        "timed request starts a worker. By default (templates on) the worker is forked from the variant's "
        "template, a process that loaded the bundle after the variant's first cold start, and only warms up; "
        "with templates off (`ZEROSERVE_TEMPLATE_IDLE_TIMEOUT_S=0`), and on the first request after a "
        f"server restart, it is forked from the zygote and loads the {{weights}} ONNX model itself. The "
        "naive "
        "baseline starts a fresh Python process that builds a transformers `pipeline` from the same "
        "checkpoint "
        "and answers one request (process start -> answer printed)."
    ).replace("{weights}", weights)
    section.tables.append(
        Table(
            ["path", "n", "p50 ms", "p99 ms", "max ms"],
            rows,
            "Cold start (targets: p50 <= 30 ms, p99 <= 60 ms)",
            note=f"The template held {fmt(template_mb, 0)} MB of the memory budget "
            "(`zeroserve_template_memory_megabytes`).",
        )
    )
    section.tables.append(
        Table(
            ["figure", "value"],
            [
                ["naive p50 / zeroserve cold p50", fmt_ratio(speedup)],
                ["templates off / template, cold p50", fmt_ratio(ratio(plain.p50, cold.p50))],
                ["zeroserve cold p50 / warm p50", fmt_ratio(ratio(cold.p50, warm.p50))],
            ],
        )
    )
    # The bundle the server serves (the deploy-time gate may have kept fp32), loaded in a fresh process.
    served_bundle = models.bundle(ctx.sentiment, quantize=weights == "int8")
    fresh_load_ms = float(probe.run(served_bundle, 1, {})["load_ms"])  # type: ignore[arg-type]
    section.tables.append(_breakdown(server_lines, cold_starts_metric, setup_ms, fresh_load_ms))
    section.tables.append(
        Table(
            ["worker start", "from a template", *(f"{phase} p50 ms" for phase in PHASES)],
            [phase_rows("templates on", starts), phase_rows("templates off", plain_starts)],
            "Where a worker's start goes (each worker's ready header)",
            "fork: the zygote's (or template's) fork() until the child runs; connect: output socket, "
            "detach (double fork), address-space cap, hello; load: tokenizer + onnxruntime session (none "
            "from a template: inherited); warm_up: one forward pass.",
        )
    )
    section.tables.append(
        Table(
            ["deploy (CreateEndpoint -> InService)", "seconds"],
            [
                [
                    "uncached: unpack + ONNX export + int8 quantization + optimization + first load "
                    f"(median of {len(deploys)}: {', '.join(fmt(d, 1) for d in deploys)})",
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
            ["zeroserve cold", "templates off", "boto3 cold", "zeroserve warm", "naive process"],
            {
                "p50": [cold.p50, plain.p50, boto.p50, warm.p50, naive_s.p50],
                "p99": [cold.p99, plain.p99, boto.p99, warm.p99, naive_s.p99],
            },
            logy=True,
        )
    )
    section.headline = {
        "cold start p50 / p99 (HTTP, MiniLM sentiment)": f"{fmt(cold.p50)} / {fmt(cold.p99)} ms",
        "cold start p50 without a template (templates off)": f"{fmt(plain.p50)} ms",
        "naive fresh-process start p50": f"{fmt(naive_s.p50, 0)} ms ({fmt_ratio(speedup)} slower)",
        "deploy, uncached / cached conversion": f"{fmt(uncached_s)} s / {fmt(cached_s, 2)} s",
    }
    section.targets.append(
        Target(
            "cold start, MiniLM sentiment, HTTP request -> answer, p50 / p99",
            "<= 30 ms / <= 60 ms",
            f"{fmt(cold.p50)} / {fmt(cold.p99)} ms",
            cold.p50 <= 30 and cold.p99 <= 60,
        )
    )
    if deploys:
        section.targets.append(
            Target(
                "deploy of a new artifact, MiniLM sentiment (CreateEndpoint -> InService, median)",
                f"<= {DEPLOY_TARGET_S:.0f} s",
                f"{fmt(uncached_s, 1)} s",
                uncached_s <= DEPLOY_TARGET_S,
            )
        )
    return section


def _setup_totals(zs: Zeroserve) -> tuple[float, float]:
    """(sum us, count) of the ModelSetupTime histogram: a worker's start (fork .. warm-up), as it measured."""
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
        ["  of which the worker's own start: fork .. warm-up (ModelSetupTime, mean)", fmt(setup_ms), ""],
        ["  same bundle's load + warm-up in a fresh process (`load_handler`)", fmt(fresh_load_ms), ""],
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
