"""Section 4: latency vs input length (8..512 tokens), batch 1, p50/p99, in process and over HTTP."""

from __future__ import annotations

from bench import inprocess, load, models
from bench.context import Context, log
from bench.report import Section, Table, line_plot
from bench.stats import Summary, fmt
from bench.workload import TokenTexts, body
from bench.zsserver import running

NAME = "length"
TITLE = "4. Latency vs input length"
ENDPOINT = "length"
LENGTHS = (8, 32, 128, 256, 512)


def run(ctx: Context) -> Section:
    section = Section(NAME, TITLE)
    source = models.minilm_classifier()  # 512-token window; the trained model's tokenizer stops at 128
    texts = TokenTexts(source.checkpoint / "tokenizer.json")
    count, max_s = ctx.pick(100, 10), ctx.seconds(12, 3)
    local: dict[int, Summary] = {}
    remote: dict[int, Summary] = {}
    handler, _ = inprocess.load(models.bundle(source))
    with running(log_name=NAME) as zs:
        zs.redeploy(ENDPOINT, source, max_concurrency=2)
        url = zs.invocations_url(ENDPOINT)
        for tokens in LENGTHS:
            text = texts.text(tokens)
            log(f"length: {tokens} tokens")
            load.sequential(zs.http, url, body(text), 3)
            remote[tokens] = Summary.of(load.sequential(zs.http, url, body(text), count, max_s))
            local[tokens] = Summary.of(inprocess.latencies_ms(handler, text, count, max_s))
    del handler
    section.intro = (
        f"Model: {source.description}, int8 ONNX (the MiniLM's own 512-token window). Inputs are cut from a "
        "held-out IMDB review to exactly N tokens ([CLS] and [SEP] included); batch 1, sequential. In "
        "process: "
        "zeroserve's handler called directly; HTTP: the same bundle behind a zeroserve endpoint."
    )
    section.tables.append(
        Table(
            [
                "tokens",
                "in-process p50 ms",
                "in-process p99 ms",
                "HTTP p50 ms",
                "HTTP p99 ms",
                "HTTP - in-process (p50)",
            ],
            [
                [
                    str(t),
                    fmt(local[t].p50, 2),
                    fmt(local[t].p99, 2),
                    fmt(remote[t].p50, 2),
                    fmt(remote[t].p99, 2),
                    fmt(remote[t].p50 - local[t].p50, 2),
                ]
                for t in LENGTHS
            ],
            note=f"{count} requests per length (or {max_s:.0f} s, whichever comes first).",
        )
    )
    section.plots.append(
        line_plot(
            ctx.plot("latency_vs_length"),
            "Latency vs input length (MiniLM int8, batch 1)",
            "tokens",
            "ms",
            {
                "in process p50": (LENGTHS, [local[t].p50 for t in LENGTHS]),
                "HTTP p50": (LENGTHS, [remote[t].p50 for t in LENGTHS]),
                "HTTP p99": (LENGTHS, [remote[t].p99 for t in LENGTHS]),
            },
            logx=True,
            logy=True,
        )
    )
    growth = local[512].p50 / local[8].p50 if local[8].p50 else float("nan")
    section.findings.append(
        f"512 tokens cost {growth:.0f}x the time of 8 tokens in process ({fmt(local[8].p50, 2)} -> "
        f"{fmt(local[512].p50, 1)} ms): attention is quadratic and the feed-forward linear in length; the "
        "server's share stays constant, so it matters only for short inputs."
    )
    return section
