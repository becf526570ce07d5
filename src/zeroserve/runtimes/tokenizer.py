"""Text -> padded int64 arrays, with the Rust `tokenizers` library only (no transformers at serve time).

Padding and truncation are set here, whatever tokenizer.json says: some checkpoints (the packaged MiniLM)
pin padding to a fixed 128, which would make every 16-token request pay for 128 tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Encoding, Tokenizer

# One text, or a (text, text_pair) pair.
TextInput = str | tuple[str, str]

LONGEST_FIRST = "longest_first"
ONLY_FIRST = "only_first"
ONLY_SECOND = "only_second"


@dataclass(frozen=True)
class EncodedBatch:
    encodings: list[Encoding]
    # Model inputs by name, all [batch, longest sequence in the batch].
    arrays: dict[str, np.ndarray]
    # Encodings (rows) per input sequence: all 1, unless long inputs were split into overlapping windows.
    windows: list[int] | None = None


class TextEncoder:
    def __init__(
        self,
        tokenizer: Tokenizer,
        *,
        max_length: int,
        pad_token: str,
        pad_token_id: int,
        truncation_strategy: str = LONGEST_FIRST,
        input_names: Sequence[str] = ("input_ids", "attention_mask"),
        stride: int = 0,
    ) -> None:
        """`stride`: tokens that consecutive windows of an over-long input share (question answering)."""
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.input_names = tuple(input_names)
        self.pad_token, self.pad_token_id = pad_token, pad_token_id
        tokenizer.enable_truncation(max_length, stride=stride, strategy=truncation_strategy)
        # No `length`: pad to the longest sequence of each batch, never to a fixed size.
        tokenizer.enable_padding(pad_id=pad_token_id, pad_token=pad_token)

    @classmethod
    def from_file(
        cls,
        path: Path,
        *,
        max_length: int,
        pad_token: str,
        pad_token_id: int,
        truncation_strategy: str = LONGEST_FIRST,
        input_names: Sequence[str] = ("input_ids", "attention_mask"),
        stride: int = 0,
    ) -> TextEncoder:
        return cls(
            Tokenizer.from_file(str(path)),
            max_length=max_length,
            pad_token=pad_token,
            pad_token_id=pad_token_id,
            truncation_strategy=truncation_strategy,
            input_names=input_names,
            stride=stride,
        )

    def encode(self, sequences: Sequence[TextInput], *, windows: bool = False) -> EncodedBatch:
        """Padded arrays for `sequences`. With `windows`, an over-long input gives one row per window
        (the truncated encoding, then each overflowing one), as transformers' QA pipeline reads contexts."""
        # The Rust side raises plain Exceptions (e.g. a question too long to leave room for its context).
        encodings = self.tokenizer.encode_batch(list(sequences))
        counts = None
        if windows:
            counts = [1 + len(e.overflowing) for e in encodings]
            encodings = [w for e in encodings for w in (e, *e.overflowing)]
            width = max((len(e.ids) for e in encodings), default=0)
            for encoding in encodings:
                encoding.pad(width, pad_id=self.pad_token_id, pad_token=self.pad_token)
        arrays: dict[str, np.ndarray] = {}
        if "input_ids" in self.input_names:
            arrays["input_ids"] = np.array([e.ids for e in encodings], dtype=np.int64)
        if "attention_mask" in self.input_names:
            arrays["attention_mask"] = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        if "token_type_ids" in self.input_names:
            arrays["token_type_ids"] = np.array([e.type_ids for e in encodings], dtype=np.int64)
        return EncodedBatch(encodings=encodings, arrays=arrays, windows=counts)

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def tokens_to_string(self, tokens: Sequence[str]) -> str:
        """Join word pieces back into text as the tokenizer's decoder does ("un", "##able" -> "unable")."""
        decoder = self.tokenizer.decoder
        return decoder.decode(list(tokens)) if decoder is not None else " ".join(tokens)

    def id_to_token(self, token_id: int) -> str:
        return self.tokenizer.id_to_token(token_id) or ""
