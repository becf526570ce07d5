"""Which pipeline tasks zeroserve serves, and which task a checkpoint serves when nobody says.

Kept free of numpy/onnxruntime so the control plane can validate `HF_TASK` cheaply.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TEXT_CLASSIFICATION = "text-classification"
TOKEN_CLASSIFICATION = "token-classification"
QUESTION_ANSWERING = "question-answering"
FILL_MASK = "fill-mask"
FEATURE_EXTRACTION = "feature-extraction"
ZERO_SHOT_CLASSIFICATION = "zero-shot-classification"

TASKS = (
    TEXT_CLASSIFICATION,
    TOKEN_CLASSIFICATION,
    QUESTION_ANSWERING,
    FILL_MASK,
    FEATURE_EXTRACTION,
    ZERO_SHOT_CLASSIFICATION,
)

# Aliases the transformers pipeline factory accepts for the same task.
_ALIASES = {"sentiment-analysis": TEXT_CLASSIFICATION, "ner": TOKEN_CLASSIFICATION}

# Architecture-name suffixes, most specific first; a bare `*Model` is the encoder without a head.
_SUFFIXES = (
    ("ForSequenceClassification", TEXT_CLASSIFICATION),
    ("ForTokenClassification", TOKEN_CLASSIFICATION),
    ("ForQuestionAnswering", QUESTION_ANSWERING),
    ("ForMaskedLM", FILL_MASK),
    ("ForPreTraining", FILL_MASK),
    ("Model", FEATURE_EXTRACTION),
)


class UnknownTask(ValueError):
    """The task is not one zeroserve serves, or cannot be inferred from the checkpoint."""


def normalize_task(name: str) -> str:
    task = _ALIASES.get(name.strip(), name.strip())
    if task not in TASKS:
        raise UnknownTask(f"unsupported task {name!r}; supported: {', '.join(TASKS)}")
    return task


def infer_task(config: Mapping[str, Any], env: Mapping[str, str] | None = None) -> str:
    """`HF_TASK` if set, else the task implied by the first entry of config.json `architectures`,
    as the Hugging Face inference toolkit does. Zero-shot classification is only ever chosen by HF_TASK:
    an NLI model looks like any sequence classifier."""
    explicit = (env or {}).get("HF_TASK", "")
    if explicit:
        return normalize_task(explicit)
    architectures = config.get("architectures") or []
    if not architectures or not isinstance(architectures[0], str):
        raise UnknownTask("config.json names no `architectures`; set HF_TASK to choose the task")
    architecture = architectures[0]
    for suffix, task in _SUFFIXES:
        # "GPT2LMHeadModel" ends in "Model" too, but carries a head we do not serve.
        if architecture.endswith(suffix) and not (task == FEATURE_EXTRACTION and "Head" in architecture):
            return task
    raise UnknownTask(
        f"cannot infer a task from architecture {architecture!r}; set HF_TASK to one of {', '.join(TASKS)}"
    )
