"""text-classification (sentiment-analysis): one label and score per text, as transformers' pipeline.

Output shapes follow the pipeline exactly, quirks included: a lone string without `top_k` gives a
one-element list; with `top_k` it gives the list of top labels; a list of strings with `top_k` gives
a list of lists; `top_k: null` means every label.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from zeroserve.runtimes.base import ClientInputError
from zeroserve.runtimes.tasks.plan import Plan, Rows, TaskBase, sigmoid, softmax, truncation_param
from zeroserve.runtimes.tokenizer import TextInput

_FUNCTIONS = ("softmax", "sigmoid", "none")
_UNSET = object()


class TextClassification(TaskBase):
    def plan(self, inputs: Any, parameters: Mapping[str, Any]) -> Plan:
        sequences, shape = _parse_inputs(inputs)
        top_k = _top_k(parameters)
        function = self._function(parameters)

        def finish(rows: Rows) -> Any:
            logits = rows.outputs["logits"].astype(np.float32)
            scores = _apply(function, logits)
            results = [self._result(row, top_k) for row in scores]
            if shape == "text" and top_k is _UNSET:
                return results  # the pipeline's legacy quirk: [ {label, score} ] for one string
            return results if shape == "list" else results[0]

        return Plan(sequences=sequences, finish=finish, allow_truncation=truncation_param(parameters))

    def _function(self, parameters: Mapping[str, Any]) -> str:
        requested = parameters.get("function_to_apply")
        if requested is None or requested == "default":
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

    def _result(self, scores: np.ndarray, top_k: Any) -> Any:
        labels = self.context.labels
        if top_k is _UNSET:
            best = int(scores.argmax())
            return {"label": labels[best], "score": float(scores[best])}
        order = np.argsort(-scores, kind="stable")
        if top_k is not None:
            order = order[:top_k]
        return [{"label": labels[i], "score": float(scores[i])} for i in order]


def _apply(function: str, logits: np.ndarray) -> np.ndarray:
    if function == "softmax":
        return softmax(logits)
    if function == "sigmoid":
        return sigmoid(logits)
    return logits


def _top_k(parameters: Mapping[str, Any]) -> Any:
    if "top_k" not in parameters:
        return _UNSET
    value = parameters["top_k"]
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ClientInputError("parameter `top_k` must be a positive integer or null")
    return value


def _parse_inputs(inputs: Any) -> tuple[list[TextInput], str]:
    """(sequences, shape) where shape is "text" (one string), "pair" (one {text, text_pair}) or "list"."""
    if isinstance(inputs, str):
        return [inputs], "text"
    if isinstance(inputs, dict):
        return [_pair(inputs)], "pair"
    if isinstance(inputs, list):
        sequences: list[TextInput] = []
        for item in inputs:
            if isinstance(item, str):
                sequences.append(item)
            elif isinstance(item, dict):
                sequences.append(_pair(item))
            else:
                raise ClientInputError("`inputs` must be a string, a list of strings, or {text, text_pair}")
        return sequences, "list"
    raise ClientInputError("`inputs` must be a string, a list of strings, or {text, text_pair}")


def _pair(item: dict[str, Any]) -> TextInput:
    text, pair = item.get("text"), item.get("text_pair")
    if not isinstance(text, str) or not (pair is None or isinstance(pair, str)):
        raise ClientInputError('a text pair must be {"text": str, "text_pair": str}')
    return text if pair is None else (text, pair)
