"""The deploy-time int8 fidelity gate: each int8 scheme in turn, fastest first, judged against fp32 through
the serving pipeline on the task's probe set (fidelity.py); the first that passes is served, else fp32.

The schemes themselves are convert.py's; dynamic int8 is calibrated here on the packaged texts (smoothing.py).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from zeroserve.conversion import convert, fidelity, smoothing
from zeroserve.errors import one_line
from zeroserve.runtimes.manifest import BundleManifest
from zeroserve.runtimes.pipeline import Pipeline
from zeroserve.runtimes.tasks import make_task
from zeroserve.runtimes.tokenizer import TextEncoder

# Texts the dynamic int8 scheme calibrates its smoothing on: 32, 48 and 64 measured alike (see smoothing.py).
CALIBRATION_TEXTS = 32
CALIBRATION_BATCH = 16


def optimized(path: Path) -> Path:
    """`path`'s graph fully optimized once, saved beside it: the gate and the workers open it as is."""
    out = path.with_suffix(".opt.onnx")
    convert.optimize(path, out)
    return out


def calibration_inputs(encoder: TextEncoder, manifest: BundleManifest) -> list[dict[str, np.ndarray]]:
    """Model inputs for activation smoothing: the packaged calibration texts, in padded batches of
    similar length (smoothing takes each text's peaks over its own tokens)."""
    texts = sorted(smoothing.calibration_texts(CALIBRATION_TEXTS), key=len)
    batches = []
    for start in range(0, len(texts), CALIBRATION_BATCH):
        arrays = encoder.encode(texts[start : start + CALIBRATION_BATCH]).arrays
        batches.append({name: arrays[name] for name in manifest.input_names})
    return batches


def int8(fp32: Path, scratch: Path, scheme: str, calibration: Sequence[Mapping[str, np.ndarray]]) -> Path:
    """The optimized int8 graph of `scheme`, quantized from the fused fp32 graph (made once)."""
    prepared = scratch / "model.prepared.onnx"
    if not prepared.is_file():
        convert.prepare(fp32, prepared)
    candidate = scratch / f"model.int8-{scheme}.onnx"
    convert.quantize_int8(prepared, candidate, scheme, calibration)
    return optimized(candidate)


def choose(
    work: Path,
    manifest: BundleManifest,
    fp32: Path,
    scratch: Path,
    calibration: Sequence[Mapping[str, np.ndarray]],
) -> tuple[dict[str, Any], Path]:
    """The fidelity gate's decision and the (optimized) file to serve: each int8 scheme in turn, fastest
    first, until one passes; fp32 if none does. A gate that cannot run keeps the safe choice, fp32, and
    says why. The fp32 reference is optimized and answers the probes in a second thread while the first
    int8 candidate is built (onnxruntime releases the GIL; quantization is mostly numpy)."""
    tried: list[dict[str, Any]] = []
    reasons: list[str] = []
    report: fidelity.FidelityReport | None = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="zeroserve-gate") as pool:
        reference = pool.submit(lambda: Judge(work, manifest, optimized(fp32)))
        try:
            for scheme in convert.INT8_SCHEMES:
                candidate = int8(fp32, scratch, scheme, calibration)
                judge = reference.result()
                report = judge.measure(candidate)
                tried.append(
                    {"scheme": scheme, "passed": report.passed, "metrics": report.to_dict()["metrics"]}
                )
                reasons.append(f"{scheme} " + report.summary())
                if report.passed:
                    return {
                        "mode": "gate",
                        "served": "int8",
                        "scheme": scheme,
                        "reason": one_line("; ".join(reasons)),
                        "report": report.to_dict(),
                        "tried": tried,
                        "gate_s": round(judge.elapsed_s, 3),
                    }, candidate
        except Exception as exc:
            reason = f"the int8 fidelity gate could not run ({type(exc).__name__}: {exc}); serving fp32 ONNX"
            return {"mode": "gate", "served": "fp32", "reason": one_line(reason)}, optimized(fp32)
    assert report is not None
    return {
        "mode": "gate",
        "served": "fp32",
        "reason": one_line("; ".join(reasons) + "; serving fp32 ONNX"),
        "report": report.to_dict(),
        "tried": tried,
        "gate_s": round(judge.elapsed_s, 3),
    }, judge.reference_path


class Judge:
    """int8 candidates against fp32 through the serving pipeline, on the task's probe set. The fp32
    answers are computed once (here, on construction), however many candidates are judged."""

    def __init__(self, work: Path, manifest: BundleManifest, reference_path: Path) -> None:
        started = time.perf_counter()
        self.work, self.manifest, self.reference_path = work, manifest, reference_path
        # Probes are judged with truncation on, so an over-long probe is compared rather than refused.
        self.gate_manifest = replace(manifest, truncation=True)
        self.reference = Remembered(self._pipeline(reference_path))
        self.vocabulary = sorted(self.reference.inner.encoder.tokenizer.get_vocab())
        self.reference.run(
            fidelity.probe_requests(
                manifest.task, self.vocabulary, fidelity.PROBES, mask_token=manifest.mask_token
            )
        )
        self.elapsed_s = time.perf_counter() - started

    def _pipeline(self, path: Path) -> Pipeline:
        from zeroserve.runtimes.loader import load_encoder, task_context
        from zeroserve.runtimes.onnx import OnnxModel

        encoder = load_encoder(self.work, self.gate_manifest)
        task = make_task(self.manifest.task, task_context(self.gate_manifest, encoder))
        return Pipeline(task, encoder, OnnxModel(path, self.manifest.output_names))

    def measure(self, candidate: Path) -> fidelity.FidelityReport:
        started = time.perf_counter()
        report = fidelity.measure(
            self.manifest.task,
            self.reference,
            self._pipeline(candidate),
            self.vocabulary,
            mask_token=self.manifest.mask_token,
        )
        self.elapsed_s += time.perf_counter() - started
        return report


class Remembered:
    """A pipeline whose answers to the last request list are kept (the probe set is the same each time)."""

    def __init__(self, inner: Pipeline) -> None:
        self.inner = inner
        self._last: tuple[list[Any], list[Any]] | None = None

    def run(self, requests: Sequence[tuple[Any, Mapping[str, Any]]]) -> list[Any]:
        if self._last is None or self._last[0] != list(requests):
            self._last = (list(requests), self.inner.run(requests))
        return self._last[1]
