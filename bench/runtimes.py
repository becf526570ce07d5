"""Section 6: runtime choice for the same model and inputs: ONNX int8 vs ONNX fp32 vs PyTorch fp32, in
process; and int8 vs fp32 label agreement (and accuracy) on held-out IMDB reviews for the trained model."""

from __future__ import annotations

from bench import models, probe
from bench.context import Context, log
from bench.report import Section, Table, Target, bar_plot
from bench.stats import Summary, fmt, fmt_ratio, ratio
from bench.workload import TokenTexts, heldout_imdb, short_reviews

NAME = "runtimes"
TITLE = "6. Runtime: ONNX int8 vs ONNX fp32 vs PyTorch fp32"
# (title, runtime, quantize, intra-op threads; None = zeroserve's default, every core)
KINDS = (
    ("ONNX int8", "onnx", True, None),
    ("ONNX fp32", "onnx", False, None),
    ("PyTorch fp32", "torch", False, None),
    ("PyTorch fp32, 1 thread", "torch", False, 1),
)


def run(ctx: Context) -> Section:
    section = Section(NAME, TITLE)
    source = ctx.sentiment
    texts = TokenTexts(source.checkpoint / "tokenizer.json")
    short, long = texts.text(16), texts.text(128)
    batch = list(short_reviews()[:8])
    count = ctx.pick(100, 10)
    reviews = heldout_imdb(ctx.pick(500, 50)) if source.trained else []
    rows, labels, p50_16, p50_128 = [], {}, [], []
    for title, runtime, quantize, threads in KINDS:
        log(f"runtimes: {title}")
        bundle = models.bundle(source, runtime, quantize)
        to_classify = [text for text, _ in reviews] if runtime == "onnx" else []
        inputs: dict[str, object] = {"16": short, "128": long, "batch8": batch}
        result = probe.run(bundle, count, inputs, to_classify, threads=threads)
        latencies: dict[str, list[float]] = result["latencies_ms"]  # type: ignore[assignment]
        s16, s128, s8 = (Summary.of(latencies[k]) for k in ("16", "128", "batch8"))
        if to_classify:
            labels[title] = list(result["labels"])  # type: ignore[call-overload]
        rows.append(
            [
                title,
                fmt(models.folder_mb(bundle), 0),
                fmt(float(result["load_ms"]), 0),  # type: ignore[arg-type]
                fmt(s16.p50, 2),
                fmt(s16.p99, 2),
                fmt(s128.p50, 2),
                fmt(s128.p99, 2),
                fmt(s8.p50, 2),
            ]
        )
        p50_16.append(s16.p50)
        p50_128.append(s128.p50)
    for row, value in zip(rows, p50_16, strict=True):
        row.append(fmt_ratio(ratio(value, p50_16[0])))
    section.intro = (
        f"Model: {source.description}. The same checkpoint converted three ways by zeroserve's "
        "`build_bundle`, each loaded with `load_handler` in a fresh process of its own (all cores; "
        "onnxruntime and torch in one process slow torch down ~10x) and fed the same inputs at batch 1, "
        "plus a batch of 8 short reviews."
    )
    section.tables.append(
        Table(
            [
                "runtime",
                "bundle MB",
                "load + warm-up ms",
                "16 tok p50 ms",
                "16 tok p99 ms",
                "128 tok p50 ms",
                "128 tok p99 ms",
                "8 short reviews p50 ms",
                "16 tok vs int8",
            ],
            rows,
            note=f"{count} timed calls per figure.",
        )
    )
    section.plots.append(
        bar_plot(
            ctx.plot("runtimes"),
            "Runtime choice, same model, batch 1 (p50)",
            "ms",
            [k[0] for k in KINDS],
            {"16 tokens": p50_16, "128 tokens": p50_128},
        )
    )
    section.headline = {
        "ONNX int8 vs PyTorch fp32 (all cores / 1 thread), 16 tokens p50": (
            f"{fmt_ratio(ratio(p50_16[2], p50_16[0]))} / {fmt_ratio(ratio(p50_16[3], p50_16[0]))} faster"
        )
    }
    section.findings.append(
        f"PyTorch with one intra-op thread per core (zeroserve's default for every runtime) took "
        f"{fmt_ratio(ratio(p50_16[2], p50_16[3]))} the time of PyTorch with 1 thread at 16 tokens: on cores "
        "that other processes keep busy, its OpenMP threads wait for each other. ONNX Runtime, with spinning "
        "off, does not suffer this. See the load average below."
    )
    if labels:
        _agreement(section, reviews, labels)
    else:
        section.findings.append(
            "int8 vs fp32 agreement was not measured: the trained sentiment model is not available, and a "
            "random "
            "head gives near-ties that say nothing about quantization."
        )
    return section


def _agreement(section: Section, reviews: list[tuple[str, int]], labels: dict[str, list[str]]) -> None:
    int8, fp32 = labels["ONNX int8"], labels["ONNX fp32"]
    same = sum(a == b for a, b in zip(int8, fp32, strict=True)) / len(int8)

    def accuracy(predicted: list[str]) -> float:
        hits = sum(
            p.endswith(str(label)) or _positive(p) == bool(label)
            for p, (_, label) in zip(predicted, reviews, strict=True)
        )
        return hits / len(reviews)

    section.tables.append(
        Table(
            ["figure", "value"],
            [
                ["held-out IMDB reviews", str(len(reviews))],
                ["int8 vs fp32 same label", f"{same:.2%}"],
                ["accuracy, ONNX fp32", f"{accuracy(fp32):.2%}"],
                ["accuracy, ONNX int8", f"{accuracy(int8):.2%}"],
            ],
            "int8 vs fp32 agreement (target >= 99.5%)",
        )
    )
    section.headline["int8 vs fp32 same label, held-out IMDB"] = f"{same:.2%}"
    section.targets.append(
        Target(
            "int8 vs fp32 agreement, held-out reviews", ">= 99.5% same label", f"{same:.2%}", same >= 0.995
        )
    )


def _positive(label: str) -> bool:
    return label.upper() in {"POSITIVE", "POS", "LABEL_1", "1"}
