"""feature-extraction: the encoder's token embeddings, [1][tokens][hidden] per text, as transformers'
pipeline returns them (no pooling; special tokens included, padding removed).

The pipeline takes `truncation`, `tokenize_kwargs` and `return_tensors` (the same numbers either way once
encoded as JSON) and silently ignores any other parameter; so does this task.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zeroserve.runtimes.base import ClientInputError
from zeroserve.runtimes.tasks.plan import (
    Plan,
    Rows,
    TaskBase,
    sequence_length,
    text_or_texts,
    tokenizer_kwargs_param,
    truncation_param,
    unwrap_single,
)


class FeatureExtraction(TaskBase):
    token_level = True

    def plan(self, inputs: Any, parameters: Mapping[str, Any]) -> Plan:
        texts, was_list = text_or_texts(inputs)

        def finish(rows: Rows) -> Any:
            hidden = rows.outputs["last_hidden_state"]
            results = [
                [hidden[i, : sequence_length(encoding)].tolist()] for i, encoding in enumerate(rows.encodings)
            ]
            return unwrap_single(results, was_list)

        kwargs = tokenizer_kwargs_param(parameters, "tokenize_kwargs")
        if "truncation" in kwargs and parameters.get("truncation") is not None:
            raise ClientInputError(
                "truncation parameter defined twice (given as keyword argument as well as in tokenize_kwargs)"
            )
        default = self.context.truncate_by_default
        truncate = truncation_param(kwargs, truncation_param(parameters, default))
        return Plan(sequences=list(texts), finish=finish, allow_truncation=truncate)
