"""One loaded model + its task: runs many requests' plans in one padded forward pass.

This is what a worker's batching buys: the sequences of every queued request are tokenized together,
padded to the longest, and sent through the model once; each request then gets its own rows back. Only a
batch above the task's token budget is split (into length-sorted chunks, so short texts do not pay for
long ones).
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
        budget = self.task.max_batch_tokens
        if count * width <= budget:
            return self.model.forward(arrays)
        lengths = arrays["attention_mask"].sum(axis=1)
        order = np.argsort(lengths, kind="stable")
        merged: dict[str, np.ndarray] = {}
        start = 0
        while start < count:
            stop = start + 1
            # Sorted ascending, so the chunk's width is its last row's length.
            while stop < count and (stop + 1 - start) * int(lengths[order[stop]]) <= budget:
                stop += 1
            rows = order[start:stop]
            chunk_width = int(lengths[rows].max())
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
            start = stop
        return merged
