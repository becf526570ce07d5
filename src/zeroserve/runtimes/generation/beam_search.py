"""Beam search (and beam sampling) as transformers 4.51.3's vectorized `_beam_search` does it: log-softmax,
processors, running beam scores, the top `max(2, 1 + n_eos) * num_beams` continuations, finished hypotheses
scored with the length penalty, early_stopping True / False / "never", num_return_sequences best hypotheses.

Several prompts share each model step, but each stops as if it ran alone (the toolkit's pipelines run one
input at a time; 4.51.3 batched would keep every prompt going until all could stop). Arrays are
[prompts, beams, ...]; the model's rows are those of the prompts still running, `num_beams` per prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from zeroserve.runtimes.generation.history import RowHistory
from zeroserve.runtimes.generation.lengths import LengthLimits, decoder_prefixes, length_limits
from zeroserve.runtimes.generation.model import DecoderState, Logits, NextTokenModel
from zeroserve.runtimes.generation.outputs import PromptOutput
from zeroserve.runtimes.generation.processors import apply_processors, build_processors, log_softmax
from zeroserve.runtimes.generation.settings import GenerationSettings

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
_UNREACHABLE = np.float32(-1.0e9)  # transformers' score for "not a candidate"


def beam_search(
    model: NextTokenModel, prompts: Sequence[Sequence[int]], settings: GenerationSettings
) -> list[PromptOutput]:
    prompt_lists = [list(prompt) for prompt in prompts]
    prefixes = decoder_prefixes(prompt_lists, settings, is_encoder_decoder=model.is_encoder_decoder)
    limits = [length_limits(settings, len(p), is_encoder_decoder=model.is_encoder_decoder) for p in prefixes]
    max_new = np.array([lim.max_new_tokens(len(p)) for lim, p in zip(limits, prefixes, strict=True)])
    rng = np.random.default_rng(settings.seed)
    logits, state, history = _start_rows(model, prompt_lists, prefixes, limits, settings)
    processors = build_processors(settings)
    beams = _Beams.start(len(prompts), settings.num_beams, int(max_new.max()), _fill_value(settings))
    active = np.arange(len(prompts))

    step = 0
    while True:
        log_probs = apply_processors(processors, log_softmax(logits.astype(np.float32, copy=False)), history)
        found = _continuations(
            log_probs, beams.running_tokens[active], beams.running_scores[active], step, max_new[active],
            settings, rng,
        )  # fmt: skip
        next_parents, next_tokens = beams.advance_running(active, found)
        beams.keep_finished(active, found, step, settings)
        step += 1

        going = _has_unfinished(
            settings,
            beams.running_scores[active],
            beams.done_scores[active],
            beams.is_done[active],
            found.hits,
            step,
            max_new[active],
        )
        if not going.any():
            break
        keep = np.flatnonzero(going)
        rows = (keep[:, None] * settings.num_beams + next_parents[keep]).reshape(-1)
        state, history = model.select(state, rows), history.select(rows)
        active = active[keep]
        fed = next_tokens[keep].reshape(-1)
        history.append(fed)
        logits, state = model.step(state, fed)

    return [beams.output(p, prefixes[p], settings) for p in range(len(prompts))]


def _start_rows(
    model: NextTokenModel,
    prompts: list[list[int]],
    prefixes: list[list[int]],
    limits: list[LengthLimits],
    settings: GenerationSettings,
) -> tuple[Logits, DecoderState, RowHistory]:
    """The first logits, the model's state and the tokens so far, `num_beams` rows per prompt: every beam
    starts as a copy of its prompt."""
    logits, state = model.start(
        prompts, settings.decoder_start_token_id if model.is_encoder_decoder else None
    )
    expand = np.repeat(np.arange(len(prompts), dtype=np.int64), settings.num_beams)
    state, logits = model.select(state, expand), logits[expand]
    history = RowHistory.start(
        [prefixes[p] for p in expand],
        [limits[p] for p in expand],
        logits.shape[-1],
        track_seen=settings.repetition_penalty != 1.0,
        ngram_size=settings.no_repeat_ngram_size,
    )
    return logits, state, history


@dataclass(frozen=True)
class _Continuations:
    """One step's best continuations of the active prompts' beams, [active, kept], best first."""

    sequences: Ints  # [active, kept, width]: the parent beam's tokens with this step's token written in
    scores: Floats  # the running beam score plus the token's processed log-probability
    parents: Ints  # which beam each continues
    tokens: Ints
    on_eos: Bools
    hits: Bools  # ends the hypothesis: an eos token, or the prompt's last allowed new token


def _continuations(
    log_probs: Floats,
    running_tokens: Ints,
    running_scores: Floats,
    step: int,
    max_new: Ints,
    settings: GenerationSettings,
    rng: np.random.Generator,
) -> _Continuations:
    """The top (or, sampling, drawn) `max(2, 1 + n_eos) * num_beams` continuations over all of a prompt's
    beams: enough that `num_beams` of them do not finish."""
    active, beams = running_scores.shape
    vocab = log_probs.shape[-1]
    eos = np.array(settings.eos_token_ids, dtype=np.int64)
    kept = max(2, 1 + eos.size) * beams
    accumulated = (log_probs.reshape(active, beams, vocab) + running_scores[:, :, None]).reshape(
        active, beams * vocab
    )
    if settings.do_sample:
        picked = _sample_without_replacement(accumulated, kept, rng)
    else:
        picked = _top_k_indices(accumulated, kept)
    picked_scores = np.take_along_axis(accumulated, picked, axis=1)
    parents, tokens = picked // vocab, picked % vocab
    sequences = np.take_along_axis(running_tokens, parents[:, :, None], axis=1)
    sequences[:, :, step] = tokens
    on_eos = np.isin(tokens, eos)
    hits = on_eos | (step + 1 >= max_new)[:, None]
    return _Continuations(sequences, picked_scores, parents, tokens, on_eos, hits)


@dataclass
class _Beams:
    """Per prompt, [prompts, beams, ...]: the running beams, and the best finished hypotheses so far."""

    running_tokens: Ints
    running_scores: Floats
    done_tokens: Ints
    done_scores: Floats
    done_lengths: Ints
    is_done: Bools
    ended_on_eos: Bools

    @classmethod
    def start(cls, prompts: int, beams: int, width: int, fill: int) -> _Beams:
        running_tokens = np.full((prompts, beams, width), fill, dtype=np.int64)
        running_scores = np.zeros((prompts, beams), dtype=np.float32)
        running_scores[:, 1:] = _UNREACHABLE  # only the first beam's continuations count at the first step
        return cls(
            running_tokens=running_tokens,
            running_scores=running_scores,
            done_tokens=running_tokens.copy(),
            done_scores=np.full((prompts, beams), _UNREACHABLE, dtype=np.float32),
            done_lengths=np.zeros((prompts, beams), dtype=np.int64),
            is_done=np.zeros((prompts, beams), dtype=np.bool_),
            ended_on_eos=np.zeros((prompts, beams), dtype=np.bool_),
        )

    def advance_running(self, active: Ints, found: _Continuations) -> tuple[Ints, Ints]:
        """The running beams of the next step: the best continuations that did not just finish. Returns
        their parent beams and their new tokens, [active, beams]."""
        beams = self.running_scores.shape[1]
        next_scores = found.scores + found.hits.astype(np.float32) * _UNREACHABLE
        order = _top_k_indices(next_scores, beams)
        self.running_tokens[active] = np.take_along_axis(found.sequences, order[:, :, None], axis=1)
        self.running_scores[active] = np.take_along_axis(next_scores, order, axis=1)
        parents = np.take_along_axis(found.parents, order, axis=1)
        return parents, np.take_along_axis(found.tokens, order, axis=1)

    def keep_finished(
        self, active: Ints, found: _Continuations, step: int, settings: GenerationSettings
    ) -> None:
        """The finished hypotheses: the best `beams` of those kept so far and those that just finished (only
        the top `beams` continuations may finish), scored with the length penalty."""
        beams = self.done_scores.shape[1]
        top_beams = np.arange(found.hits.shape[1]) < beams
        just_done = found.hits & top_beams[None, :]
        finished_scores = found.scores / np.float32((step + 1) ** settings.length_penalty)
        full = np.all(self.is_done[active], axis=1, keepdims=True) & (settings.early_stopping is True)
        finished_scores += full.astype(np.float32) * _UNREACHABLE
        finished_scores += (~just_done).astype(np.float32) * _UNREACHABLE
        merged_scores = np.concatenate([self.done_scores[active], finished_scores], axis=1)
        best = _top_k_indices(merged_scores, beams)
        self.done_tokens[active] = np.take_along_axis(
            np.concatenate([self.done_tokens[active], found.sequences], axis=1), best[:, :, None], axis=1
        )
        self.done_scores[active] = np.take_along_axis(merged_scores, best, axis=1)
        for target, new in (
            (self.done_lengths, np.full(found.hits.shape, step + 1, dtype=np.int64)),
            (self.is_done, just_done),
            (self.ended_on_eos, found.on_eos),
        ):
            target[active] = np.take_along_axis(np.concatenate([target[active], new], axis=1), best, axis=1)

    def output(self, prompt: int, prefix: list[int], settings: GenerationSettings) -> PromptOutput:
        """The prompt's `num_return_sequences` best finished hypotheses, after its decoder prefix."""
        count = settings.num_return_sequences
        lengths = self.done_lengths[prompt][:count].copy()
        width = int(lengths.max())
        sequences = np.empty((count, len(prefix) + width), dtype=np.int64)
        sequences[:, : len(prefix)] = prefix
        sequences[:, len(prefix) :] = self.done_tokens[prompt][:count, :width]
        return PromptOutput(
            sequences,
            len(prefix),
            lengths,
            self.ended_on_eos[prompt][:count].copy(),
            self.done_scores[prompt][:count].copy(),
        )


def _has_unfinished(
    settings: GenerationSettings,
    running_scores: Floats,
    done_scores: Floats,
    is_done: Bools,
    hits: Bools,
    generated: int,
    max_new: Ints,
) -> Bools:
    """Per prompt, 4.51.3's `_beam_search_has_unfinished_sequences`: can a running beam still beat the worst
    finished one, is a beam still open (early_stopping=True closes a prompt once `beams` are finished), and
    did not every continuation hit a stop."""
    if settings.early_stopping == "never" and settings.length_penalty > 0.0:
        hypothetical = (max_new.astype(np.float64) ** settings.length_penalty).astype(np.float32)
    else:
        hypothetical = np.full(max_new.shape, generated**settings.length_penalty, dtype=np.float32)
    best_running = running_scores[:, :1] / hypothetical[:, None]
    worst_done = np.where(is_done, done_scores.min(axis=1, keepdims=True), _UNREACHABLE)
    improvable = np.any(best_running > worst_done, axis=1)
    open_beam = ~(np.all(is_done, axis=1) & (settings.early_stopping is True))
    can_continue = ~np.all(hits, axis=1)
    result: Bools = improvable & open_beam & can_continue
    return result


def _top_k_indices(values: npt.NDArray[np.floating[Any]], k: int) -> Ints:
    """torch.topk's indices, best first."""
    if k < values.shape[1]:
        part = np.argpartition(-values, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(values.shape[1]), values.shape).copy()
    order = np.argsort(-np.take_along_axis(values, part, axis=1), axis=1, kind="stable")
    result: Ints = np.take_along_axis(part, order, axis=1).astype(np.int64)
    return result


def _sample_without_replacement(log_probs: Floats, k: int, rng: np.random.Generator) -> Ints:
    """torch.multinomial(softmax(log_probs), k) without replacement, in draw order (Gumbel top-k)."""
    wide = log_probs.astype(np.float64)
    keys = wide + rng.gumbel(size=wide.shape)
    keys[np.isneginf(wide)] = -np.inf
    return _top_k_indices(keys, k)


def _fill_value(settings: GenerationSettings) -> int:
    """4.51.3's `pad_token_id or eos_token_id[0] if eos_token_id is not None else -1`: a pad id of 0 is
    falsy there, so T5 (pad 0) pads beam outputs with its eos."""
    if not settings.eos_token_ids:
        return -1
    return settings.pad_token_id or settings.eos_token_ids[0]
