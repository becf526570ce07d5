"""Each task answers what transformers' pipeline answers on the same tiny model: same nesting, keys,
labels and (fp32 bundle) scores, for string and list inputs and the common parameters."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models import source_of
from runtime_helpers import answer, assert_same_shape_and_values, invoke
from zeroserve.runtimes.base import ClientInputError
from zeroserve.runtimes.loader import load_handler

REVIEWS = ["I loved this film, the acting was superb.", "Dull.", "A plot that never quite comes together."]


def reference_pipeline(task: str, bundle: Path) -> Any:
    import transformers

    return transformers.pipeline(task, model=str(source_of(bundle)), device="cpu")


def ours(bundle: Path, inputs: Any, **parameters: Any) -> Any:
    body: dict[str, Any] = {"inputs": inputs}
    if parameters:
        body["parameters"] = parameters
    return answer(load_handler(bundle).handle_batch([invoke(body)])[0])


@pytest.mark.parametrize(
    ("inputs", "parameters"),
    [
        (REVIEWS[0], {}),
        (REVIEWS, {}),
        (REVIEWS[0], {"top_k": 2}),
        (REVIEWS[0], {"top_k": 1}),
        (REVIEWS, {"top_k": None}),
        (REVIEWS, {"function_to_apply": "sigmoid"}),
        ({"text": REVIEWS[0], "text_pair": REVIEWS[1]}, {}),
    ],
)
def test_text_classification_matches_pipeline(
    bundle_for: Callable[..., Path], inputs: Any, parameters: dict[str, Any]
) -> None:
    bundle = bundle_for("text-classification", id2label={0: "NEGATIVE", 1: "POSITIVE"})
    expected = reference_pipeline("text-classification", bundle)(inputs, **parameters)
    assert_same_shape_and_values(ours(bundle, inputs, **parameters), expected)


def test_text_classification_labels_come_from_config(bundle_for: Callable[..., Path]) -> None:
    bundle = bundle_for("text-classification", id2label={0: "NEGATIVE", 1: "POSITIVE"})
    result = ours(bundle, REVIEWS, top_k=None)
    assert {entry["label"] for row in result for entry in row} == {"NEGATIVE", "POSITIVE"}


@pytest.mark.parametrize("inputs", ["hello world", ["hello world", "a longer second sentence here"]])
def test_feature_extraction_matches_pipeline(bundle_for: Callable[..., Path], inputs: Any) -> None:
    bundle = bundle_for("feature-extraction")
    expected = reference_pipeline("feature-extraction", bundle)(inputs)
    assert_same_shape_and_values(ours(bundle, inputs), expected, tol=1e-3)


@pytest.mark.parametrize(
    ("inputs", "parameters"),
    [
        ("Paris is the [MASK] of France.", {}),
        (["Paris is the [MASK] of France.", "The [MASK] sat on the mat."], {"top_k": 3}),
        (["Only one [MASK] here."], {}),
        ("Two [MASK] in one [MASK].", {"top_k": 2}),
        ("Paris is the [MASK] of France.", {"targets": ["capital", "city", "zzyzx"]}),
    ],
)
def test_fill_mask_matches_pipeline(
    bundle_for: Callable[..., Path], inputs: Any, parameters: dict[str, Any]
) -> None:
    bundle = bundle_for("fill-mask")
    expected = reference_pipeline("fill-mask", bundle)(inputs, **parameters)
    assert_same_shape_and_values(ours(bundle, inputs, **parameters), expected)


def test_fill_mask_without_mask_token_is_a_client_error(bundle_for: Callable[..., Path]) -> None:
    outcome = load_handler(bundle_for("fill-mask")).handle_batch([invoke({"inputs": "no mask here"})])[0]
    assert isinstance(outcome, ClientInputError)
    assert "[MASK]" in str(outcome)


@pytest.mark.parametrize(
    ("inputs", "parameters"),
    [
        ("John Smith moved to Zürich in 2019, unaffably.", {}),
        (["John Smith moved to Zürich.", "Ana lives in Lisbon"], {}),
        ("John Smith moved to Zürich in 2019, unaffably.", {"aggregation_strategy": "simple"}),
        ("John Smith moved to Zürich.", {"ignore_labels": []}),
    ],
)
def test_token_classification_matches_pipeline(
    bundle_for: Callable[..., Path], inputs: Any, parameters: dict[str, Any]
) -> None:
    bundle = bundle_for("token-classification")
    expected = reference_pipeline("token-classification", bundle)(inputs, **parameters)
    assert_same_shape_and_values(ours(bundle, inputs, **parameters), expected)


@pytest.mark.parametrize(
    ("inputs", "parameters"),
    [
        ("The battery died after an hour.", {"candidate_labels": ["tech", "food", "sport"]}),
        (["The battery died.", "Great pasta."], {"candidate_labels": "tech, food"}),
        ("The battery died.", {"candidate_labels": ["tech", "food"], "multi_label": True}),
        ("The battery died.", {"candidate_labels": ["tech"], "hypothesis_template": "It is about {}."}),
    ],
)
def test_zero_shot_matches_pipeline(
    bundle_for: Callable[..., Path], inputs: Any, parameters: dict[str, Any]
) -> None:
    bundle = bundle_for("zero-shot-classification")
    expected = reference_pipeline("zero-shot-classification", bundle)(inputs, **parameters)
    assert_same_shape_and_values(ours(bundle, inputs, **parameters), expected)


def _best_span_by_brute_force(
    bundle: Path, question: str, context: str, max_answer_len: int = 15
) -> dict[str, Any]:
    """transformers 4's QA rule, written the slow obvious way with the PyTorch model: the context span
    (start <= end < start + max_answer_len) with the best P(start) * P(end), softmax over context+[CLS]."""
    import torch
    import transformers

    source = source_of(bundle)
    tokenizer = transformers.AutoTokenizer.from_pretrained(source)
    model = transformers.AutoModelForQuestionAnswering.from_pretrained(source).eval()
    encoded = tokenizer(question, context, return_offsets_mapping=True, return_tensors="pt")
    offsets = encoded.pop("offset_mapping")[0].tolist()
    with torch.no_grad():
        out = model(**encoded)
    in_context = [sid == 1 for sid in encoded.sequence_ids(0)]
    keep = np.array([i == 0 or c for i, c in enumerate(in_context)])

    def probabilities(logits: Any) -> np.ndarray:
        values = np.where(keep, logits[0].numpy().astype(np.float64), -10000.0)
        exp = np.exp(values - values.max())
        return exp / exp.sum()

    start, end = probabilities(out.start_logits), probabilities(out.end_logits)
    best = max(
        (start[s] * end[e], s, e)
        for s in range(len(keep))
        for e in range(s, min(len(keep), s + max_answer_len))
        if in_context[s] and in_context[e]
    )
    score, s, e = best
    char_start, char_end = offsets[s][0], offsets[e][1]
    return {"score": score, "start": char_start, "end": char_end, "answer": context[char_start:char_end]}


def test_question_answering_finds_the_best_span(bundle_for: Callable[..., Path]) -> None:
    bundle = bundle_for("question-answering")
    question, context = "Where does John live?", "John Smith has lived in Paris with his two cats since 2019."
    result = ours(bundle, {"question": question, "context": context})
    assert_same_shape_and_values(result, _best_span_by_brute_force(bundle, question, context))
    assert result["answer"] == context[result["start"] : result["end"]]


def test_question_answering_list_and_top_k_shapes(bundle_for: Callable[..., Path]) -> None:
    bundle = bundle_for("question-answering")
    example = {"question": "Who?", "context": "Ana met Bo in Rome."}
    pair = ours(bundle, [example, example])
    assert isinstance(pair, list) and len(pair) == 2 and set(pair[0]) == {"score", "start", "end", "answer"}
    top = ours(bundle, example, top_k=3)
    assert [a["score"] for a in top] == sorted((a["score"] for a in top), reverse=True) and len(top) == 3
    with_null = ours(bundle, example, top_k=50, handle_impossible_answer=True)
    assert any(a["answer"] == "" and a["start"] == a["end"] == 0 for a in with_null)
