"""Streamed text: the text each new token adds, as deltas that concatenate to the final answer's text.

Each step re-derives the answer's text from all the tokens so far (the same function the final answer uses)
and emits what is new, holding back what a later token may still change: a trailing incomplete UTF-8 sequence
(decoded as U+FFFD) and, with clean-up on, a tail that may yet become one of clean_up_tokenization's patterns
(" ", " '", " n", ...). The hold-back is released by `finish`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

_PATTERNS = (" .", " ?", " !", " ,", " ' ", " n't", " 'm", " 's", " 've", " 're")
_PENDING = frozenset(p[:i] for p in _PATTERNS for i in range(1, len(p)))
_LONGEST_PENDING = max(len(p) for p in _PENDING)


class IncrementalDetokenizer:
    def __init__(self, text_of: Callable[[Sequence[int]], str], *, clean_up: bool) -> None:
        """`text_of`: the answer's text for the new token ids so far."""
        self._text_of = text_of
        self._clean_up = clean_up
        self._ids: list[int] = []
        self._emitted = ""

    @property
    def text(self) -> str:
        """What has been emitted so far."""
        return self._emitted

    def add(self, token_id: int) -> str:
        """The text token `token_id` adds (often "", when it completes nothing yet)."""
        self._ids.append(token_id)
        text = self._text_of(self._ids)
        if not text.startswith(self._emitted):
            return ""  # A rewrite we did not foresee: wait for `finish`.
        stable = len(text) - self._held_back(text)
        if stable <= len(self._emitted):
            return ""
        delta = text[len(self._emitted) : stable]
        self._emitted += delta
        return delta

    def finish(self) -> str:
        """The rest of the text, once no token follows."""
        text = self._text_of(self._ids)
        if not text.startswith(self._emitted):
            return ""
        delta = text[len(self._emitted) :]
        self._emitted = text
        return delta

    def _held_back(self, text: str) -> int:
        held = 0
        while held < len(text) and text[len(text) - held - 1] == "\ufffd":
            held += 1
        if held or not self._clean_up:
            return held
        for size in range(min(_LONGEST_PENDING, len(text)), 0, -1):
            if text[-size:] in _PENDING:
                return size
        return 0
