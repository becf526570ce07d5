"""Greedy decoding and sampling, one step at a time: transformers 4.51.3's `_sample` loop, with all rows
(prompts x num_return_sequences) in one model step.

`TokenStream` yields each step's new token per running row, so a stream can send tokens as they come and stop
the work by not asking for the next step; `result()` finishes the run and returns the final sequences. A row
that ends (an eos token, or its length limit) leaves the batch: transformers keeps feeding it padding, which
changes nothing for the other rows, so dropping it gives the same tokens for less work.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt

from zeroserve.runtimes.generation.history import RowHistory
from zeroserve.runtimes.generation.lengths import decoder_prefixes, length_limits
from zeroserve.runtimes.generation.model import NextTokenModel
from zeroserve.runtimes.generation.outputs import PromptOutput, StepTokens
from zeroserve.runtimes.generation.processors import Scores, apply_processors, build_processors
from zeroserve.runtimes.generation.settings import GenerationSettings


class TokenStream:
    def __init__(self, model: NextTokenModel, prompts: Sequence[Sequence[int]], settings: GenerationSettings):
        if settings.is_beam_search:
            raise ValueError("beam search has no token stream; call beam_search()")
        self._model = model
        self._settings = settings
        self._copies = settings.num_return_sequences
        self._prefixes = decoder_prefixes(
            [list(prompt) for prompt in prompts], settings, is_encoder_decoder=model.is_encoder_decoder
        )
        self._limits = [
            length_limits(settings, len(prefix), is_encoder_decoder=model.is_encoder_decoder)
            for prefix in self._prefixes
        ]
        self._prompts = [list(prompt) for prompt in prompts]
        rows = len(prompts) * self._copies
        max_new = max(
            limit.max_new_tokens(len(p)) for limit, p in zip(self._limits, self._prefixes, strict=True)
        )
        self._generated = np.zeros((rows, max_new), dtype=np.int64)
        self._generated_lengths = np.zeros(rows, dtype=np.int64)
        self._ended_on_eos = np.zeros(rows, dtype=np.bool_)
        self._eos = np.array(settings.eos_token_ids, dtype=np.int64)
        self._rng = np.random.default_rng(settings.seed)
        self._steps = self._run()

    def __iter__(self) -> Iterator[StepTokens]:
        return self._steps

    def result(self) -> list[PromptOutput]:
        """Runs the steps not yet taken, then returns one output per prompt."""
        for _ in self._steps:
            pass
        return [self._prompt_output(prompt) for prompt in range(len(self._prompts))]

    def _run(self) -> Iterator[StepTokens]:
        settings, model = self._settings, self._model
        logits, state = model.start(
            self._prompts, settings.decoder_start_token_id if model.is_encoder_decoder else None
        )
        expand = np.repeat(np.arange(len(self._prompts), dtype=np.int64), self._copies)
        if self._copies > 1:
            state = model.select(state, expand)
            logits = logits[expand]
        history = RowHistory.start(
            [self._prefixes[p] for p in expand],
            [self._limits[p] for p in expand],
            logits.shape[-1],
            track_seen=settings.repetition_penalty != 1.0,
            ngram_size=settings.no_repeat_ngram_size,
        )
        processors = build_processors(settings)
        running = np.arange(len(expand), dtype=np.int64)
        step = 0
        while True:
            scores = apply_processors(processors, logits.astype(np.float32, copy=False), history)
            tokens, logprobs = self._choose(scores)
            history.append(tokens)
            on_eos = np.isin(tokens, self._eos)
            finished = on_eos | (history.lengths >= history.max_lengths)
            self._generated[running, step] = tokens
            self._generated_lengths[running] += 1
            self._ended_on_eos[running] = on_eos
            yield StepTokens(running, tokens, logprobs, finished, on_eos & finished)
            step += 1
            if finished.all():
                return
            if finished.any():
                keep = np.flatnonzero(~finished)
                state = model.select(state, keep)
                history = history.select(keep)
                running, tokens = running[keep], tokens[keep]
            logits, state = model.step(state, tokens)

    def _choose(self, scores: Scores) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        rows = np.arange(scores.shape[0])
        top = scores.max(axis=-1, keepdims=True)
        weights = np.exp(scores - top)  # unnormalized probabilities; -inf scores weigh 0
        if self._settings.do_sample:
            cumulative = np.cumsum(weights, axis=-1)
            draws = self._rng.random(scores.shape[0]) * cumulative[:, -1]
            tokens = np.minimum((cumulative <= draws[:, None]).sum(axis=-1), scores.shape[-1] - 1)
        else:
            tokens = np.argmax(scores, axis=-1)
        logprobs = scores[rows, tokens] - top[:, 0] - np.log(weights.sum(axis=-1))
        return tokens.astype(np.int64), logprobs.astype(np.float32)

    def _prompt_output(self, prompt: int) -> PromptOutput:
        rows = slice(prompt * self._copies, (prompt + 1) * self._copies)
        prefix = self._prefixes[prompt]
        lengths = self._generated_lengths[rows]
        width = int(lengths.max())
        sequences = np.empty((self._copies, len(prefix) + width), dtype=np.int64)
        sequences[:, : len(prefix)] = prefix
        sequences[:, len(prefix) :] = self._generated[rows, :width]
        pad = _greedy_pad(self._settings)
        if pad is not None:
            past_end = np.arange(width)[None, :] >= lengths[:, None]
            sequences[:, len(prefix) :][past_end] = pad
        return PromptOutput(sequences, len(prefix), lengths.copy(), self._ended_on_eos[rows].copy())


def _greedy_pad(settings: GenerationSettings) -> int | None:
    """What `_sample` pads a finished row with: pad_token_id, else the first eos (generate() sets it so); only
    rows that stop on eos ever need it."""
    if not settings.eos_token_ids:
        return None
    return settings.pad_token_id if settings.pad_token_id is not None else settings.eos_token_ids[0]
