"""The logits processors of transformers 4.51.3, in the order and with the arithmetic `_get_logits_processor`
gives them: repetition penalty, no_repeat_ngram_size, bad_words_ids, min_length / min_new_tokens (eos banned),
forced BOS / EOS, then, only when sampling, temperature, top-k and top-p.

Each is a function of (scores [rows, vocab] float32, the rows' history) returning new scores; none loops over
the vocabulary in Python. Greedy decoding and sampling give them logits, beam search log-probabilities.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from zeroserve.runtimes.generation.history import RowHistory
from zeroserve.runtimes.generation.settings import GenerationSettings

Scores = npt.NDArray[np.float32]
Processor = Callable[[Scores, RowHistory], Scores]


def build_processors(settings: GenerationSettings) -> list[Processor]:
    processors: list[Processor] = []
    eos = np.array(settings.eos_token_ids, dtype=np.int64)
    if settings.repetition_penalty != 1.0:
        processors.append(_repetition_penalty(settings.repetition_penalty))
    if settings.no_repeat_ngram_size > 0:
        processors.append(_no_repeat_ngram)
    if settings.bad_words_ids:
        # transformers drops a banned "word" that is exactly one eos token.
        bad_words = [word for word in settings.bad_words_ids if not any(word == (e,) for e in eos.tolist())]
        if bad_words:
            processors.append(_bad_words(bad_words))
    # min_length and min_new_tokens are two processors in transformers, but min_new_tokens has by then been
    # written into min_length (history.min_lengths), so one ban covers both.
    if eos.size and (settings.min_length > 0 or (settings.min_new_tokens or 0) > 0):
        processors.append(_min_length(eos))
    if settings.forced_bos_token_id is not None:
        processors.append(_forced_bos(settings.forced_bos_token_id))
    if settings.forced_eos_token_id is not None:
        processors.append(_forced_eos(settings.forced_eos_token_id))
    if settings.do_sample:
        # Beam sampling keeps one token beyond the eos tokens so that a beam can always go on.
        min_tokens_to_keep = 1 if settings.num_beams == 1 else (eos.size + 1 if eos.size else 2)
        if settings.temperature != 1.0:
            processors.append(_temperature(settings.temperature))
        if settings.top_k != 0:
            processors.append(_top_k(max(settings.top_k, min_tokens_to_keep)))
        if settings.top_p < 1.0:
            processors.append(_top_p(settings.top_p, min_tokens_to_keep))
    return processors


def apply_processors(processors: list[Processor], scores: Scores, history: RowHistory) -> Scores:
    for processor in processors:
        scores = processor(scores, history)
    return scores


def _repetition_penalty(penalty: float) -> Processor:
    def process(scores: Scores, history: RowHistory) -> Scores:
        assert history.seen is not None
        # Only the (few) seen tokens change: gather, penalize, scatter, as transformers does.
        rows, tokens = np.nonzero(history.seen)
        picked = scores[rows, tokens]
        scores = scores.copy()
        scores[rows, tokens] = np.where(
            picked < 0, picked * np.float32(penalty), picked / np.float32(penalty)
        )
        return scores

    return process


def _no_repeat_ngram(scores: Scores, history: RowHistory) -> Scores:
    rows, tokens = history.banned_by_ngrams()
    if rows.size:
        scores = scores.copy()
        scores[rows, tokens] = -np.inf
    return scores


def _bad_words(bad_words: list[tuple[int, ...]]) -> Processor:
    single = np.array([word[0] for word in bad_words if len(word) == 1], dtype=np.int64)
    longer = [word for word in bad_words if len(word) > 1]

    def process(scores: Scores, history: RowHistory) -> Scores:
        scores = scores.copy()
        scores[:, single] = -np.inf
        for word in longer:
            scores[history.ends_with(word[:-1]), word[-1]] = -np.inf
        return scores

    return process


def _min_length(eos: npt.NDArray[np.int64]) -> Processor:
    def process(scores: Scores, history: RowHistory) -> Scores:
        short = history.lengths < history.min_lengths
        if short.any():
            scores = scores.copy()
            scores[np.ix_(short, eos)] = -np.inf
        return scores

    return process


def _force_token(scores: Scores, rows: npt.NDArray[np.bool_], token: int) -> Scores:
    if rows.any():
        scores = scores.copy()
        scores[rows] = -np.inf
        scores[rows, token] = 0.0
    return scores


def _forced_bos(token: int) -> Processor:
    def process(scores: Scores, history: RowHistory) -> Scores:
        return _force_token(scores, history.lengths == 1, token)

    return process


def _forced_eos(token: int) -> Processor:
    def process(scores: Scores, history: RowHistory) -> Scores:
        return _force_token(scores, history.lengths == history.max_lengths - 1, token)

    return process


def _temperature(temperature: float) -> Processor:
    def process(scores: Scores, history: RowHistory) -> Scores:
        return scores / np.float32(temperature)

    return process


def _top_k(top_k: int) -> Processor:
    def process(scores: Scores, history: RowHistory) -> Scores:
        k = min(top_k, scores.shape[-1])
        kth_largest = np.partition(scores, -k, axis=-1)[:, -k, None]
        return np.where(scores < kth_largest, np.float32(-np.inf), scores)

    return process


def _top_p(top_p: float, min_tokens_to_keep: int) -> Processor:
    def process(scores: Scores, history: RowHistory) -> Scores:
        # Sorting only the finite scores (after top-k, a few) gives the same cut: a -inf score adds nothing
        # to the cumulative probability and is removed already.
        vocab = scores.shape[-1]
        finite = np.isfinite(scores)
        candidates = max(int(finite.sum(axis=-1).max()), min_tokens_to_keep)
        if candidates < vocab:
            # The finite scores' positions first (a stable sort of booleans is a linear radix sort).
            part = np.argsort(~finite, axis=-1, kind="stable")[:, :candidates]
        else:
            part = np.broadcast_to(np.arange(vocab), scores.shape)
        part_scores = np.take_along_axis(scores, part, axis=-1)
        order = np.argsort(part_scores, axis=-1)  # ascending, as transformers sorts
        cumulative = np.cumsum(softmax(np.take_along_axis(part_scores, order, axis=-1)), axis=-1)
        remove_sorted = cumulative <= (1 - top_p)
        remove_sorted[:, -min_tokens_to_keep:] = False
        rows, positions = np.nonzero(remove_sorted)
        scores = scores.copy()
        scores[rows, np.take_along_axis(part, order, axis=-1)[rows, positions]] = -np.inf
        return scores

    return process


def softmax(scores: Scores) -> Scores:
    shifted = scores - scores.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    result: Scores = exp / exp.sum(axis=-1, keepdims=True)
    return result


def log_softmax(scores: Scores) -> Scores:
    """float32 throughout, as torch's log_softmax on float32 logits (beam scores add these up)."""
    shifted = scores - scores.max(axis=-1, keepdims=True)
    result: Scores = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return result
