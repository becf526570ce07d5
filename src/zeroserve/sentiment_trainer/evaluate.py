"""Accuracy of a classifier on a list of reviews: batched, dynamically padded, no autograd."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from rich.progress import Progress

from zeroserve.sentiment_trainer import precision as precision_mod
from zeroserve.sentiment_trainer.batching import encode, evaluation_batches
from zeroserve.sentiment_trainer.data import Review
from zeroserve.sentiment_trainer.options import Precision


@dataclass(frozen=True)
class EvalResult:
    name: str
    count: int
    correct: int
    duration_s: float

    @property
    def accuracy(self) -> float:
        return self.correct / self.count if self.count else float("nan")

    def to_json(self) -> dict[str, Any]:
        return {
            "accuracy": round(self.accuracy, 6) if self.count else None,
            "count": self.count,
            "correct": self.correct,
            "duration_s": round(self.duration_s, 3),
        }


def evaluate(
    model: Any,
    tokenizer: Any,
    reviews: Sequence[Review],
    *,
    name: str,
    max_length: int,
    batch_size: int,
    precision: Precision,
    progress: Progress,
) -> EvalResult:
    started = time.perf_counter()
    examples = encode(tokenizer, reviews, max_length)
    task = progress.add_task(f"eval {name}", total=len(examples), stats="")
    arithmetic = precision_mod.resolve(precision)
    correct = seen = 0
    model.eval()
    with torch.inference_mode():
        for batch in evaluation_batches(examples, batch_size, tokenizer.pad_token_id or 0):
            with precision_mod.autocast(arithmetic):
                logits = model(**batch.model_inputs()).logits
            correct += int((logits.argmax(dim=-1) == batch.labels).sum())
            seen += batch.size
            progress.update(task, advance=batch.size, stats=f"acc {correct / seen:.3f}")
    duration_s = time.perf_counter() - started
    return EvalResult(name=name, count=len(examples), correct=correct, duration_s=duration_s)
