"""TrainOptions: overrides from CLI flags, validation, presets."""

from __future__ import annotations

from pathlib import Path

import pytest

from zeroserve.sentiment_trainer.options import TrainOptions


def test_unset_cli_flags_keep_the_default_budget() -> None:
    assert TrainOptions().with_overrides(max_examples=None, seed=None) == TrainOptions()


def test_cli_flags_override_defaults_and_output_becomes_a_path() -> None:
    options = TrainOptions().with_overrides(max_examples=100, max_length=64, output="out/model.tar.gz")
    assert (options.max_examples, options.max_length, options.output) == (100, 64, Path("out/model.tar.gz"))


def test_invalid_values_are_refused_with_their_names() -> None:
    with pytest.raises(ValueError, match="max_length=4"):
        TrainOptions(max_length=4)
    with pytest.raises(ValueError, match="learning_rate"):
        TrainOptions().with_overrides(learning_rate=0.0)


def test_full_preset_trains_on_longer_reviews_and_takes_overrides() -> None:
    full = TrainOptions.full(seed=5)
    assert full.max_length > TrainOptions().max_length
    assert full.seed == 5
    assert full.eval_rt_limit is None


def test_options_serialize_to_json_types() -> None:
    encoded = TrainOptions(output=Path("/tmp/x/model.tar.gz")).to_json()
    assert encoded["output"] == "/tmp/x/model.tar.gz"
    assert encoded["max_length"] == TrainOptions().max_length


def test_string_paths_become_paths() -> None:
    options = TrainOptions(output="out/model.tar.gz", base_model="base")  # type: ignore[arg-type]
    assert (options.output, options.base_model) == (Path("out/model.tar.gz"), Path("base"))
