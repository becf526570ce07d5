"""Section 5: latency and cold start vs model size: MiniLM (22M), DistilBERT-size (66M) and BERT-base-size
(110M), the latter two built from configs with random weights (fine for timing)."""

from __future__ import annotations

from bench import inprocess, load, models
from bench.coldstart import NO_TEMPLATES, cold_request
from bench.context import Context, log
from bench.report import Section, Table, Target, bar_plot
from bench.stats import Summary, fmt
from bench.workload import TokenTexts, body
from bench.zsserver import running

NAME = "size"
TITLE = "5. Latency and cold start vs model size"
IDLE_TIMEOUT_S = 0.3


def run(ctx: Context) -> Section:
    section = Section(NAME, TITLE)
    sources = [models.minilm_classifier(), *(models.sized_classifier(name) for name in models.SIZES)]
    texts = TokenTexts(sources[0].checkpoint / "tokenizer.json")
    short, long = texts.text(16), texts.text(128)
    count, colds = ctx.pick(60, 10), ctx.pick(10, 3)
    rows, cold_p50, warm_p50 = [], [], []
    with running({"ZEROSERVE_IDLE_TIMEOUT_S": str(IDLE_TIMEOUT_S)}, log_name=NAME) as zs:
        for source in sources:
            log(f"size: {source.name}")
            bundle = models.bundle(source)
            handler, load_s = inprocess.load(bundle)
            local16 = Summary.of(inprocess.latencies_ms(handler, short, count))
            local128 = Summary.of(inprocess.latencies_ms(handler, long, count))
            del handler
            endpoint = f"size-{source.name}"
            zs.redeploy(endpoint, source, max_concurrency=2)
            cold_request(zs, endpoint, short)  # its first cold start (untimed) earns it a template
            cold = Summary.of([cold_request(zs, endpoint, short) for _ in range(colds)])
            url = zs.invocations_url(endpoint)
            load.sequential(zs.http, url, body(short), 3)
            warm = Summary.of(load.sequential(zs.http, url, body(short), count))
            variant = zs.variant(endpoint)
            rss = max((w["rss_mb"] for w in variant["workers"]), default=float("nan"))
            zs.delete(endpoint)
            rows.append(
                [
                    source.name,
                    fmt(source.parameters_m(), 0),
                    fmt(models.folder_mb(bundle), 0),
                    fmt(load_s * 1000, 0),
                    fmt(local16.p50, 2),
                    fmt(local128.p50, 2),
                    fmt(local128.p99, 2),
                    fmt(warm.p50, 2),
                    fmt(warm.p99, 2),
                    fmt(cold.p50, 0),
                    fmt(cold.p99, 0),
                    fmt(rss, 0),
                ]
            )
            cold_p50.append(cold.p50)
            warm_p50.append(warm.p50)
    # The same cold starts with templates off: each worker forked from the zygote loads the model itself.
    plain_p50: list[float] = []
    with running({"ZEROSERVE_IDLE_TIMEOUT_S": str(IDLE_TIMEOUT_S), **NO_TEMPLATES}, log_name=NAME) as zs:
        for source, row in zip(sources, rows, strict=True):
            endpoint = f"size-{source.name}"
            zs.redeploy(endpoint, source, max_concurrency=2)
            plain = Summary.of([cold_request(zs, endpoint, short) for _ in range(colds)])
            zs.delete(endpoint)
            row[-1:-1] = [fmt(plain.p50, 0), fmt(plain.p99, 0)]
            plain_p50.append(plain.p50)
    section.intro = (
        "Each model is converted by zeroserve (int8 ONNX) and timed three ways: zeroserve's handler in "
        "process "
        "(16 and 128 tokens, batch 1), warm over HTTP (16 tokens), and cold over HTTP (idle endpoint -> "
        "answer, "
        f"idle timeout {IDLE_TIMEOUT_S} s), with the variant's template (the default) and with templates "
        "off. Worker RSS is what `/zeroserve/status` reports for the warm "
        "worker."
    )
    section.tables.append(
        Table(
            [
                "model",
                "params M",
                "bundle MB",
                "load + warm-up ms (in process)",
                "16 tok p50 ms",
                "128 tok p50 ms",
                "128 tok p99 ms",
                "HTTP warm p50 ms",
                "HTTP warm p99 ms",
                "cold p50 ms",
                "cold p99 ms",
                "cold p50 ms, templates off",
                "cold p99 ms, templates off",
                "worker RSS MB",
            ],
            rows,
            note=f"{count} timed calls per figure, {colds} cold starts per model.",
        )
    )
    for source, p50 in zip(sources, cold_p50, strict=True):
        if source.name == "bert-base-size":
            section.targets.append(
                Target(
                    "cold start, BERT-base-size, HTTP request -> answer, p50",
                    "<= 80 ms",
                    f"{fmt(p50, 0)} ms",
                    p50 <= 80,
                )
            )
    section.plots.append(
        bar_plot(
            ctx.plot("model_size"),
            "Cold start and warm latency vs model size (HTTP, 16 tokens)",
            "ms",
            [s.name for s in sources],
            {"cold p50": cold_p50, "cold p50, templates off": plain_p50, "warm p50": warm_p50},
            logy=True,
        )
    )
    return section
