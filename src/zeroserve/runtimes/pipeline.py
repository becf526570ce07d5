"""One loaded model + its task: runs many requests' plans in as few padded forward passes as pays.

This is what a worker's batching buys: the sequences of every queued request are tokenized together and
sent through the model in as few passes as pays; each request then gets its own rows back. A pass costs its
rows times its width (every row is padded to the longest) plus a fixed cost per call, so the sequences are
sorted by length and cut where padding short texts to long ones would cost more than another call
(`plan_chunks`), and never above the task's token budget. On CPU, padding is what batching costs: a batch
of 16 short reviews padded to its longest spent ~40% more model time per review than the same reviews
grouped by length (measured, BENCHMARKS.md section 7).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from zeroserve.runtimes.base import ClientInputError
from zeroserve.runtimes.tasks import Plan, Rows, Task
from zeroserve.runtimes.tokenizer import EncodedBatch, TextEncoder


class Model(Protocol):
    """A forward pass: named int64 [batch, tokens] inputs -> named output arrays (batch first)."""

    def forward(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...


class Pipeline:
    def __init__(self, task: Task, encoder: TextEncoder, model: Model) -> None:
        self.task = task
        self.encoder = encoder
        self.model = model

    def __call__(self, inputs: Any, **parameters: Any) -> Any:
        """transformers-pipeline style call for one request: what custom `predict_fn`s expect of a model."""
        result = self.run([(inputs, parameters)])[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def run(self, requests: Sequence[tuple[Any, Mapping[str, Any]]]) -> list[Any]:
        """One result per (inputs, parameters), or the exception that request raised, same order."""
        results: list[Any] = [None] * len(requests)
        plans: list[tuple[int, Plan]] = []
        for i, (inputs, parameters) in enumerate(requests):
            try:
                plan = self.task.plan(inputs, parameters)
            except Exception as exc:
                results[i] = exc
                continue
            if plan.sequences:
                plans.append((i, plan))
            else:
                results[i] = []  # an empty list of inputs, answered as transformers does
        plans, batch = self._encode(plans, results)
        if not plans:
            return results
        try:
            outputs = self._forward(batch)
        except Exception as exc:  # e.g. out of memory: every request in the pass failed with it
            for i, _ in plans:
                results[i] = exc
            return results
        row, sequence = 0, 0
        for i, plan in plans:
            windows = [1] * len(plan.sequences)
            if batch.windows is not None:
                windows = batch.windows[sequence : sequence + len(plan.sequences)]
            sequence += len(plan.sequences)
            count = sum(windows)
            rows = Rows(
                encodings=batch.encodings[row : row + count],
                outputs={name: array[row : row + count] for name, array in outputs.items()},
                windows=windows,
            )
            row += count
            try:
                if not plan.allow_truncation and any(e.overflowing for e in rows.encodings):
                    # The toolkit's model fails on such an input (a 400 about tensor sizes); say why instead.
                    limit = self.encoder.max_length
                    raise ClientInputError(
                        f"the input is longer than this model's maximum of {limit} tokens; pass "
                        '"truncation": true in "parameters" to cut it to fit'
                    )
                results[i] = plan.finish(rows)
            except Exception as exc:
                results[i] = exc
        return results

    def _encode(
        self, plans: list[tuple[int, Plan]], results: list[Any]
    ) -> tuple[list[tuple[int, Plan]], EncodedBatch]:
        """Tokenize every plan's sequences together. The tokenizer fails a whole batch at once (say, a
        question too long to leave room for its context), so when it does, find and fail only the culprits."""
        windows = self.task.window_length is not None
        sequences = [s for _, plan in plans for s in plan.sequences]
        try:
            return plans, self.encoder.encode(sequences, windows=windows)
        except Exception:
            pass
        kept = []
        for i, plan in plans:
            try:
                self.encoder.encode(plan.sequences)
                kept.append((i, plan))
            except Exception as exc:
                results[i] = ClientInputError(f"cannot tokenize the input: {exc}")
        return kept, self.encoder.encode([s for _, plan in kept for s in plan.sequences], windows=windows)

    def _forward(self, batch: EncodedBatch) -> dict[str, np.ndarray]:
        arrays = batch.arrays
        count, width = arrays["input_ids"].shape
        if count == 1:
            return self.model.forward(arrays)
        lengths = arrays["attention_mask"].sum(axis=1)
        order = np.argsort(lengths, kind="stable")
        chunks = plan_chunks([int(lengths[i]) for i in order], self.task.max_batch_tokens)
        if len(chunks) == 1 and int(lengths.max()) == width:
            return self.model.forward(arrays)  # one pass over the batch as it is: nothing to gather
        merged: dict[str, np.ndarray] = {}
        for start, stop in chunks:
            rows = order[start:stop]
            chunk_width = int(lengths[rows].max())  # sorted ascending: the chunk's longest is its last
            out = self.model.forward({name: a[rows, :chunk_width] for name, a in arrays.items()})
            for name, array in out.items():
                if name not in merged:
                    shape = (
                        (count, width, *array.shape[2:])
                        if self.task.token_level
                        else (count, *array.shape[1:])
                    )
                    merged[name] = np.zeros(shape, dtype=array.dtype)
                if self.task.token_level:
                    merged[name][rows, :chunk_width] = array
                else:
                    merged[name][rows] = array
        return merged


# What one more forward pass costs beyond its tokens, in padded token rows: the runtime's fixed work per call
# (MiniLM int8 on one thread: ~0.45 ms per call against ~0.05 ms per token row, ~9 rows; batches of 16
# short reviews cost within 3% of each other for any value from 4 to 16, and 50% more with no cuts).
CALL_COST_TOKENS = 8
# The longest chunk the planner considers: keeps planning linear in the batch size for huge input lists.
_MAX_CHUNK_ROWS = 256


def plan_chunks(
    lengths: Sequence[int], budget_tokens: int, call_cost_tokens: int = CALL_COST_TOKENS
) -> list[tuple[int, int]]:
    """Cut sequences sorted by ascending length into [start, stop) chunks, one forward pass each, that
    minimise the padded tokens (rows x the chunk's longest) plus `call_cost_tokens` per pass; a chunk stays
    within `budget_tokens` unless it is a single sequence. Exact (dynamic programming over cut points)."""
    count = len(lengths)
    best = [0.0] + [float("inf")] * count  # best[j]: cheapest plan for the first j sequences
    cut = [0] * (count + 1)
    for stop in range(1, count + 1):
        width = lengths[stop - 1]
        for start in range(stop - 1, max(-1, stop - 1 - _MAX_CHUNK_ROWS), -1):
            rows = stop - start
            if rows > 1 and rows * width > budget_tokens:
                break  # longer chunks (smaller start) only grow
            cost = best[start] + call_cost_tokens + rows * width
            if cost < best[stop]:
                best[stop], cut[stop] = cost, start
    chunks = []
    stop = count
    while stop > 0:
        chunks.append((cut[stop], stop))
        stop = cut[stop]
    return chunks[::-1]
