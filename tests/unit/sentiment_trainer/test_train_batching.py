"""Batching for training and evaluation: dynamic padding, every example exactly once."""

from __future__ import annotations

import random

from zeroserve.sentiment_trainer.batching import Encoded, collate, evaluation_batches, training_batches


def _examples(lengths: list[int]) -> list[Encoded]:
    return [Encoded(input_ids=[101 + i] * n, label=i % 2) for i, n in enumerate(lengths)]


def test_a_batch_is_padded_only_to_its_longest_member() -> None:
    batch = collate(_examples([3, 5, 2]))
    assert tuple(batch.input_ids.shape) == (3, 5)
    assert batch.attention_mask.sum(dim=1).tolist() == [3, 5, 2]
    assert batch.input_ids[2, 2:].tolist() == [0, 0, 0]
    assert batch.labels.tolist() == [0, 1, 0]


def test_training_batches_cover_every_example_once() -> None:
    examples = _examples([random.Random(i).randint(1, 50) for i in range(203)])
    batches = list(training_batches(examples, batch_size=16, rng=random.Random(0)))
    firsts = sorted(int(b.input_ids[r, 0]) for b in batches for r in range(b.size))
    assert firsts == sorted(e.input_ids[0] for e in examples)
    assert len(batches) == 13


def test_training_order_depends_on_the_seed() -> None:
    examples = _examples(list(range(1, 100)))

    def order(seed: int) -> list[int]:
        batches = training_batches(examples, batch_size=8, rng=random.Random(seed))
        return [int(b.input_ids[0, 0]) for b in batches]

    assert order(1) == order(1)
    assert order(1) != order(2)


def test_evaluation_batches_group_similar_lengths() -> None:
    examples = _examples([100, 2, 99, 3, 98, 1])
    widths = [int(b.input_ids.shape[1]) for b in evaluation_batches(examples, batch_size=3)]
    assert widths == [3, 100]
