"""Section 6: runtime choice for the same model and inputs: ONNX int8 (both schemes, and the recipe before
them) vs ONNX fp32 vs PyTorch fp32, in process, at 1 thread and all cores; and label agreement with fp32
(and accuracy) on the held-out IMDB reviews for the trained model, including what a default deploy serves."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from bench import models, probe
from bench.context import Context, log
from bench.models import ModelSource, cache_root
from bench.report import Section, Table, Target, bar_plot
from bench.stats import Summary, fmt, fmt_ratio, ratio
from bench.workload import TokenTexts, heldout_imdb, short_reviews

NAME = "runtimes"
TITLE = "6. Runtime: ONNX int8 vs ONNX fp32 vs PyTorch fp32"
PREVIOUS = "previous"  # the int8 recipe before the blockwise scheme: quantize the raw export, then optimize
# (title, runtime, quantize as build_bundle takes it or PREVIOUS, intra-op threads; None = every core)
KINDS: tuple[tuple[str, str, bool | str, int | None], ...] = (
    ("ONNX int8 dynamic", "onnx", "dynamic", None),
    ("ONNX int8 dynamic, 1 thread", "onnx", "dynamic", 1),
    ("ONNX int8 blockwise", "onnx", "blockwise", None),
    ("ONNX int8 blockwise, 1 thread", "onnx", "blockwise", 1),
    ("ONNX int8, previous recipe", "onnx", PREVIOUS, None),
    ("ONNX int8, previous recipe, 1 thread", "onnx", PREVIOUS, 1),
    ("ONNX fp32", "onnx", False, None),
    ("ONNX fp32, 1 thread", "onnx", False, 1),
    ("PyTorch fp32", "torch", False, None),
    ("PyTorch fp32, 1 thread", "torch", False, 1),
)
AGREEMENT_TARGET = 0.995


def previous_int8_bundle(source: ModelSource) -> Path:
    """The dynamic int8 bundle with model.onnx made the way zeroserve made it before the blockwise scheme
    (dynamic quantization of the raw export, then full optimization), for a same-run speed baseline."""
    from zeroserve.conversion import convert
    from zeroserve.runtimes.manifest import read_manifest
    from zeroserve.runtimes.tokenizer import TextEncoder
    from zeroserve.runtimes.torch_model import load_torch_model

    base = models.bundle(source, "onnx", "dynamic")
    folder = base.with_name(base.name.replace("int8-dynamic", "int8-previous"))
    if (folder / "bundle.json").is_file():
        return folder
    manifest = read_manifest(base)
    scratch = cache_root() / f".{folder.name}.build"
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(base, scratch)
    encoder = TextEncoder.from_file(
        base / "tokenizer.json",
        max_length=manifest.max_length,
        pad_token=manifest.pad_token,
        pad_token_id=manifest.pad_token_id,
        input_names=manifest.input_names,
    )
    sample = convert.sample_inputs(lambda texts: encoder.encode(texts).arrays, manifest.input_names)
    model = load_torch_model(source.checkpoint, manifest.task)
    convert.export_onnx(model, manifest.task, sample, scratch / "raw.onnx")
    # Exactly the old convert.quantize_int8: onnxruntime's quantize_dynamic on the raw export.
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        scratch / "raw.onnx", scratch / "int8.onnx", per_channel=True, weight_type=QuantType.QInt8
    )
    convert.optimize(scratch / "int8.onnx", scratch / "model.onnx")
    for name in ("raw.onnx", "int8.onnx"):
        (scratch / name).unlink()
    scratch.rename(folder)
    return folder


def _bundle(source: ModelSource, runtime: str, quantize: bool | str) -> Path:
    return previous_int8_bundle(source) if quantize == PREVIOUS else models.bundle(source, runtime, quantize)


def run(ctx: Context) -> Section:
    section = Section(NAME, TITLE)
    source = ctx.sentiment
    texts = TokenTexts(source.checkpoint / "tokenizer.json")
    short, long = texts.text(16), texts.text(128)
    batch = list(short_reviews()[:16])
    count = ctx.pick(100, 10)
    reviews = heldout_imdb(ctx.pick(2500, 50)) if source.trained else []
    rows, labels, p50_16, p50_128, p50_b16 = [], {}, [], [], []
    for title, runtime, quantize, threads in KINDS:
        log(f"runtimes: {title}")
        bundle = _bundle(source, runtime, quantize)
        # Agreement is a property of the model file, not of the thread count: classify once per file.
        to_classify = [text for text, _ in reviews] if runtime == "onnx" and threads is None else []
        inputs: dict[str, object] = {"16": short, "128": long, "batch16": batch}
        result = probe.run(bundle, count, inputs, to_classify, threads=threads)
        latencies: dict[str, list[float]] = result["latencies_ms"]  # type: ignore[assignment]
        s16, s128, sb16 = (Summary.of(latencies[k]) for k in ("16", "128", "batch16"))
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
                fmt(sb16.p50, 2),
            ]
        )
        p50_16.append(s16.p50)
        p50_128.append(s128.p50)
        p50_b16.append(sb16.p50)
    # Ratios against the previous int8 recipe at the same thread count (rows 4 and 5).
    for i, row in enumerate(rows):
        base = 4 + (i % 2)
        row.append(fmt_ratio(ratio(p50_16[i], p50_16[base])))
        row.append(fmt_ratio(ratio(p50_b16[i], p50_b16[base])))
    section.intro = (
        f"Model: {source.description}. The same checkpoint converted by zeroserve's `build_bundle`: int8 "
        "by each scheme (`ZEROSERVE_QUANTIZE=dynamic|blockwise`; dynamic smooths activation outlier "
        "channels into the weights first, calibrated on packaged text, and keeps embeddings fp16), int8 by "
        "the recipe zeroserve used before (onnxruntime's quantize_dynamic on the raw export, uint8 "
        "embeddings; same-run baseline), fp32, and PyTorch; each loaded with "
        "`load_handler` in a fresh process of its own (onnxruntime and torch in one process slow torch "
        "down ~10x) at 1 intra-op thread and at every core, and fed the same inputs at batch 1, plus a "
        "batch of 16 short reviews."
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
                "16 short reviews p50 ms",
                "16 tok vs previous int8",
                "16 reviews vs previous int8",
            ],
            rows,
            note=f"{count} timed calls per figure. Ratios: p50 over the previous int8 recipe's p50 at the "
            "same thread count (below 1.00x is faster).",
        )
    )
    shown = [0, 2, 4, 6, 8]
    section.plots.append(
        bar_plot(
            ctx.plot("runtimes"),
            "Runtime choice, same model, all cores (p50)",
            "ms",
            [KINDS[i][0] for i in shown],
            {"16 tokens": [p50_16[i] for i in shown], "128 tokens": [p50_128[i] for i in shown]},
        )
    )
    section.headline = {
        "ONNX int8 vs PyTorch fp32 (all cores / 1 thread), 16 tokens p50": (
            f"{fmt_ratio(ratio(p50_16[8], p50_16[0]))} / {fmt_ratio(ratio(p50_16[9], p50_16[1]))} faster"
        )
    }
    section.findings.append(
        f"PyTorch with one intra-op thread per core (zeroserve's default for every runtime) took "
        f"{fmt_ratio(ratio(p50_16[8], p50_16[9]))} the time of PyTorch with 1 thread at 16 tokens: on cores "
        "that other processes keep busy, its OpenMP threads wait for each other. ONNX Runtime, with spinning "
        "off, does not suffer this."
    )
    if labels:
        _agreement(ctx, section, source, reviews, labels, p50_16, p50_b16)
    else:
        section.findings.append(
            "int8 vs fp32 agreement was not measured: the trained sentiment model is not available, and a "
            "random head gives near-ties that say nothing about quantization."
        )
    return section


def _agreement(
    ctx: Context,
    section: Section,
    source: ModelSource,
    reviews: list[tuple[str, int]],
    labels: dict[str, list[str]],
    p50_16: list[float],
    p50_b16: list[float],
) -> None:
    fp32 = labels["ONNX fp32"]

    def same(title: str) -> float:
        return sum(a == b for a, b in zip(labels[title], fp32, strict=True)) / len(fp32)

    def accuracy(predicted: list[str]) -> float:
        hits = sum(_positive(p) == bool(label) for p, (_, label) in zip(predicted, reviews, strict=True))
        return hits / len(reviews)

    log("runtimes: what a default deploy serves (the fidelity gate's choice)")
    gated = json.loads((models.bundle(source, "onnx", None) / "bundle.json").read_text())["quantization"]
    served = "ONNX fp32" if gated["served"] == "fp32" else f"ONNX int8 {gated['scheme']}"
    rows = [["held-out IMDB reviews", str(len(reviews))]]
    for title in ("ONNX int8 dynamic", "ONNX int8 blockwise", "ONNX int8, previous recipe"):
        rows.append([f"{title} vs fp32, same label", f"{same(title):.2%}"])
    rows.append(["accuracy, ONNX fp32", f"{accuracy(fp32):.2%}"])
    for title in ("ONNX int8 dynamic", "ONNX int8 blockwise", "ONNX int8, previous recipe"):
        rows.append([f"accuracy, {title}", f"{accuracy(labels[title]):.2%}"])
    tried = "; ".join(
        f"{t['scheme']} {'passed' if t['passed'] else 'failed'}" for t in gated.get("tried", [])
    )
    rows.append(["served by a default deploy (fidelity gate)", f"{served} ({tried or gated['reason']})"])
    rows.append([f"accuracy, served ({served})", f"{accuracy(labels[served]):.2%}"])
    section.tables.append(Table(["figure", "value"], rows, "int8 vs fp32 agreement (target >= 99.5%)"))
    dynamic, blockwise = same("ONNX int8 dynamic"), same("ONNX int8 blockwise")
    section.headline["int8 vs fp32 same label, held-out IMDB (dynamic / blockwise)"] = (
        f"{dynamic:.2%} / {blockwise:.2%}"
    )
    # At least as fast as the previous int8 recipe: batch 1 and batch 16, at 1 thread and all cores.
    speed = max(ratio(p50_16[i], p50_16[4 + i % 2]) for i in (2, 3))
    speed = max(speed, *(ratio(p50_b16[i], p50_b16[4 + i % 2]) for i in (2, 3)))
    fastest = max(ratio(p50_16[i], p50_16[4 + i % 2]) for i in (0, 1))
    fastest = max(fastest, *(ratio(p50_b16[i], p50_b16[4 + i % 2]) for i in (0, 1)))
    section.targets.append(
        Target(
            "int8 vs fp32 agreement, 2,500 held-out reviews, at no loss of speed vs the previous int8",
            ">= 99.5% same label, time <= 1.00x",
            f"dynamic {dynamic:.2%} at {fmt_ratio(fastest)}; blockwise {blockwise:.2%} at {fmt_ratio(speed)}"
            " (worst of batch 1 / 16, 1 thread / all cores)",
            (dynamic >= AGREEMENT_TARGET and fastest <= 1.0)
            or (blockwise >= AGREEMENT_TARGET and speed <= 1.0),
        )
    )
    if ctx.quick:
        section.findings.append("Quick run: agreement on 50 reviews only; the target is judged on 2,500.")


def _positive(label: str) -> bool:
    return label.upper() in {"POSITIVE", "POS", "LABEL_1", "1"}
