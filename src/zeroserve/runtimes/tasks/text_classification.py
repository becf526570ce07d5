"""text-classification (sentiment-analysis): one label and score per text, as transformers 4's pipeline.

Output shapes follow the pipeline exactly, quirks included: a lone string without `top_k` gives a
one-element list; with an integer `top_k` (or null: every label) it gives the list of top labels; a list of
strings gives one answer per string. A `top_k` that is neither an integer nor null is ignored by the pipeline
except that a lone string's answer is then no longer wrapped in a list; `return_all_scores` is the old
spelling of `top_k: null` / `top_k: 1`. Parameters other than these and the tokenizer's `truncation` and
`padding` are an error, as the pipeline hands them to its tokenizer, which refuses them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from zeroserve.runtimes import task_names as t
from zeroserve.runtimes.base import ClientInputError
from zeroserve.runtimes.tasks.plan import (
    Plan,
    Rows,
    TaskBase,
    check_parameters,
    sigmoid,
    softmax,
    truncation_param,
)
from zeroserve.runtimes.tokenizer import TextInput

_FUNCTIONS = ("softmax", "sigmoid", "none")
_PARAMETERS = frozenset({"top_k", "return_all_scores", "function_to_apply", "truncation", "padding"})


class TextClassification(TaskBase):
    def plan(self, inputs: Any, parameters: Mapping[str, Any]) -> Plan:
        check_parameters(parameters, _PARAMETERS, t.TEXT_CLASSIFICATION)
        sequences, shape = _parse_inputs(inputs)
        top_k, legacy = _top_k(parameters)
        function = self._function(parameters)
        # The pipeline's __call__ wraps a lone string's answer whenever `top_k` was not passed at all.
        wrap_single = shape == "text" and "top_k" not in parameters

        def finish(rows: Rows) -> Any:
            logits = rows.outputs["logits"].astype(np.float32)
            scores = _apply(function, logits)
            results = [self._result(row, top_k, legacy) for row in scores]
            if shape == "list":
                return results
            return [results[0]] if wrap_single else results[0]

        truncate = truncation_param(parameters, self.context.truncate_by_default)
        return Plan(sequences=sequences, finish=finish, allow_truncation=truncate)

    def _function(self, parameters: Mapping[str, Any]) -> str:
        requested = parameters.get("function_to_apply")
        if requested is None:
            # transformers' default: none for regression, sigmoid for one label or multi-label, else softmax.
            problem = self.context.problem_type
            if problem == "regression":
                return "none"
            if problem == "multi_label_classification" or len(self.context.labels) == 1:
                return "sigmoid"
            return "softmax"
        if not isinstance(requested, str) or requested.lower() not in _FUNCTIONS:
            raise ClientInputError("parameter `function_to_apply` must be one of softmax, sigmoid, none")
        return requested.lower()

    def _result(self, scores: np.ndarray, top_k: int | None, legacy: bool) -> Any:
        labels = self.context.labels
        if top_k == 1 and legacy:
            best = int(scores.argmax())
            return {"label": labels[best], "score": float(scores[best])}
        order = np.argsort(-scores, kind="stable")
        ranked = [{"label": labels[i], "score": float(scores[i])} for i in order]
        # A Python slice, as the pipeline's: 0 gives no labels, -1 all but the last.
        return ranked if top_k is None else ranked[:top_k]


def _apply(function: str, logits: np.ndarray) -> np.ndarray:
    if function == "softmax":
        return softmax(logits)
    if function == "sigmoid":
        return sigmoid(logits)
    return logits


def _top_k(parameters: Mapping[str, Any]) -> tuple[int | None, bool]:
    """(top_k, legacy) as the pipeline's _sanitize_parameters settles them."""
    value = parameters.get("top_k", "")
    if value is None or isinstance(value, int):
        return (None if value is None else int(value)), False
    all_scores = parameters.get("return_all_scores")
    if all_scores is None:
        return 1, True
    return (None if all_scores else 1), True


def _parse_inputs(inputs: Any) -> tuple[list[TextInput], str]:
    """(sequences, shape) where shape is "text" (one string), "pair" (one {text, text_pair}) or "list"."""
    if isinstance(inputs, str):
        return [inputs], "text"
    if isinstance(inputs, dict):
        return [_pair(inputs)], "pair"
    if isinstance(inputs, list) and inputs:
        sequences: list[TextInput] = []
        for item in inputs:
            if isinstance(item, str):
                sequences.append(item)
            elif isinstance(item, dict):
                sequences.append(_pair(item))
            else:
                raise ClientInputError("`inputs` must be a string, a list of strings, or {text, text_pair}")
        return sequences, "list"
    if isinstance(inputs, list):
        return [], "list"
    raise ClientInputError("`inputs` must be a string, a list of strings, or {text, text_pair}")


def _pair(item: dict[str, Any]) -> TextInput:
    text, pair = item.get("text"), item.get("text_pair")
    if not isinstance(text, str) or not (pair is None or isinstance(pair, str)):
        raise ClientInputError('a text pair must be {"text": str, "text_pair": str}')
    return text if pair is None else (text, pair)
