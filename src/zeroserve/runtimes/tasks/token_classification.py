"""token-classification (NER): a label per token, or per entity with `aggregation_strategy` (transformers 4).

Per token (`none`): {entity, score, index, word, start, end}, special tokens skipped. `simple` merges adjacent
tokens of one entity type into {entity_group, score, word, start, end}; `first`, `average` and `max` first
make every word's sub-tokens agree (the first token's label, the average scores, the most confident token),
then merge like `simple`. Labels in `ignore_labels` (default ["O"]) are dropped. The deprecated
`grouped_entities`/`ignore_subwords` map onto the strategies as in the pipeline; `stride`,
`is_split_into_words`, `offset_mapping` are refused as not supported, and a parameter the pipeline does not
know is the pipeline's error.
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

_STRATEGIES = ("none", "simple", "first", "average", "max")
_WORD_STRATEGIES = ("first", "average", "max")
_SUPPORTED = frozenset({"ignore_labels", "aggregation_strategy", "grouped_entities", "ignore_subwords"})
_PARAMETERS = _SUPPORTED | {"offset_mapping", "is_split_into_words", "stride", "delimiter"}


class TokenClassification(TaskBase):
    token_level = True

    def plan(self, inputs: Any, parameters: Mapping[str, Any]) -> Plan:
        check_parameters(parameters, _PARAMETERS, t.TOKEN_CLASSIFICATION)
        for name in parameters:
            if name in _PARAMETERS - _SUPPORTED and parameters[name] not in (None, False):
                raise unsupported_parameter(name)
        texts, was_list = text_or_texts(inputs)
        strategy = _strategy(parameters)
        ignore = parameters.get("ignore_labels")
        if ignore is None:
            ignore = ["O"]
        if not isinstance(ignore, list) or not all(isinstance(x, str) for x in ignore):
            raise ClientInputError("parameter `ignore_labels` must be a list of strings")

        def finish(rows: Rows) -> Any:
            logits = rows.outputs["logits"]
            results = []
            for i, (text, encoding) in enumerate(zip(texts, rows.encodings, strict=True)):
                tokens = self._tokens(text, encoding, softmax(logits[i].astype(np.float32)))
                if strategy in _WORD_STRATEGIES:
                    entities = self._group(self._words(tokens, strategy))
                elif strategy == "simple":
                    entities = self._group([_labelled(self.context.labels, token) for token in tokens])
                else:
                    entities = [_labelled(self.context.labels, token) for token in tokens]
                key = "entity" if strategy == "none" else "entity_group"
                results.append([e for e in entities if e[key] not in ignore])
            return unwrap_single(results, was_list)

        return Plan(sequences=list(texts), finish=finish)

    def _tokens(self, text: str, encoding: Encoding, scores: np.ndarray) -> list[dict[str, Any]]:
        """One entry per real token: its score vector, text, offsets and whether it continues a word."""
        id_to_token = self.context.encoder.id_to_token
        model = self.context.encoder.tokenizer.model
        word_aware = bool(getattr(model, "continuing_subword_prefix", None))
        tokens = []
        for index, (token_id, special) in enumerate(
            zip(encoding.ids, encoding.special_tokens_mask, strict=True)
        ):
            if special:  # also true for padding
                continue
            start, end = encoding.offsets[index]
            word, written = id_to_token(token_id), text[start:end]
            if word_aware:  # "##able" is longer than the "able" it covers
                subword = len(word) != len(written)
            else:
                subword = start > 0 and " " not in text[start - 1 : start + 1]
            if token_id == self.context.unk_token_id:
                # An unknown token's text is more useful than "[UNK]", and it starts a word.
                word, subword = written, False
            tokens.append(
                {
                    "scores": scores[index],
                    "index": index,
                    "word": word,
                    "start": start,
                    "end": end,
                    "is_subword": subword,
                }
            )
        return tokens

    def _words(self, tokens: list[dict[str, Any]], strategy: str) -> list[dict[str, Any]]:
        """Each word's sub-tokens as one entity, labelled by the strategy."""
        words: list[list[dict[str, Any]]] = []
        for token in tokens:
            if words and token["is_subword"]:
                words[-1].append(token)
            else:
                words.append([token])
        labels = self.context.labels
        entities = []
        for pieces in words:
            if strategy == "first":
                scores = pieces[0]["scores"]
            elif strategy == "max":
                scores = max(pieces, key=lambda piece: float(piece["scores"].max()))["scores"]
            else:
                scores = np.nanmean(np.stack([piece["scores"] for piece in pieces]), axis=0)
            best = int(scores.argmax())
            entities.append(
                {
                    "entity": labels[best],
                    "score": float(scores[best]),
                    "word": self.context.encoder.tokens_to_string([piece["word"] for piece in pieces]),
                    "start": pieces[0]["start"],
                    "end": pieces[-1]["end"],
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


def _labelled(labels: list[str], token: dict[str, Any]) -> dict[str, Any]:
    best = int(token["scores"].argmax())
    return {
        "entity": labels[best],
        "score": float(token["scores"][best]),
        "index": token["index"],
        "word": token["word"],
        "start": token["start"],
        "end": token["end"],
    }


def _strategy(parameters: Mapping[str, Any]) -> str:
    """`aggregation_strategy`, or what the deprecated `grouped_entities`/`ignore_subwords` mean."""
    requested = parameters.get("aggregation_strategy")
    grouped, ignore_subwords = parameters.get("grouped_entities"), parameters.get("ignore_subwords")
    if requested is None and (grouped is not None or ignore_subwords is not None):
        requested = "first" if grouped and ignore_subwords else "simple" if grouped else "none"
    requested = requested or "none"
    if not isinstance(requested, str) or requested.lower() not in _STRATEGIES:
        raise ClientInputError(f"parameter `aggregation_strategy` must be one of {', '.join(_STRATEGIES)}")
    return requested.lower()


def _split_tag(label: str) -> tuple[bool, str]:
    """("B-PER") -> (True, "PER"); ("I-PER") -> (False, "PER"); a label without a prefix continues."""
    if label.startswith(("B-", "I-")):
        return label.startswith("B-"), label[2:]
    return False, label
