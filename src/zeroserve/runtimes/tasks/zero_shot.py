"""zero-shot-classification: score candidate labels for a text with an NLI model, as transformers does.

Each (text, label) becomes the pair (text, hypothesis_template.format(label)); the entailment logit ranks
labels: softmax across labels by default, or entailment-vs-contradiction per label with `multi_label`
(and always for a single label). Every pair of every request shares the one forward pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from zeroserve.runtimes.base import ClientInputError
from zeroserve.runtimes.tasks.plan import (
    Plan,
    Rows,
    TaskBase,
    TaskContext,
    bool_param,
    softmax,
    text_or_texts,
)
from zeroserve.runtimes.tokenizer import ONLY_FIRST, TextInput

DEFAULT_TEMPLATE = "This example is {}."


class ZeroShotClassification(TaskBase):
    truncation_strategy = ONLY_FIRST

    def __init__(self, context: TaskContext) -> None:
        super().__init__(context)
        self.entailment_id = next(
            (i for i, label in enumerate(context.labels) if label.lower().startswith("entail")), -1
        )
        # transformers compares entailment with label 0, or with the last label when entailment is 0.
        self.contradiction_id = -1 if self.entailment_id == 0 else 0

    def plan(self, inputs: Any, parameters: Mapping[str, Any]) -> Plan:
        texts, was_list = text_or_texts(inputs)
        labels = _candidate_labels(parameters.get("candidate_labels"))
        template = parameters.get("hypothesis_template", DEFAULT_TEMPLATE)
        if not isinstance(template, str) or template.format(labels[0]) == template:
            raise ClientInputError(
                "parameter `hypothesis_template` must contain {} where the label goes: 'This example is {}.'"
            )
        # `multi_class` is the pipeline's old name for `multi_label`, and wins when both are given, as there.
        name = "multi_class" if parameters.get("multi_class") is not None else "multi_label"
        multi_label = bool_param(parameters, name, False) or len(labels) == 1
        hypotheses = [template.format(label) for label in labels]
        sequences: list[TextInput] = [(text, hypothesis) for text in texts for hypothesis in hypotheses]

        def finish(rows: Rows) -> Any:
            logits = rows.outputs["logits"].astype(np.float32).reshape(len(texts), len(labels), -1)
            if multi_label:
                pair = logits[..., [self.contradiction_id, self.entailment_id]]
                scores = softmax(pair)[..., 1]
            else:
                scores = softmax(logits[..., self.entailment_id])
            results = []
            for text, row in zip(texts, scores, strict=True):
                order = np.argsort(-row, kind="stable")
                results.append(
                    {
                        "sequence": text,
                        "labels": [labels[i] for i in order],
                        "scores": [float(row[i]) for i in order],
                    }
                )
            return results if was_list else results[0]

        return Plan(sequences=sequences, finish=finish)

    def example(self) -> tuple[Any, dict[str, Any]]:
        return "The service answered the first request quickly.", {"candidate_labels": ["speed", "price"]}


def _candidate_labels(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [label.strip() for label in value.split(",") if label.strip()]
    if not isinstance(value, list) or not value or not all(isinstance(x, str) for x in value):
        raise ClientInputError("parameter `candidate_labels` must be a non-empty list of strings")
    return value
