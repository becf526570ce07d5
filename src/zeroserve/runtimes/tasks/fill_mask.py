"""fill-mask: the top candidates for each mask token, as transformers' pipeline returns them.

One mask in a text gives a list of {score, token, token_str, sequence}; several masks give one such list
per mask (and, as in transformers, the other masks stay visible in `sequence`). Parameters: `top_k`,
`targets`, `tokenizer_kwargs` (its `truncation`); any other is an error, as in the pipeline.
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
    int_param,
    sequence_length,
    softmax,
    text_or_texts,
    tokenizer_kwargs_param,
    truncation_param,
)

_PARAMETERS = frozenset({"top_k", "targets", "tokenizer_kwargs"})


class FillMask(TaskBase):
    token_level = True
    # Outputs are [batch, tokens, vocabulary]: 1024 tokens of a 30k vocabulary is already 120 MB.
    max_batch_tokens = 1024

    def plan(self, inputs: Any, parameters: Mapping[str, Any]) -> Plan:
        mask_id = self.context.mask_token_id
        if mask_id is None:
            raise ClientInputError("this model's tokenizer defines no mask token, so it cannot fill masks")
        check_parameters(parameters, _PARAMETERS, t.FILL_MASK)
        texts, was_list = text_or_texts(inputs)
        kwargs = tokenizer_kwargs_param(parameters, "tokenizer_kwargs")
        truncate = truncation_param(kwargs, self.context.truncate_by_default)
        targets = self._target_ids(parameters.get("targets"))
        top_k = int_param(parameters, "top_k", 5)
        if targets is not None:
            top_k = min(top_k, len(targets))

        def finish(rows: Rows) -> Any:
            logits = rows.outputs["logits"]
            results = [
                self._fill(np.array(encoding.ids[: sequence_length(encoding)]), logits[i], top_k, targets)
                for i, encoding in enumerate(rows.encodings)
            ]
            # transformers unwraps a one-element list input too.
            return results if was_list and len(results) != 1 else results[0]

        return Plan(sequences=list(texts), finish=finish, allow_truncation=truncate)

    def example(self) -> tuple[Any, dict[str, Any]]:
        return f"The service warmed up quickly and answered the {self.context.mask_token} request.", {}

    def _fill(self, ids: np.ndarray, logits: np.ndarray, top_k: int, targets: np.ndarray | None) -> Any:
        masked = np.flatnonzero(ids == self.context.mask_token_id)
        if masked.size == 0:
            raise ClientInputError(f"No mask_token ({self.context.mask_token}) found on the input")
        single = masked.size == 1
        decode = self.context.encoder.decode
        per_mask = []
        for position in masked:
            probs = softmax(logits[position].astype(np.float32))
            candidates = probs if targets is None else probs[targets]
            best = np.argsort(-candidates, kind="stable")[:top_k]
            row = []
            for index in best:
                token = int(index if targets is None else targets[index])
                filled = ids.copy()
                filled[position] = token
                row.append(
                    {
                        "score": float(candidates[index]),
                        "token": token,
                        "token_str": decode([token]),
                        # Other masks would vanish with skip_special_tokens, so only skip for a lone mask.
                        "sequence": decode(filled.tolist(), skip_special_tokens=single),
                    }
                )
            per_mask.append(row)
        return per_mask[0] if single else per_mask

    def _target_ids(self, targets: Any) -> np.ndarray | None:
        if targets is None:
            return None
        if isinstance(targets, str):
            targets = [targets]
        if not isinstance(targets, list) or not targets or not all(isinstance(x, str) for x in targets):
            raise ClientInputError("parameter `targets` must be a string or a non-empty list of strings")
        tokenizer = self.context.encoder.tokenizer
        ids: set[int] = set()
        for target in targets:
            token_id = tokenizer.token_to_id(target)
            if token_id is None:
                # As transformers: a word outside the vocabulary stands for its first word piece.
                pieces = tokenizer.encode(target, add_special_tokens=False).ids
                if not pieces:
                    continue
                token_id = pieces[0]
            ids.add(token_id)
        if not ids:
            raise ClientInputError("none of the `targets` is in the model's vocabulary")
        return np.array(sorted(ids))
