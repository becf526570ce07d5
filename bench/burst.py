"""Section 3: a burst of 10 x MaxConcurrency requests at once. Every request must end as an answer or an
explicit ThrottlingException; none may be lost (connection error, timeout, 5xx)."""

from __future__ import annotations

import math

from bench import load
from bench.context import Context, log
from bench.report import Section, Table
from bench.stats import Summary, fmt
from bench.workload import body, short_reviews
from bench.zsserver import Zeroserve, running

NAME = "burst"
TITLE = "3. Burst of 10 x MaxConcurrency"
ENDPOINT = "burst"
IDLE_TIMEOUT_S = 0.5


def _counter_delta(zs: Zeroserve, before: dict[str, float]) -> dict[str, float]:
    return {name: zs.metric(name, ENDPOINT) - value for name, value in before.items()}


def _counters(zs: Zeroserve) -> dict[str, float]:
    names = ("zeroserve_invocations_total", "zeroserve_throttles_total")
    return {name: (0.0 if math.isnan(v := zs.metric(name, ENDPOINT)) else v) for name in names}


def run(ctx: Context) -> Section:
    section = Section(NAME, TITLE)
    max_concurrency = ctx.pick(10, 5)
    count = 10 * max_concurrency
    text = short_reviews()[0]
    rows = []
    lost_total = 0
    with running({"ZEROSERVE_IDLE_TIMEOUT_S": str(IDLE_TIMEOUT_S)}, log_name=NAME) as zs:
        zs.redeploy(ENDPOINT, ctx.sentiment, max_concurrency=max_concurrency)
        url = zs.invocations_url(ENDPOINT)
        for scenario in ("from zero (no worker)", "warm (one worker up)"):
            if scenario.startswith("warm"):
                load.sequential(zs.http, url, body(text), 3)
            else:
                zs.wait_for_workers(ENDPOINT, 0)
            before = _counters(zs)
            log(f"burst: {count} requests at once, {scenario}")
            result = load.burst(url, body(text), count)
            workers_after = zs.workers(ENDPOINT)
            delta = _counter_delta(zs, before)
            served = Summary.of(
                [float(x["total_ms"]) for x in zs.request_log(ENDPOINT, count) if x.get("status") == 200]
            )
            answered = result.outcomes["200"]
            throttled = sum(v for k, v in result.outcomes.items() if "Throttling" in k)
            lost = result.sent - answered - throttled
            lost_total += lost + (count - result.sent)
            other = ", ".join(
                f"{k}: {v}" for k, v in result.outcomes.items() if k != "200" and "Throttling" not in k
            )
            summary = result.summary
            rows.append(
                [
                    scenario,
                    str(count),
                    str(answered),
                    str(throttled),
                    str(lost),
                    other or "-",
                    f"{fmt(delta['zeroserve_invocations_total'], 0)} / "
                    f"{fmt(delta['zeroserve_throttles_total'], 0)}",
                    fmt(summary.p50),
                    fmt(summary.p99),
                    fmt(served.p50),
                    fmt(served.p99),
                    str(workers_after),
                ]
            )
            zs.wait_for_workers(ENDPOINT, 0, timeout_s=30)
    queue = "the server's `ZEROSERVE_QUEUE_PER_ENDPOINT` (default: MaxConcurrency) may wait beyond it"
    section.intro = (
        f"Endpoint with `MaxConcurrency={max_concurrency}`, idle timeout {IDLE_TIMEOUT_S} s; {count} "
        "requests "
        f"(a short review each) sent at the same instant on {count} connections. Up to MaxConcurrency run "
        "at once, "
        f"{queue}, the rest must get `ThrottlingException` (HTTP 400) at once."
    )
    section.tables.append(
        Table(
            [
                "scenario",
                "sent",
                "answered",
                "throttled",
                "lost",
                "other outcomes",
                "server: invocations / throttles",
                "answered p50 ms",
                "answered p99 ms",
                "server p50 ms",
                "server p99 ms",
                "workers after",
            ],
            rows,
            note="`lost` counts connection errors, timeouts and anything that is neither an answer nor a "
            "throttle. Answered latencies are the client's (connection set-up included: each opens its "
            "own connection at the same instant); server p50/p99 are arrival -> answer in the request log. "
            "The invocations/throttles columns are deltas of `zeroserve_invocations_total` and "
            "`zeroserve_throttles_total` in /metrics.",
        )
    )
    verdict = "no request lost" if lost_total == 0 else f"{lost_total} requests LOST"
    section.headline = {f"burst of 10 x MaxConcurrency ({count} requests), twice": verdict}
    section.findings.append(
        f"Burst: {verdict}; every request was answered or throttled explicitly."
        if lost_total == 0
        else f"**Loses** requests in a burst: {verdict}."
    )
    return section
