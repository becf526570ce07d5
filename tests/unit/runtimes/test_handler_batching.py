"""The default handler: per-invocation validation, one forward pass per batch, results split back."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runtime_helpers import answer, invoke
from zeroserve.runtimes.base import ClientInputError, Invocation, ModelServerError
from zeroserve.runtimes.handler import DefaultHandler
from zeroserve.runtimes.loader import load_handler
from zeroserve.runtimes.pipeline import plan_chunks

LABELS = {0: "NEGATIVE", 1: "POSITIVE"}
REVIEWS = [
    "Loved it.",
    "The second half drags, but the ending makes up for most of it.",
    "Worst film of the year",
    "An uneven, often funny, occasionally moving story about a family that cannot stop arguing.",
]


class CountingModel:
    """The real model, counting forward passes and their shapes."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.shapes: list[tuple[int, int]] = []

    def forward(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.shapes.append(inputs["input_ids"].shape)
        result: dict[str, np.ndarray] = self.inner.forward(inputs)
        return result


def counted(bundle: Path) -> tuple[DefaultHandler, CountingModel]:
    handler = load_handler(bundle)
    assert isinstance(handler, DefaultHandler)
    counter = CountingModel(handler.pipeline.model)
    handler.pipeline.model = counter
    return handler, counter


def test_bad_invocations_fail_in_their_slot_and_neighbours_succeed(bundle_for: Callable[..., Path]) -> None:
    handler = load_handler(bundle_for("text-classification", id2label=LABELS))
    outcomes = handler.handle_batch(
        [
            invoke({"inputs": "fine"}),
            invoke(b"{not json"),
            invoke({"texts": "no inputs key, and not a text pair either"}),
            invoke({"inputs": 42}),
            invoke({"inputs": "fine", "parameters": {"bogus": 3}}),
            invoke({"inputs": "fine"}, accept="application/xml"),
            invoke(b"\xff\xfe", content_type="application/json"),
            invoke({"inputs": "also fine"}),
        ]
    )
    assert [type(o).__name__ for o in outcomes] == ["Reply"] + ["ModelServerError"] * 6 + ["Reply"]
    assert "Expecting property name" in str(outcomes[1])  # json.loads' own words, as the toolkit relays
    assert "text_pair" in str(outcomes[2])
    assert "unexpected keyword argument \\u0027bogus\\u0027" in str(outcomes[4])
    assert answer(outcomes[0])[0]["label"] in LABELS.values()


def test_csv_bodies_are_inputs_and_plain_text_is_refused_as_the_toolkit_does(
    bundle_for: Callable[..., Path],
) -> None:
    handler = load_handler(bundle_for("text-classification", id2label=LABELS))
    as_json, as_text, as_csv = handler.handle_batch(
        [
            invoke({"inputs": [REVIEWS[0], REVIEWS[2]]}),
            invoke(REVIEWS[0].encode(), content_type="text/plain; charset=utf-8"),
            invoke(f"inputs\n{REVIEWS[0]}\n{REVIEWS[2]}\n".encode(), content_type="text/csv"),
        ]
    )
    assert isinstance(as_text, ModelServerError)
    assert "text/plain; charset=utf-8 is not supported" in as_text.message
    assert answer(as_csv) == answer(as_json)


def test_a_batch_of_invocations_runs_as_one_forward_pass(bundle_for: Callable[..., Path]) -> None:
    handler, model = counted(bundle_for("text-classification", id2label=LABELS))
    # About the same length: one pass pays.
    similar = [REVIEWS[1], REVIEWS[1].replace("second", "first"), REVIEWS[1] + "!"]
    bodies = [
        {"inputs": similar[0]},
        {"inputs": similar[1:], "parameters": {"top_k": None}},
        {"inputs": similar[0], "parameters": {"function_to_apply": "none"}},
    ]
    batched = handler.handle_batch([invoke(b) for b in bodies])
    assert len(model.shapes) == 1 and model.shapes[0][0] == 4
    one_by_one = [handler.handle_batch([invoke(b)])[0] for b in bodies]
    for together, alone in zip(batched, one_by_one, strict=True):
        assert _close(answer(together), answer(alone))


def test_short_and_long_inputs_go_through_in_separate_passes(bundle_for: Callable[..., Path]) -> None:
    handler, model = counted(bundle_for("text-classification", id2label=LABELS))
    long_text = " ".join(REVIEWS) * 2
    texts = ["Loved it.", long_text, "Awful.", long_text + " Really.", "Fine."]
    batched = handler.handle_batch([invoke({"inputs": text}) for text in texts])
    # The three short ones are not padded to the long ones' width: a pass for each length group.
    assert len(model.shapes) == 2 and sorted(rows for rows, _ in model.shapes) == [2, 3]
    assert sum(rows * width for rows, width in model.shapes) < 5 * max(width for _, width in model.shapes)
    alone = [handler.handle_batch([invoke({"inputs": text})])[0] for text in texts]
    assert _close([answer(o) for o in batched], [answer(o) for o in alone])


@pytest.mark.parametrize("quantize", [False, True])
def test_batched_results_equal_one_by_one_results(bundle_for: Callable[..., Path], quantize: bool) -> None:
    handler = load_handler(bundle_for("text-classification", quantize=quantize, id2label=LABELS))
    requests = [invoke({"inputs": text, "parameters": {"top_k": None}}) for text in REVIEWS * 3]
    batched = [answer(o) for o in handler.handle_batch(requests)]
    alone = [answer(handler.handle_batch([r])[0]) for r in requests]
    # int8 activations are quantized per tensor, so batch neighbours nudge scores slightly; labels hold.
    assert [[e["label"] for e in r] for r in batched] == [[e["label"] for e in r] for r in alone]
    assert _close(batched, alone, tol=1e-5 if not quantize else 2e-2)


@pytest.mark.parametrize("task", ["token-classification", "question-answering", "zero-shot-classification"])
def test_batching_is_transparent_for_other_tasks(bundle_for: Callable[..., Path], task: str) -> None:
    handler, model = counted(bundle_for(task))
    example = {
        "token-classification": lambda i: {"inputs": REVIEWS[i]},
        "question-answering": lambda i: {"inputs": {"question": "What drags?", "context": REVIEWS[i]}},
        "zero-shot-classification": lambda i: {
            "inputs": REVIEWS[i],
            "parameters": {"candidate_labels": ["a", "b"]},
        },
    }[task]
    requests = [invoke(example(i)) for i in range(len(REVIEWS))]
    batched = handler.handle_batch(requests)
    assert len(model.shapes) < len(requests) * 2  # batched, in length groups
    alone = [handler.handle_batch([r])[0] for r in requests]
    assert _close([answer(o) for o in batched], [answer(o) for o in alone])


def test_a_batch_over_the_token_budget_is_split_by_length(bundle_for: Callable[..., Path]) -> None:
    handler, model = counted(bundle_for("token-classification"))
    handler.pipeline.task.max_batch_tokens = 64  # type: ignore[misc]
    texts = [REVIEWS[0], REVIEWS[3] * 2, REVIEWS[2], REVIEWS[1]]
    split = answer(handler.handle_batch([invoke({"inputs": texts})])[0])
    assert len(model.shapes) > 1 and all(rows * width <= 64 or rows == 1 for rows, width in model.shapes)
    handler.pipeline.task.max_batch_tokens = 1 << 20  # type: ignore[misc]
    whole = answer(handler.handle_batch([invoke({"inputs": texts})])[0])
    assert _close(split, whole)


def test_an_over_long_input_is_refused_unless_the_request_asks_for_truncation(
    bundle_for: Callable[..., Path],
) -> None:
    handler = load_handler(bundle_for("text-classification", id2label=LABELS))
    long_text = "word " * 600
    refused, refused_explicitly, truncated = handler.handle_batch(
        [
            invoke({"inputs": long_text}),
            invoke({"inputs": long_text, "parameters": {"truncation": False}}),
            invoke({"inputs": long_text, "parameters": {"truncation": True}}),
        ]
    )
    for outcome in (refused, refused_explicitly):
        assert isinstance(outcome, ModelServerError) and "512 tokens" in outcome.message
    assert answer(truncated)[0]["label"] in LABELS.values()


def test_the_truncation_switch_makes_truncation_the_default(bundle_for: Callable[..., Path]) -> None:
    handler = load_handler(bundle_for("text-classification", id2label=LABELS, truncation=True))
    long_text = "word " * 600
    truncated, refused = handler.handle_batch(
        [invoke({"inputs": long_text}), invoke({"inputs": long_text, "parameters": {"truncation": False}})]
    )
    assert answer(truncated)[0]["label"] in LABELS.values()
    assert isinstance(refused, ModelServerError) and "512 tokens" in refused.message


def test_an_untokenizable_request_fails_alone(bundle_for: Callable[..., Path]) -> None:
    handler = load_handler(bundle_for("question-answering"))
    huge_question = {"inputs": {"question": "why " * 600, "context": "because"}}
    good = {"inputs": {"question": "Who?", "context": "Ana did."}}
    outcomes = handler.handle_batch([invoke(good), invoke(huge_question), invoke(good)])
    assert isinstance(outcomes[1], ClientInputError)
    assert answer(outcomes[0]) == answer(outcomes[2])


def test_warm_up_runs_a_forward_pass(bundle_for: Callable[..., Path]) -> None:
    for task in ("text-classification", "fill-mask", "question-answering", "zero-shot-classification"):
        handler, model = counted(bundle_for(task))
        handler.warm_up()
        assert len(model.shapes) == 1, task


def test_empty_input_list_gets_an_empty_answer(bundle_for: Callable[..., Path]) -> None:
    handler = load_handler(bundle_for("text-classification", id2label=LABELS))
    assert answer(handler.handle_batch([Invocation(body=b'{"inputs": []}')])[0]) == []


def _close(a: Any, b: Any, tol: float = 1e-5) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_close(a[k], b[k], tol) for k in a)
    if isinstance(a, list):
        return (
            isinstance(b, list)
            and len(a) == len(b)
            and all(_close(x, y, tol) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, float):
        return isinstance(b, float | int) and abs(a - b) <= tol * max(1.0, abs(b))
    return bool(a == b)


def test_chunk_plan_cuts_only_where_padding_costs_more_than_a_pass() -> None:
    assert plan_chunks([10, 10, 11, 12], budget_tokens=8192, call_cost_tokens=8) == [(0, 4)]
    assert plan_chunks([5, 6, 40, 41], budget_tokens=8192, call_cost_tokens=8) == [(0, 2), (2, 4)]
    # A pass costs so much that padding is always cheaper: one pass, whatever the lengths.
    assert plan_chunks([5, 6, 40, 41], budget_tokens=8192, call_cost_tokens=1000) == [(0, 4)]
    # The token budget caps a chunk's rows x width, and a single long sequence still gets its own pass.
    assert plan_chunks([30, 30, 30, 500], budget_tokens=64, call_cost_tokens=1) == [(0, 2), (2, 3), (3, 4)]
    assert plan_chunks([], budget_tokens=64) == []
