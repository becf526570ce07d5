"""token-classification (NER): a label per token, or per run of tokens with `aggregation_strategy: simple`.

Per token: {entity, score, index, word, start, end}, special tokens skipped, labels in `ignore_labels`
(default ["O"]) dropped, as transformers' pipeline does. Grouped: {entity_group, score, word, start, end}.
Of the pipeline's other parameters, `grouped_entities` is understood; the rest (offset_mapping, stride,
is_split_into_words, ...) are refused as not supported, and a parameter the pipeline does not know is the
pipeline's error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from tokenizers import Encoding

from zeroserve.runtimes import task_names as t
from zeroserve.runtimes.base import ClientInputError
from zeroserve.runtimes.tasks.plan import (
    Plan,
    Rows,
    TaskBase,
    check_parameters,
    softmax,
    text_or_texts,
    unsupported_parameter,
    unwrap_single,
)

_STRATEGIES = ("none", "simple")
_SUPPORTED = frozenset({"ignore_labels", "aggregation_strategy", "grouped_entities"})
_PARAMETERS = _SUPPORTED | {"ignore_subwords", "offset_mapping", "is_split_into_words", "stride", "delimiter"}


class TokenClassification(TaskBase):
    token_level = True

    def plan(self, inputs: Any, parameters: Mapping[str, Any]) -> Plan:
        check_parameters(parameters, _PARAMETERS, t.TOKEN_CLASSIFICATION)
        for name in parameters:
            if name in _PARAMETERS - _SUPPORTED and parameters[name] not in (None, False):
                raise unsupported_parameter(name)
        texts, was_list = text_or_texts(inputs)
        strategy = parameters.get("aggregation_strategy") or "none"
        if parameters.get("grouped_entities") is not None and parameters.get("aggregation_strategy") is None:
            strategy = "simple" if parameters["grouped_entities"] else "none"
        if not isinstance(strategy, str) or strategy.lower() not in _STRATEGIES:
            raise ClientInputError(
                f"parameter `aggregation_strategy` must be one of {', '.join(_STRATEGIES)}"
            )
        ignore = parameters.get("ignore_labels", ["O"])
        if not isinstance(ignore, list) or not all(isinstance(x, str) for x in ignore):
            raise ClientInputError("parameter `ignore_labels` must be a list of strings")

        def finish(rows: Rows) -> Any:
            logits = rows.outputs["logits"]
            results = []
            for i, (text, encoding) in enumerate(zip(texts, rows.encodings, strict=True)):
                entities = self._tokens(text, encoding, softmax(logits[i].astype(np.float32)))
                if strategy.lower() == "simple":
                    entities = self._group(entities)
                key = "entity_group" if strategy.lower() == "simple" else "entity"
                results.append([e for e in entities if e[key] not in ignore])
            return unwrap_single(results, was_list)

        return Plan(sequences=list(texts), finish=finish)

    def _tokens(self, text: str, encoding: Encoding, scores: np.ndarray) -> list[dict[str, Any]]:
        labels = self.context.labels
        id_to_token = self.context.encoder.id_to_token
        entities = []
        for index, (token_id, special) in enumerate(
            zip(encoding.ids, encoding.special_tokens_mask, strict=True)
        ):
            if special:  # also true for padding
                continue
            start, end = encoding.offsets[index]
            # An unknown token's text is more useful than "[UNK]".
            word = text[start:end] if token_id == self.context.unk_token_id else id_to_token(token_id)
            best = int(scores[index].argmax())
            entities.append(
                {
                    "entity": labels[best],
                    "score": float(scores[index, best]),
                    "index": index,
                    "word": word,
                    "start": start,
                    "end": end,
                }
            )
        return entities

    def _group(self, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Merge adjacent tokens of one entity type; a B- tag always starts a new group."""
        groups: list[list[dict[str, Any]]] = []
        for entity in entities:
            begins, tag = _split_tag(entity["entity"])
            if groups and not begins and _split_tag(groups[-1][-1]["entity"])[1] == tag:
                groups[-1].append(entity)
            else:
                groups.append([entity])
        return [
            {
                # As transformers: whatever follows the first dash ("B-PER" -> "PER", "LABEL_0" stays).
                "entity_group": group[0]["entity"].split("-", 1)[-1],
                "score": float(np.mean([e["score"] for e in group])),
                "word": self.context.encoder.tokens_to_string([e["word"] for e in group]),
                "start": group[0]["start"],
                "end": group[-1]["end"],
            }
            for group in groups
        ]


def _split_tag(label: str) -> tuple[bool, str]:
    """("B-PER") -> (True, "PER"); ("I-PER") -> (False, "PER"); a label without a prefix continues."""
    if label.startswith(("B-", "I-")):
        return label.startswith("B-"), label[2:]
    return False, label
