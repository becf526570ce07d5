"""The tiny checkpoints the parity suite serves with zeroserve and with the toolkit (same weights)."""

from __future__ import annotations

from pathlib import Path

from models import tiny_bundle

NER_LABELS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}
SENTIMENT_LABELS = {0: "NEGATIVE", 1: "POSITIVE"}


def bundle(task: str, runtime: str) -> Path:
    """fp32 bundle of the seeded tiny BERT for `task`; its checkpoint is `models.source_of(bundle)`."""
    labels = {"token-classification": NER_LABELS, "text-classification": SENTIMENT_LABELS}.get(task)
    return tiny_bundle(task=task, runtime=runtime, quantize=False, id2label=labels)
