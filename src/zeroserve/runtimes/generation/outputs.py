"""What a generation hands back: `StepTokens` (one decoding step's new tokens, for streaming) and
`PromptOutput` (one prompt's final sequences, as transformers' generate() returns them for that prompt alone).

Rows are numbered prompt-major: row `p * num_return_sequences + k` is the k-th answer to prompt p.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class StepTokens:
    rows: npt.NDArray[np.int64]  # the rows still running before this step, each got one token
    tokens: npt.NDArray[np.int64]
    # log-probability of each token under the distribution it was chosen from (after the processors)
    logprobs: npt.NDArray[np.float32]
    finished: npt.NDArray[np.bool_]  # rows that end with this token; they get no more steps
    ended_on_eos: npt.NDArray[np.bool_]  # of those, the ones whose token is an eos (else: the length limit)


@dataclass(frozen=True)
class PromptOutput:
    # [num_return_sequences, length]: the decoder's prefix (the prompt for a decoder-only model, the start
    # token for an encoder-decoder one), the generated tokens, then padding up to the longest row; exactly
    # generate()'s `sequences` for this prompt.
    sequences: npt.NDArray[np.int64]
    prefix_length: int
    generated_lengths: npt.NDArray[np.int64]  # [num_return_sequences]: tokens generated, padding excluded
    ended_on_eos: npt.NDArray[np.bool_]  # [num_return_sequences]: False where the length limit ended the row
    # [num_return_sequences]: beam search's `sequences_scores` (length-penalized sum of log-probs); None
    # for greedy decoding and sampling.
    scores: npt.NDArray[np.float32] | None = None

    def generated(self, row: int) -> list[int]:
        """The row's new tokens, without prefix and padding."""
        start = self.prefix_length
        return [int(token) for token in self.sequences[row, start : start + int(self.generated_lengths[row])]]
