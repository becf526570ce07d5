"""question-answering (extractive): the best span of `context` answering `question`.

Semantics of transformers 4's pipeline (the one the SageMaker toolkit serves; transformers 5 dropped it):
span score = P(start) * P(end) over context tokens, spans at most `max_answer_len` tokens, answers as
character offsets into the context, widened to whole words; a context too long for 384 tokens is read in
windows sharing 128 tokens (the pipeline's max_seq_len and doc_stride), and spans that give the same text,
in any window, are one answer whose score is their sum.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from tokenizers import Encoding

from zeroserve.runtimes.base import ClientInputError
from zeroserve.runtimes.tasks.plan import Plan, Rows, TaskBase, bool_param, int_param, unsupported_parameter
from zeroserve.runtimes.tokenizer import ONLY_SECOND

# transformers pushes excluded positions to this logit before the softmax.
_EXCLUDED_LOGIT = -10000.0


# The pipeline's defaults: windows of min(384, the model's maximum) tokens, overlapping by 128.
WINDOW_LENGTH = 384
WINDOW_STRIDE = 128


class QuestionAnswering(TaskBase):
    truncation_strategy = ONLY_SECOND
    token_level = True
    window_length = WINDOW_LENGTH
    window_stride = WINDOW_STRIDE

    def plan(self, inputs: Any, parameters: Mapping[str, Any]) -> Plan:
        examples, was_list = _parse_inputs(inputs)
        # `topk` is the pipeline's deprecated spelling; unknown parameters it ignores, and so does this task.
        top_k = int_param(parameters, "top_k" if parameters.get("top_k") is not None else "topk", 1)
        max_answer_len = int_param(parameters, "max_answer_len", 15)
        impossible = bool_param(parameters, "handle_impossible_answer", False)
        align = bool_param(parameters, "align_to_words", True)
        for name, default in (("max_seq_len", WINDOW_LENGTH), ("doc_stride", WINDOW_STRIDE)):
            if parameters.get(name) not in (None, default):
                raise unsupported_parameter(name, f"only its default, {default}")

        def finish(rows: Rows) -> Any:
            results, row = [], 0
            for (_, context), count in zip(examples, rows.windows, strict=True):
                windows = [
                    (rows.encodings[r], rows.outputs["start_logits"][r], rows.outputs["end_logits"][r])
                    for r in range(row, row + count)
                ]
                row += count
                results.append(_answers(context, windows, top_k, max_answer_len, impossible, align))
            # transformers answers a one-element list like a single question.
            return results if was_list and len(results) != 1 else results[0]

        return Plan(sequences=list(examples), finish=finish)

    def example(self) -> tuple[Any, dict[str, Any]]:
        return {
            "question": "How fast did it answer?",
            "context": "The service answered within milliseconds.",
        }, {}


def _answers(
    context: str,
    windows: list[tuple[Encoding, np.ndarray, np.ndarray]],
    top_k: int,
    max_answer_len: int,
    impossible: bool,
    align_to_words: bool,
) -> Any:
    """The pipeline's answers for one question over its context's windows."""
    answers: list[dict[str, Any]] = []
    null_score = 1_000_000.0  # the pipeline's start value for the "no answer" score's minimum
    for encoding, start_logits, end_logits in windows:
        null_score = min(
            null_score,
            _window_answers(
                answers, context, encoding, start_logits, end_logits, top_k, max_answer_len, align_to_words
            ),
        )
    if impossible:
        answers.append({"score": null_score, "start": 0, "end": 0, "answer": ""})
    answers = sorted(answers, key=lambda a: float(a["score"]), reverse=True)[:top_k]
    return answers[0] if len(answers) == 1 else answers


def _window_answers(
    answers: list[dict[str, Any]],
    context: str,
    encoding: Encoding,
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    top_k: int,
    max_answer_len: int,
    align_to_words: bool,
) -> float:
    """Add one window's best spans to `answers` (merging equal texts); return its "no answer" score."""
    width = len(encoding.ids)
    # Only context tokens (sequence id 1) may start or end an answer.
    allowed = np.array([sid == 1 for sid in encoding.sequence_ids], dtype=bool)
    start = _probabilities(start_logits[:width], allowed, encoding)
    end = _probabilities(end_logits[:width], allowed, encoding)
    null_score = float(start[0] * end[0])
    start[0] = end[0] = 0.0
    # candidates[s, e] = P(start=s) * P(end=e) for s <= e < s + max_answer_len.
    candidates = np.tril(np.triu(np.outer(start, end)), max_answer_len - 1)
    flat = candidates.ravel()
    # The pipeline looks at more spans when it aligns to words, since several collapse into one answer.
    candidates_wanted = top_k * 2 + 10 if align_to_words else top_k
    # Excluded tokens have probability ~0, so the best spans are among the few largest products; a partial
    # sort of those avoids sorting all width^2 candidates.
    wanted = min(flat.size, candidates_wanted + 8)
    best = np.argpartition(-flat, wanted - 1)[:wanted]
    order = best[np.argsort(-flat[best], kind="stable")]
    taken = 0
    for index in order:
        s, e = divmod(int(index), width)
        if not (allowed[s] and allowed[e]):
            continue
        taken += 1
        char_start, char_end = encoding.offsets[s][0], encoding.offsets[e][1]
        if align_to_words:
            # As the pipeline: widen the span to whole words, so an answer never starts or ends mid-word.
            first, last = encoding.word_ids[s], encoding.word_ids[e]
            first_chars = None if first is None else encoding.word_to_chars(first, 1)
            last_chars = None if last is None else encoding.word_to_chars(last, 1)
            if first_chars is not None and last_chars is not None:
                char_start, char_end = first_chars[0], last_chars[1]
        text = context[char_start:char_end]
        # Spans that give the same text (ignoring case) are one answer whose score is their sum.
        same = next((a for a in answers if a["answer"].lower() == text.lower()), None)
        if same is not None:
            same["score"] += float(flat[index])
        else:
            answers.append(
                {"score": float(flat[index]), "start": char_start, "end": char_end, "answer": text}
            )
        if taken == candidates_wanted:
            break
    return null_score


def _probabilities(logits: np.ndarray, allowed: np.ndarray, encoding: Encoding) -> np.ndarray:
    """Softmax over context tokens plus the first ([CLS]) token, which stands for "no answer"."""
    keep = allowed.copy()
    keep[0] = encoding.special_tokens_mask[0] == 1
    masked = np.where(keep, logits.astype(np.float64), _EXCLUDED_LOGIT)
    exp = np.exp(masked - masked.max())
    result: np.ndarray = exp / exp.sum()
    return result


def _parse_inputs(inputs: Any) -> tuple[list[tuple[str, str]], bool]:
    if isinstance(inputs, dict):
        return [_example(inputs)], False
    if isinstance(inputs, list) and inputs:
        return [_example(item) for item in inputs], True
    raise ClientInputError('`inputs` must be {"question": str, "context": str} or a list of those')


def _example(item: Any) -> tuple[str, str]:
    if not isinstance(item, dict):
        raise ClientInputError('each question must be {"question": str, "context": str}')
    question, context = item.get("question"), item.get("context")
    if not isinstance(question, str) or not isinstance(context, str) or not question or not context:
        raise ClientInputError('each question needs non-empty "question" and "context" strings')
    return question, context
