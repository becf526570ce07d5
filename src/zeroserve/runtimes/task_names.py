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
TEXT_GENERATION = "text-generation"
TEXT2TEXT_GENERATION = "text2text-generation"
SUMMARIZATION = "summarization"
TRANSLATION = "translation"

ENCODER_TASKS = (
    TEXT_CLASSIFICATION,
    TOKEN_CLASSIFICATION,
    QUESTION_ANSWERING,
    FILL_MASK,
    FEATURE_EXTRACTION,
    ZERO_SHOT_CLASSIFICATION,
)
# `translation_xx_to_yy` (any language codes) is the translation task too: see `normalize_task`.
GENERATIVE_TASKS = (TEXT_GENERATION, TEXT2TEXT_GENERATION, SUMMARIZATION, TRANSLATION)
TASKS = ENCODER_TASKS + GENERATIVE_TASKS

# Aliases the transformers pipeline factory accepts for the same task.
_ALIASES = {"sentiment-analysis": TEXT_CLASSIFICATION, "ner": TOKEN_CLASSIFICATION}

# The toolkit's ARCHITECTURES_2_TASK (2.6.0), for the architectures of tasks zeroserve serves. The toolkit
# tests every suffix and keeps the last that matches; no architecture name matches two of these.
_TOOLKIT_SUFFIXES = (
    ("ForQuestionAnswering", QUESTION_ANSWERING),
    ("ForTokenClassification", TOKEN_CLASSIFICATION),
    ("ForSequenceClassification", TEXT_CLASSIFICATION),
    ("ForMaskedLM", FILL_MASK),
    ("ForCausalLM", TEXT_GENERATION),
    ("ForConditionalGeneration", TEXT2TEXT_GENERATION),
    ("MTModel", TEXT2TEXT_GENERATION),
    ("EncoderDecoderModel", TEXT2TEXT_GENERATION),
    ("GPT2LMHeadModel", TEXT_GENERATION),
    ("T5WithLMHeadModel", TEXT2TEXT_GENERATION),
)
# zeroserve's own additions, tried only when the toolkit's table matches nothing: a pre-training head serves
# fill-mask, and a bare `*Model` is the encoder without a head.
_OWN_SUFFIXES = (("ForPreTraining", FILL_MASK), ("Model", FEATURE_EXTRACTION))


class UnknownTask(ValueError):
    """The task is not one zeroserve serves, or cannot be inferred from the checkpoint."""


def normalize_task(name: str) -> str:
    """The canonical task name. `translation_en_to_de` stays as given: the pipeline factory reads
    the languages from it (they choose the tokenizer's source and target language where it has any)."""
    stripped = name.strip()
    task = _ALIASES.get(stripped, stripped)
    if task.startswith(TRANSLATION + "_"):
        if translation_languages(task) is None:
            # The pipeline factory's own wording.
            raise UnknownTask(f"Invalid translation task {name}, use 'translation_XX_to_YY' format")
        return task
    if task not in TASKS:
        raise UnknownTask(
            f"unsupported task {name!r}; supported: {', '.join(TASKS)}, or translation_xx_to_yy"
        )
    return task


def translation_languages(task: str) -> tuple[str, str] | None:
    """("en", "de") for "translation_en_to_de"; None for any other name."""
    parts = task.split("_")
    if len(parts) == 4 and parts[0] == TRANSLATION and parts[2] == "to":
        return parts[1], parts[3]
    return None


def pipeline_task(task: str) -> str:
    """The pipeline behind a task name: `translation_xx_to_yy` runs the translation pipeline."""
    return TRANSLATION if task.startswith(TRANSLATION) else task


def is_generative(task: str) -> bool:
    return pipeline_task(task) in GENERATIVE_TASKS


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
    found = None
    for suffix, task in _TOOLKIT_SUFFIXES:
        if architecture.endswith(suffix):
            found = task
    if found is not None:
        return found
    for suffix, task in _OWN_SUFFIXES:
        # "OpenAIGPTLMHeadModel" ends in "Model" too, but carries a head we do not serve.
        if architecture.endswith(suffix) and not (task == FEATURE_EXTRACTION and "Head" in architecture):
            return task
    raise UnknownTask(
        f"cannot infer a task from architecture {architecture!r}; set HF_TASK to one of {', '.join(TASKS)}"
    )
