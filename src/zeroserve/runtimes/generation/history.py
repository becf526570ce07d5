"""The tokens each row's decoder has seen so far (transformers' `input_ids` inside the loop), with what the
logits processors need from them kept up to date one token at a time instead of recomputed each step: which
tokens occurred (repetition penalty), which n-grams occurred (no_repeat_ngram_size), and each row's limits.

Rows are independent sequences; `select` keeps, reorders or repeats them (beam search, finished rows leaving).
A history that was selected from or appended to is not used again, so rows can share nothing mutable.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from zeroserve.runtimes.generation.lengths import LengthLimits

Int64s = npt.NDArray[np.int64]
NgramTable = dict[tuple[int, ...], tuple[int, ...]]  # (n-1)-gram -> the tokens that followed it


class RowHistory:
    def __init__(
        self,
        tokens: Int64s,
        lengths: Int64s,
        limits: tuple[Int64s, Int64s],
        seen: npt.NDArray[np.bool_] | None,
        ngram_size: int,
        ngrams: list[NgramTable] | None,
    ) -> None:
        self.tokens = tokens  # [rows, capacity], valid up to lengths
        self.lengths = lengths  # [rows]
        self.max_lengths, self.min_lengths = limits  # [rows] each
        self.seen = seen  # [rows, vocab] or None when no repetition penalty
        self.ngram_size = ngram_size
        self.ngrams = ngrams

    @classmethod
    def start(
        cls,
        prefixes: Sequence[Sequence[int]],
        limits: Sequence[LengthLimits],
        vocab_size: int,
        *,
        track_seen: bool,
        ngram_size: int,
    ) -> RowHistory:
        rows = len(prefixes)
        capacity = max(limit.max_length for limit in limits)
        tokens = np.full((rows, capacity), -1, dtype=np.int64)
        for row, prefix in enumerate(prefixes):
            tokens[row, : len(prefix)] = prefix
        lengths = np.array([len(prefix) for prefix in prefixes], dtype=np.int64)
        max_lengths = np.array([limit.max_length for limit in limits], dtype=np.int64)
        min_lengths = np.array([limit.min_length for limit in limits], dtype=np.int64)
        seen = None
        if track_seen:
            seen = np.zeros((rows, vocab_size), dtype=np.bool_)
            for row, prefix in enumerate(prefixes):
                seen[row, np.asarray(prefix, dtype=np.int64)] = True
        ngrams = None
        if ngram_size > 0:
            ngrams = [_ngram_table(list(prefix), ngram_size) for prefix in prefixes]
        return cls(tokens, lengths, (max_lengths, min_lengths), seen, ngram_size, ngrams)

    @property
    def rows(self) -> int:
        return int(self.lengths.shape[0])

    def append(self, new_tokens: Int64s) -> None:
        rows = np.arange(self.rows)
        self.tokens[rows, self.lengths] = new_tokens
        self.lengths += 1
        if self.seen is not None:
            self.seen[rows, new_tokens] = True
        if self.ngrams is not None:
            n = self.ngram_size
            for row, table in enumerate(self.ngrams):
                end = int(self.lengths[row])
                if end >= n:
                    key = tuple(self.tokens[row, end - n : end - 1].tolist())
                    table[key] = (*table.get(key, ()), int(new_tokens[row]))

    def select(self, rows: Int64s) -> RowHistory:
        ngrams = None
        if self.ngrams is not None:
            # A row taken twice gets its own copy of the table: both will append different tokens.
            taken: set[int] = set()
            ngrams = []
            for row in rows.tolist():
                ngrams.append(self.ngrams[row] if row not in taken else dict(self.ngrams[row]))
                taken.add(row)
        return RowHistory(
            self.tokens[rows],
            self.lengths[rows],
            (self.max_lengths[rows], self.min_lengths[rows]),
            None if self.seen is None else self.seen[rows],
            self.ngram_size,
            ngrams,
        )

    def banned_by_ngrams(self) -> tuple[Int64s, Int64s]:
        """(row, token) pairs that would repeat an n-gram: transformers' `_calc_banned_ngram_tokens`."""
        banned_rows: list[int] = []
        banned_tokens: list[int] = []
        if self.ngrams is None:
            return np.array(banned_rows, dtype=np.int64), np.array(banned_tokens, dtype=np.int64)
        n = self.ngram_size
        for row, table in enumerate(self.ngrams):
            end = int(self.lengths[row])
            if end + 1 < n:
                continue
            followers = table.get(tuple(self.tokens[row, end + 1 - n : end].tolist()), ())
            banned_rows.extend([row] * len(followers))
            banned_tokens.extend(followers)
        return np.array(banned_rows, dtype=np.int64), np.array(banned_tokens, dtype=np.int64)

    def ends_with(self, prefix: Sequence[int]) -> npt.NDArray[np.bool_]:
        """Rows whose last tokens are `prefix` and that hold at least one token more than it (transformers'
        sequence bias skips a banned sequence longer than the row)."""
        k = len(prefix)
        long_enough = self.lengths >= k + 1
        positions = np.clip(self.lengths[:, None] - k + np.arange(k)[None, :], 0, None)
        window = np.take_along_axis(self.tokens, positions, axis=1)
        matches: npt.NDArray[np.bool_] = long_enough & np.all(window == np.asarray(prefix)[None, :], axis=1)
        return matches


def _ngram_table(tokens: list[int], n: int) -> NgramTable:
    table: NgramTable = {}
    for start in range(len(tokens) - n + 1):
        key = tuple(tokens[start : start + n - 1])
        table[key] = (*table.get(key, ()), tokens[start + n - 1])
    return table
