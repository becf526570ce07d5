"""feature-extraction: the encoder's token embeddings, [1][tokens][hidden] per text, as transformers'
pipeline returns them (no pooling; special tokens included, padding removed)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zeroserve.runtimes.tasks.plan import (
    Plan,
    Rows,
    TaskBase,
    sequence_length,
    text_or_texts,
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

        return Plan(sequences=list(texts), finish=finish, allow_truncation=truncation_param(parameters))
