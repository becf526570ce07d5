"""Section 8: cost per million requests of the sentiment endpoint at 1024..6144 MB under zeroserve's meter,
next to SageMaker Serverless' price for the same durations (with and without its ~60 ms per-request overhead).

Billing follows SageMaker: duration rounded up to 1 ms x MemorySizeInMB / 1024 x $0.0000200 per GB-second,
plus $0.016 per GB of payload in and out. zeroserve's own `zeroserve.metrics.billing` does the arithmetic when
it is there; `charge_usd` below is the same formula, used only as a fallback.
"""

from __future__ import annotations

import math
import time
from typing import Any

from bench import load
from bench.context import Context, log
from bench.report import Section, Table, bar_plot
from bench.stats import Summary, fmt, fmt_ratio, ratio
from bench.workload import body, heldout_imdb, short_reviews
from bench.zsserver import running

NAME = "cost"
TITLE = "8. Cost per million requests"
ENDPOINT = "cost"
MEMORY_SIZES_MB = (1024, 2048, 3072, 4096, 5120, 6144)
SAGEMAKER_OVERHEAD_MS = 60.0
GB_SECOND_USD = 0.0000200
GB_DATA_USD = 0.016
DEPLOYED_MEMORY_MB = 2048
WARMUP = 3


def charge_usd(duration_ms: float, memory_mb: int, bytes_in_out: int) -> float:
    """One invocation's price: zeroserve's meter when importable, else the same formula here."""
    billed = math.ceil(round(duration_ms * 1000) / 1000)
    try:
        from zeroserve.metrics.billing import Charge, Prices

        prices = Prices(gb_second_usd=GB_SECOND_USD, gb_data_usd=GB_DATA_USD)
        return Charge(billed, billed * memory_mb, bytes_in_out, 0).cost_usd(prices)
    except ImportError:
        return billed * memory_mb / 1024 / 1000 * GB_SECOND_USD + bytes_in_out / 1024**3 * GB_DATA_USD


def _per_million(lines: list[dict[str, Any]], memory_mb: int, extra_ms: float = 0.0) -> float:
    total = sum(
        charge_usd(float(x["model_ms"]) + extra_ms, memory_mb, int(x["bytes_in"]) + int(x["bytes_out"]))
        for x in lines
    )
    return total / len(lines) * 1e6 if lines else math.nan


def run(ctx: Context) -> Section:
    section = Section(NAME, TITLE)
    workloads = {
        "short review (~25 tokens)": [body(t) for t in short_reviews()[: ctx.pick(300, 30)]],
        "full IMDB review (truncated to the model's window)": [
            # Over-long inputs are refused unless asked to be cut, as the toolkit's model fails on them.
            body(t, {"truncation": True})
            for t, _ in heldout_imdb(ctx.pick(200, 20))
        ]
        or [body(short_reviews()[0] * 20, {"truncation": True})],
    }
    measured: dict[str, list[dict[str, Any]]] = {}
    meter_check = ""
    # A name of its own per run: the meter persists across runs and aggregates by time bucket.
    endpoint = f"{ENDPOINT}-{int(time.time())}"
    with running(log_name=NAME) as zs:
        zs.redeploy(endpoint, ctx.sentiment, memory_mb=DEPLOYED_MEMORY_MB, max_concurrency=4)
        url = zs.invocations_url(endpoint)
        load.sequential(zs.http, url, next(iter(workloads.values()))[0], WARMUP)
        for name, bodies in workloads.items():
            log(f"cost: {len(bodies)} x {name}")
            for payload in bodies:
                load.sequential(zs.http, url, payload, 1)
            measured[name] = zs.request_log(endpoint, len(bodies))
        total = WARMUP + sum(len(bodies) for bodies in workloads.values())
        meter_check = _meter_check(zs, endpoint, zs.request_log(endpoint, total))
        zs.delete(endpoint)
    rows, plot_series = [], {}
    for name, lines in measured.items():
        model = Summary.of([float(x["model_ms"]) for x in lines])
        size = sum(int(x["bytes_in"]) + int(x["bytes_out"]) for x in lines) / max(1, len(lines))
        ours = [_per_million(lines, mb) for mb in MEMORY_SIZES_MB]
        theirs = [_per_million(lines, mb, SAGEMAKER_OVERHEAD_MS) for mb in MEMORY_SIZES_MB]
        for mb, zs_usd, sm_usd in zip(MEMORY_SIZES_MB, ours, theirs, strict=True):
            rows.append(
                [
                    name,
                    str(mb),
                    fmt(model.mean, 2),
                    fmt(size, 0),
                    f"${zs_usd:.3f}",
                    f"${zs_usd:.3f}",
                    f"${sm_usd:.3f}",
                    fmt_ratio(ratio(sm_usd, zs_usd)),
                ]
            )
        short_name = name.split(" (")[0]
        plot_series[f"{short_name}: zeroserve"] = ours
        plot_series[f"{short_name}: SageMaker + 60 ms"] = theirs
    section.intro = (
        f"Sequential requests to the sentiment endpoint ({ctx.sentiment.description}); each request's billed "
        "duration (its in-worker model latency, rounded up to 1 ms) and payload bytes come from the server's "
        "request log, and are priced at every MemorySizeInMB with zeroserve's meter (SageMaker Serverless "
        "list "
        f"prices: ${GB_SECOND_USD} per GB-second, ${GB_DATA_USD} per GB in/out). SageMaker bills the same "
        "formula "
        f"for the same duration; it also adds its own ~{SAGEMAKER_OVERHEAD_MS:.0f} ms of OverheadLatency per "
        "request, so the last column shows the price if that time were billed too (the typical SageMaker "
        "duration for this model). Cold starts are not billed by either."
    )
    section.tables.append(
        Table(
            [
                "payload",
                "MemorySizeInMB",
                "mean model ms",
                "bytes in+out",
                "zeroserve $ / 1M req",
                "SageMaker, same duration",
                f"SageMaker, duration + {SAGEMAKER_OVERHEAD_MS:.0f} ms",
                "SageMaker+60 / zeroserve",
            ],
            rows,
            note=meter_check,
        )
    )
    section.plots.append(
        bar_plot(
            ctx.plot("cost"),
            "Cost per million requests vs MemorySizeInMB",
            "USD",
            [str(m) for m in MEMORY_SIZES_MB],
            plot_series,
            logy=True,
        )
    )
    short = next(iter(measured.values()))
    with_overhead = _per_million(short, 2048, SAGEMAKER_OVERHEAD_MS)
    section.headline = {
        "cost per 1M short-review requests at 2048 MB, zeroserve meter": f"${_per_million(short, 2048):.3f}",
        "  same on SageMaker with its ~60 ms overhead billed": f"${with_overhead:.2f}",
    }
    return section


def _meter_check(zs: Any, endpoint: str, lines: list[dict[str, Any]]) -> str:
    """Compare the server's own cost report with this section's arithmetic for the same requests."""
    answer = zs.http.get(f"{zs.url}/zeroserve/cost", params={"endpoint": endpoint})
    if answer.status_code != 200:
        return "The server has no /zeroserve/cost report to cross-check against."
    total = answer.json().get("total", {})
    server_usd = next((v for k, v in total.items() if "cost" in k and isinstance(v, int | float)), math.nan)
    ours = sum(
        charge_usd(float(x["model_ms"]), DEPLOYED_MEMORY_MB, int(x["bytes_in"]) + int(x["bytes_out"]))
        for x in lines
    )
    return (
        f"Cross-check: for the {len(lines)} requests of this section (warm-up included) at "
        f"{DEPLOYED_MEMORY_MB} MB, "
        f"the server's own meter (`/zeroserve/cost`) says ${server_usd:.8f} and this section's "
        f"arithmetic on its request log says ${ours:.8f}."
    )
