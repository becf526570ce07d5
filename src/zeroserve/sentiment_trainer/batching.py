"""Turning reviews into padded tensor batches: tokenize once, batch by similar length, pad per batch.

Padding each batch only to its longest member (dynamic padding), with batches built from reviews of similar
length, spends compute on tokens instead of pad: Rotten Tomatoes reviews are ~25 tokens, IMDB ~230.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from zeroserve.sentiment_trainer.data import Review

#: Batches are formed inside windows of this many batches, sorted by length, so that training order stays
#: random at the scale of an epoch while each batch holds reviews of similar length.
_BUCKET_WINDOW_BATCHES = 50


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    label: int


@dataclass(frozen=True)
class Batch:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor

    @property
    def size(self) -> int:
        return int(self.labels.shape[0])

    def model_inputs(self) -> dict[str, torch.Tensor]:
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask}


def encode(tokenizer: Any, reviews: Sequence[Review], max_length: int) -> list[Encoded]:
    """Token ids for each review, truncated to `max_length`, unpadded. Padding and truncation are passed
    explicitly because the shipped tokenizer.json pins both to 128."""
    if not reviews:
        return []
    ids = tokenizer([r.text for r in reviews], truncation=True, max_length=max_length, padding=False)[
        "input_ids"
    ]
    return [Encoded(input_ids=list(t), label=r.label) for t, r in zip(ids, reviews, strict=True)]


def collate(examples: Sequence[Encoded], pad_id: int = 0) -> Batch:
    width = max(len(e.input_ids) for e in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example.input_ids)
        input_ids[row, :n] = torch.tensor(example.input_ids, dtype=torch.long)
        attention_mask[row, :n] = 1
    labels = torch.tensor([e.label for e in examples], dtype=torch.long)
    return Batch(input_ids=input_ids, attention_mask=attention_mask, labels=labels)


def training_batches(
    examples: Sequence[Encoded], batch_size: int, rng: random.Random, pad_id: int = 0
) -> Iterator[Batch]:
    """One epoch in random order, batches of similar length (a bucketing sampler)."""
    order = list(examples)
    rng.shuffle(order)
    window = batch_size * _BUCKET_WINDOW_BATCHES
    groups: list[list[Encoded]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda e: len(e.input_ids))
        groups.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(groups)
    for group in groups:
        yield collate(group, pad_id)


def evaluation_batches(examples: Sequence[Encoded], batch_size: int, pad_id: int = 0) -> Iterator[Batch]:
    """All examples, sorted by length (order does not matter for accuracy)."""
    ordered = sorted(examples, key=lambda e: len(e.input_ids))
    for start in range(0, len(ordered), batch_size):
        yield collate(ordered[start : start + batch_size], pad_id)


def batch_count(n_examples: int, batch_size: int) -> int:
    return -(-n_examples // batch_size)
