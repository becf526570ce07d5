"""The numpy decoding loop against transformers 4.51.3's generate() (the toolkit 2.6.0 reference, run in
.venv-parity-gen on the same saved weights): greedy and beam search give the same tokens, for decoder-only and
encoder-decoder models, across the parameters the pipelines pass. Our loop runs all prompts of a case in one
batch; the reference runs each prompt alone, as the toolkit's pipelines do."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tiny_generators import KINDS, SPECIAL_TOKENS, TorchNextTokenModel

from zeroserve.runtimes.generation.decode import generate
from zeroserve.runtimes.generation.settings import GenerationSettings

ROOT = Path(__file__).resolve().parents[4]
PARITY_PYTHON = ROOT / ".venv-parity-gen" / "bin" / "python"
REFERENCE_SCRIPT = Path(__file__).with_name("reference_generate.py")

PROMPTS = [[5, 17, 33, 8], [12, 40, 7, 7, 19, 3], [9]]
# Tokens the tiny models actually produce, so that "eos" ends some rows early and not others.
FREQUENT_EOS = {"llama": (2, 21, 27), "t5": (1, 35, 46), "bart": (2, 18, 48)}

CASES: dict[str, dict[str, Any]] = {
    "greedy_max_new_tokens": {"max_new_tokens": 12},
    "greedy_max_length": {"max_length": 15},
    "greedy_max_new_tokens_wins_over_max_length": {"max_new_tokens": 9, "max_length": 40},
    "greedy_several_eos": {"max_new_tokens": 14, "eos": "frequent"},
    "greedy_repetition_penalty": {"max_new_tokens": 12, "repetition_penalty": 1.8},
    "greedy_repetition_penalty_below_one": {"max_new_tokens": 10, "repetition_penalty": 0.7},
    "greedy_no_repeat_ngram": {"max_new_tokens": 14, "no_repeat_ngram_size": 2},
    "greedy_no_repeat_unigram": {"max_new_tokens": 10, "no_repeat_ngram_size": 1},
    "greedy_min_new_tokens": {"max_new_tokens": 12, "min_new_tokens": 6, "eos": "frequent"},
    "greedy_min_length": {"max_new_tokens": 12, "min_length": 9, "eos": "frequent"},
    "greedy_bad_words": {
        "max_new_tokens": 12,
        "bad_words_ids": ((21,), (35,), (5,), (17, 17), (37, 37), (0, 0)),
    },
    "greedy_forced_bos_eos": {"max_new_tokens": 8, "forced_bos_token_id": 7, "forced_eos_token_id": 2},
    "beam2": {"max_new_tokens": 10, "num_beams": 2},
    "beam4_return4": {"max_new_tokens": 12, "num_beams": 4, "num_return_sequences": 4, "eos": "frequent"},
    "beam4_early_stopping_true": {
        "max_new_tokens": 12,
        "num_beams": 4,
        "num_return_sequences": 2,
        "early_stopping": True,
        "eos": "frequent",
    },
    "beam4_early_stopping_never_long": {
        "max_new_tokens": 12,
        "num_beams": 4,
        "early_stopping": "never",
        "length_penalty": 2.0,
        "eos": "frequent",
    },
    "beam4_early_stopping_never_short": {
        "max_new_tokens": 12,
        "num_beams": 4,
        "early_stopping": "never",
        "length_penalty": -1.0,
        "eos": "frequent",
    },
    "beam4_length_penalty_negative": {
        "max_new_tokens": 12,
        "num_beams": 4,
        "num_return_sequences": 3,
        "length_penalty": -0.5,
        "eos": "frequent",
    },
    "beam3_ngram_repetition": {
        "max_length": 16,
        "num_beams": 3,
        "num_return_sequences": 2,
        "no_repeat_ngram_size": 2,
        "repetition_penalty": 1.3,
        "eos": "frequent",
    },
    "beam4_min_new_tokens": {"max_new_tokens": 12, "num_beams": 4, "min_new_tokens": 7, "eos": "frequent"},
    "beam2_bad_words": {
        "max_new_tokens": 10,
        "num_beams": 2,
        "bad_words_ids": ((21,), (35,), (17, 5), (37, 37)),
    },
    "beam4_forced_bos_eos": {
        "max_new_tokens": 9,
        "num_beams": 4,
        "num_return_sequences": 2,
        "forced_bos_token_id": 7,
        "forced_eos_token_id": 2,
    },
}
_SETTINGS_NAMES = {f.name for f in fields(GenerationSettings)}


def settings_for(kind: str, case: dict[str, Any]) -> GenerationSettings:
    special = SPECIAL_TOKENS[kind]
    values = {key: value for key, value in case.items() if key != "eos"}
    eos = FREQUENT_EOS[kind] if case.get("eos") == "frequent" else (special["eos_token_id"],)
    return GenerationSettings(
        eos_token_ids=eos,
        pad_token_id=special["pad_token_id"],
        bos_token_id=special.get("bos_token_id"),
        decoder_start_token_id=special.get("decoder_start_token_id"),
        **values,
    )


def generate_kwargs(settings: GenerationSettings) -> dict[str, Any]:
    """The same settings as generate() keyword arguments."""
    values = asdict(settings)
    kwargs = {name: values[name] for name in _SETTINGS_NAMES - {"eos_token_ids", "bad_words_ids", "seed"}}
    kwargs["eos_token_id"] = list(settings.eos_token_ids)
    if settings.bad_words_ids:
        kwargs["bad_words_ids"] = [list(word) for word in settings.bad_words_ids]
    return {key: value for key, value in kwargs.items() if value is not None}


@pytest.fixture(scope="session")
def reference_answers(tiny_models: dict[str, Path]) -> Callable[[str], dict[str, list[dict[str, Any]]]]:
    """Per model kind, 4.51.3's answer to every case and prompt, computed in one reference process."""
    cache: dict[str, dict[str, list[dict[str, Any]]]] = {}

    def answers(kind: str) -> dict[str, list[dict[str, Any]]]:
        if kind not in cache:
            jobs = [
                (name, {"prompt": prompt, "kwargs": generate_kwargs(settings_for(kind, case))})
                for name, case in CASES.items()
                for prompt in PROMPTS
            ]
            job = {
                "model_dir": str(tiny_models[kind]),
                "special_tokens": SPECIAL_TOKENS[kind],
                "cases": [spec for _, spec in jobs],
            }
            done = subprocess.run(
                [str(PARITY_PYTHON), str(REFERENCE_SCRIPT)],
                input=json.dumps(job),
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            assert done.returncode == 0, done.stderr[-3000:]
            reply = json.loads(done.stdout)
            assert reply["transformers"] == "4.51.3"
            cache[kind] = {}
            for (name, _), answer in zip(jobs, reply["answers"], strict=True):
                cache[kind].setdefault(name, []).append(answer)
        return cache[kind]

    return answers


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("kind", KINDS)
def test_generated_tokens_are_transformers_4_51_tokens(
    kind: str,
    case: str,
    torch_models: dict[str, TorchNextTokenModel],
    reference_answers: Callable[[str], dict[str, list[dict[str, Any]]]],
) -> None:
    settings = settings_for(kind, CASES[case])
    outputs = generate(torch_models[kind], PROMPTS, settings)
    expected = reference_answers(kind)[case]
    for prompt, output, answer in zip(PROMPTS, outputs, expected, strict=True):
        assert output.sequences.tolist() == answer["sequences"], f"prompt {prompt}"
        if settings.is_beam_search:
            np.testing.assert_allclose(output.scores, answer["scores"], rtol=1e-4, atol=1e-5)
