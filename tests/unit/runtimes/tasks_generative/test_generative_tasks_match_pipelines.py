"""The generative tasks against transformers 4.51.3's own pipelines (in `.venv-parity-gen`): for tiny random
checkpoints, the prompt ids zeroserve builds are those the pipeline hands generate(), the settings are those
generate() runs with, and given the ids the pipeline generated, zeroserve's answer is the pipeline's."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from zeroserve.runtimes.base import ClientInputError
from zeroserve.runtimes.tasks.generative import load_context, make_generative_task

ROOT = Path(__file__).resolve().parents[4]
PARITY_PYTHON = ROOT / ".venv-parity-gen" / "bin" / "python"
REFERENCE = Path(__file__).with_name("reference.py")

pytestmark = pytest.mark.skipif(not PARITY_PYTHON.exists(), reason="needs the .venv-parity-gen reference")

CHAT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "The quick fox saw the tree?"},
]
PREFILL = [{"role": "user", "content": "Name a bird."}, {"role": "assistant", "content": "The small"}]

CASES: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("gpt2", "text-generation"): [
        {"inputs": "The quick fox"},
        {"inputs": "The lazy dog chased", "parameters": {"max_new_tokens": 5, "return_full_text": False}},
        {"inputs": ["The old cat", "A bright bird near the house ."], "parameters": {"max_new_tokens": 4}},
        {"inputs": "The quick fox", "parameters": {"max_length": 3}},
        {"inputs": "The cat", "parameters": {"max_length": 9, "min_length": 7, "num_beams": 2}},
        {"inputs": "The dog", "parameters": {"num_beams": 3, "num_return_sequences": 2, "max_new_tokens": 4}},
        {
            "inputs": "The dog",
            "parameters": {"stop_sequence": " tree", "clean_up_tokenization_spaces": False},
        },
        {"inputs": "The dog", "parameters": {"return_tensors": True, "max_new_tokens": 3}},
        {"inputs": "", "parameters": {"max_new_tokens": 3}},
        {
            "inputs": "The dog",
            "parameters": {"repetition_penalty": 1.3, "no_repeat_ngram_size": 2, "top_k": 5},
        },
    ],
    ("llama", "text-generation"): [
        {"inputs": "The quick fox"},
        {"inputs": CHAT, "parameters": {"max_new_tokens": 6}},
        {"inputs": [CHAT, CHAT[1:]], "parameters": {"max_new_tokens": 3}},
        {"inputs": PREFILL, "parameters": {"max_new_tokens": 3}},
        {"inputs": "The quick fox saw " * 8, "parameters": {"truncation": True, "max_new_tokens": 2}},
        {"inputs": "The dog", "parameters": {"add_special_tokens": False, "min_new_tokens": 4}},
    ],
    ("t5", "summarization"): [
        {"inputs": "The quick fox saw the tree near the house."},
        {"inputs": ["The lazy dog liked the ball.", "The cat found the river."]},
        {
            "inputs": "The quick fox",
            "parameters": {"num_return_sequences": 2, "clean_up_tokenization_spaces": True},
        },
    ],
    ("t5", "translation_en_to_de"): [
        {"inputs": "The quick fox saw the tree.", "parameters": {"max_new_tokens": 6}},
    ],
    ("t5", "text2text-generation"): [
        {"inputs": "The old bird", "parameters": {"max_length": 8, "return_tensors": True}},
        {"inputs": ["The old bird", "The dog"], "parameters": {"num_beams": 2, "num_return_sequences": 2}},
    ],
    ("bart", "summarization"): [
        {"inputs": "The quick fox saw the tree near the house."},
        {
            "inputs": "The cat",
            "parameters": {"stop_sequence": "The", "early_stopping": True, "max_new_tokens": 5},
        },
    ],
    ("bart", "translation"): [{"inputs": "The dog liked the ball.", "parameters": {"length_penalty": 0.5}}],
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("generative")
    return _reference({"command": "build", "root": str(root)})  # type: ignore[no-any-return]


def _reference(request: dict[str, Any]) -> Any:
    done = subprocess.run(
        [str(PARITY_PYTHON), str(REFERENCE)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(("model", "task"), list(CASES))
def test_prompts_settings_and_answers_match_the_pipeline(
    checkpoints: dict[str, str], model: str, task: str
) -> None:
    cases = CASES[(model, task)]
    references = _reference({"command": "run", "model": checkpoints[model], "task": task, "cases": cases})
    context = load_context(Path(checkpoints[model]), task)
    generative = make_generative_task(context)
    for case, reference in zip(cases, references, strict=True):
        label = f"{model} {task} {case}"
        if "error" in reference:
            with pytest.raises(ClientInputError):
                generative.plan(case["inputs"], case.get("parameters", {}))
            continue
        plan = generative.plan(case["inputs"], case.get("parameters", {}))
        assert len(plan.jobs) == len(reference["input_ids"]), label
        generated = []
        for job, input_ids, output, settings in zip(
            plan.jobs, reference["input_ids"], reference["output"], reference["settings"], strict=True
        ):
            if input_ids is not None:
                assert list(job.prompt_ids) == input_ids[0], label
            _assert_settings(job.settings, settings, label)
            skip = 1 if context.checkpoint.is_encoder_decoder else (len(input_ids[0]) if input_ids else 0)
            generated.append([row[skip:] if input_ids or skip else row[1:] for row in output])
        assert plan.finish(generated) == reference["answer"], label


def _assert_settings(ours: Any, theirs: dict[str, Any], label: str) -> None:
    for name in (
        "max_length",
        "min_length",
        "do_sample",
        "num_beams",
        "top_k",
        "no_repeat_ngram_size",
        "num_return_sequences",
        "early_stopping",
        "decoder_start_token_id",
        "forced_eos_token_id",
    ):
        if name != "decoder_start_token_id" or theirs[name] is not None:
            assert getattr(ours, name) == theirs[name], f"{label}: {name}"
    for name in ("temperature", "top_p", "repetition_penalty", "length_penalty"):
        assert getattr(ours, name) == pytest.approx(theirs[name]), f"{label}: {name}"
    eos = theirs["eos_token_id"]
    assert list(ours.eos_token_ids) == (eos if isinstance(eos, list) else [eos]), f"{label}: eos"


def test_unknown_parameter_is_refused_by_name(checkpoints: dict[str, str]) -> None:
    task = make_generative_task(load_context(Path(checkpoints["gpt2"]), "text-generation"))
    with pytest.raises(ClientInputError, match="max_tokens"):
        task.plan("The dog", {"max_tokens": 3})
    with pytest.raises(ClientInputError, match="typical_p"):
        task.plan("The dog", {"typical_p": 0.5})


def test_max_new_tokens_outside_one_to_the_ceiling_is_refused(checkpoints: dict[str, str]) -> None:
    context = load_context(Path(checkpoints["gpt2"]), "text-generation", max_new_tokens=16)
    task = make_generative_task(context)
    for value in (0, -1, 17):
        with pytest.raises(ClientInputError, match="max_new_tokens"):
            task.plan("The dog", {"max_new_tokens": value})
    prompt_length = len(task.plan("The dog", {}).jobs[0].prompt_ids)
    assert task.plan("The dog", {"max_new_tokens": 16}).jobs[0].settings.max_length == prompt_length + 16


def test_prompt_beyond_the_window_is_refused_unless_truncation_is_asked(checkpoints: dict[str, str]) -> None:
    task = make_generative_task(load_context(Path(checkpoints["t5"]), "text2text-generation"))
    long_prompt = "The quick fox saw the tree near the house. " * 10
    with pytest.raises(ClientInputError, match="window of 64 tokens"):
        task.plan(long_prompt, {})
    assert len(task.plan(long_prompt, {"truncation": True}).jobs[0].prompt_ids) == 64


def test_chat_for_a_tokenizer_without_chat_template_is_refused(checkpoints: dict[str, str]) -> None:
    task = make_generative_task(load_context(Path(checkpoints["gpt2"]), "text-generation"))
    with pytest.raises(ClientInputError, match="no chat template"):
        task.plan(CHAT, {})


def test_streamed_deltas_concatenate_to_the_answer_text(checkpoints: dict[str, str]) -> None:
    task = make_generative_task(load_context(Path(checkpoints["llama"]), "text-generation"))
    plan = task.plan("The quick fox", {"return_full_text": False})
    tokenizer = task.context.tokenizer
    new_ids = [*tokenizer.encode(" saw the tree , isn't it ? The old 's bird.", add_special_tokens=False), 2]
    detokenizer = plan.detokenizer(0)
    streamed = "".join(detokenizer.add(token) for token in new_ids) + detokenizer.finish()
    assert streamed == plan.finish([[new_ids]])[0]["generated_text"]
