"""Generative answers are token for token the real toolkit's (2.6.0 on transformers 4.51.3, its
container's pairing): every architecture x task x parameter set below, on tiny seeded checkpoints
(tests/generative_models.py), through zeroserve's whole serve path (bundle built by the deploy-time
converter, ONNX graphs, the numpy decoding loop, the generative task) against the toolkit's own handler in
`.venv-parity-gen`.

Greedy and beam search only: sampling cannot match torch's random generator. The answers are compared as
JSON, text for text: a single different token changes the decoded text.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from toolkit_reference import ROOT, ToolkitAnswer, run_toolkit

from generative_models import generative_checkpoint
from zeroserve.conversion.export import build_bundle
from zeroserve.runtimes.base import Handler, Invocation, Reply
from zeroserve.runtimes.loader import load_handler

GEN_PYTHON_ENV = "ZEROSERVE_GEN_PARITY_PYTHON"

PROMPT = "The movie was"
SOURCE = "The film is a quiet story about a family that moves to the sea and finds its way again."

# Parameter sets every model is asked with (the toolkit's `parameters`), by name.
COMMON: dict[str, dict[str, Any]] = {
    "defaults": {},
    "max-new-tokens": {"max_new_tokens": 12},
    "max-length": {"max_length": 18},
    "beams": {"num_beams": 3, "max_new_tokens": 8},
    "beams-return-two": {"num_beams": 3, "num_return_sequences": 2, "max_new_tokens": 8},
    "beams-early-stopping-length-penalty": {
        "num_beams": 2,
        "early_stopping": True,
        "length_penalty": 0.5,
        "max_new_tokens": 10,
    },
    "beams-never-stop-early": {"num_beams": 2, "early_stopping": "never", "max_new_tokens": 6},
    "repetition-penalty": {"repetition_penalty": 1.3, "max_new_tokens": 10},
    "no-repeat-ngram": {"no_repeat_ngram_size": 2, "max_new_tokens": 10},
    "min-new-tokens": {"min_new_tokens": 6, "max_new_tokens": 8},
    "min-length": {"min_length": 10, "max_new_tokens": 12},
    "greedy-explicit": {"do_sample": False, "max_new_tokens": 7},
    "no-clean-up": {"clean_up_tokenization_spaces": False, "max_new_tokens": 7},
}
TEXT_GENERATION_ONLY: dict[str, dict[str, Any]] = {
    "no-full-text": {"return_full_text": False, "max_new_tokens": 9},
    "stop-sequence": {"stop_sequence": " the", "max_new_tokens": 12},
}


def _cases(task: str, chat: bool, samples: bool = False) -> list[tuple[str, Any]]:
    """`samples`: the checkpoint's generation config samples (Qwen2's does), so every case asks for greedy."""
    text = PROMPT if task == "text-generation" else SOURCE
    sets = dict(COMMON)
    if task == "text-generation":
        sets.update(TEXT_GENERATION_ONLY)
    sets["list-of-inputs"] = {"max_new_tokens": 5}
    if chat:
        sets["chat"] = {"max_new_tokens": 8}
    cases: list[tuple[str, Any]] = []
    for name, params in sets.items():
        inputs: Any = text
        if name == "list-of-inputs":
            inputs = [text, "A second one"]
        elif name == "chat":
            inputs = [
                {"role": "system", "content": "You are kind."},
                {"role": "user", "content": "Tell me about the movie."},
            ]
        parameters = {**params, "do_sample": False} if samples else params
        body = {"inputs": inputs, "parameters": parameters} if parameters else {"inputs": inputs}
        cases.append((name, body))
    return cases


# Checkpoints whose generation_config.json samples by default.
SAMPLING_BY_DEFAULT = {"qwen2"}
# (checkpoint, HF_TASK, has a chat template)
MODELS: list[tuple[str, str, bool]] = [
    ("gpt2", "text-generation", False),
    ("llama", "text-generation", True),
    ("qwen2", "text-generation", True),
    ("t5", "summarization", False),
    ("t5", "translation_en_to_de", False),
    ("t5", "text2text-generation", False),
    ("bart", "summarization", False),
    ("bart", "text2text-generation", False),
    ("marian", "translation", False),
]


def _gen_parity_python() -> Path | None:
    configured = os.environ.get(GEN_PYTHON_ENV)
    path = Path(configured) if configured else ROOT / ".venv-parity-gen" / "bin" / "python"
    return path if path.is_file() else None


@pytest.fixture(scope="session")
def generative_toolkit_answers() -> dict[tuple[str, str], list[ToolkitAnswer]]:
    python = _gen_parity_python()
    if python is None:
        pytest.skip("the generation reference venv is absent: run `make parity-venv` (make test builds it)")
    jobs = [
        {
            "model_dir": generative_checkpoint(name),
            "task": task,
            "cases": [
                (body, "application/json", "application/json")
                for _, body in _cases(task, chat, name in SAMPLING_BY_DEFAULT)
            ],
        }
        for name, task, chat in MODELS
    ]
    answers = run_toolkit(python, jobs, timeout_s=900.0)
    return {(name, task): per for (name, task, _), per in zip(MODELS, answers, strict=True)}


@cache
def _handler(name: str, task: str) -> Handler:
    bundle = generative_checkpoint(name).parent / f"{name}-bundle-{task}-{os.getpid()}"
    build_bundle(generative_checkpoint(name), bundle, task=task)
    return load_handler(bundle, threads=1)


def _params() -> list[Any]:
    return [
        pytest.param(name, task, index, id=f"{name}-{task}-{case}")
        for name, task, chat in MODELS
        for index, (case, _) in enumerate(_cases(task, chat, name in SAMPLING_BY_DEFAULT))
    ]


@pytest.mark.parametrize(("name", "task", "index"), _params())
def test_generated_answer_is_the_toolkits(
    generative_toolkit_answers: dict[tuple[str, str], list[ToolkitAnswer]], name: str, task: str, index: int
) -> None:
    chat = dict((n, c) for n, _, c in MODELS)[name]
    _, body = _cases(task, chat, name in SAMPLING_BY_DEFAULT)[index]
    expected = generative_toolkit_answers[(name, task)][index]
    (outcome,) = _handler(name, task).handle_batch([Invocation(json.dumps(body).encode())])
    if not expected.ok:
        assert not isinstance(outcome, Reply), f"the toolkit failed ({expected.message}), zeroserve answered"
        return
    assert isinstance(outcome, Reply), f"zeroserve failed: {outcome}"
    assert json.loads(outcome.body) == json.loads(expected.body)
