"""The model Environment variables zeroserve reads are checked at CreateModel, naming the variable and what
it accepts; the deployer reads the same parsed values."""

from __future__ import annotations

import pytest

from zeroserve.control.environment import BadValue, ModelEnvironment, check_environment
from zeroserve.errors import ValidationError


def create_model(env: dict[str, str]) -> dict[str, object]:
    return {"ModelName": "m", "PrimaryContainer": {"ModelDataUrl": "file:///m", "Environment": env}}


def test_a_batch_size_that_is_not_a_number_names_the_variable_and_the_accepted_range() -> None:
    with pytest.raises(ValidationError) as caught:
        check_environment(create_model({"ZEROSERVE_MAX_BATCH_SIZE": "big"}))
    assert caught.value.message == (
        "1 validation error detected: Value 'big' at 'primaryContainer.environment.ZEROSERVE_MAX_BATCH_SIZE' "
        "failed to satisfy constraint: Environment variable ZEROSERVE_MAX_BATCH_SIZE must be an integer "
        "from 1 to 1024"
    )


@pytest.mark.parametrize(
    ("name", "value", "accepts"),
    [
        ("ZEROSERVE_MAX_BATCH_SIZE", "0", "an integer from 1 to 1024"),
        ("ZEROSERVE_MAX_BATCH_WAIT_MS", "soon", "a number from 0 to 10000"),
        ("ZEROSERVE_MAX_BATCH_WAIT_MS", "nan", "a number from 0 to 10000"),
        ("ZEROSERVE_MAX_WORKERS", "-1", "an integer from 1 to 256"),
        ("ZEROSERVE_WORKER_THREADS", "many", "an integer from 0 to 1024"),
        ("ZEROSERVE_QUANTIZE", "maybe", "auto, dynamic, blockwise or one of true, 1, yes, false, 0, no"),
        ("ZEROSERVE_RUNTIME", "tensorflow", "onnx or torch"),
        ("HF_TASK", "image-classification", "one of text-classification"),
        ("SAGEMAKER_PROGRAM", "../../etc/passwd", "a file name in the artifact's code/ folder"),
    ],
)
def test_each_variable_refuses_what_it_cannot_use(name: str, value: str, accepts: str) -> None:
    with pytest.raises(ValidationError) as caught:
        check_environment(create_model({name: value}))
    assert f"Environment variable {name} must be {accepts}" in caught.value.message


def test_good_values_empty_values_and_the_models_own_variables_pass() -> None:
    env = {
        "ZEROSERVE_MAX_BATCH_SIZE": "32",
        "ZEROSERVE_MAX_BATCH_WAIT_MS": "2.5",
        "ZEROSERVE_QUANTIZE": "Blockwise",
        "HF_TASK": "sentiment-analysis",
        "SAGEMAKER_PROGRAM": "serve.py",
        "ZEROSERVE_MAX_WORKERS": "",
        "MY_OWN_SETTING": "anything",
    }
    check_environment(create_model(env))
    parsed = ModelEnvironment.parse(env)
    assert (parsed.max_batch_size, parsed.max_batch_wait_ms, parsed.max_workers) == (32, 2.5, None)


def test_every_problem_of_every_container_is_reported() -> None:
    params = {
        "ModelName": "m",
        "Containers": [
            {"Environment": {"HF_TASK": "nope"}},
            {"Environment": {"ZEROSERVE_MAX_BATCH_SIZE": "x", "ZEROSERVE_RUNTIME": "jax"}},
        ],
    }
    with pytest.raises(ValidationError) as caught:
        check_environment(params)
    message = caught.value.message
    assert message.startswith("3 validation errors detected:")
    assert "'containers.1.environment.HF_TASK'" in message
    assert "'containers.2.environment.ZEROSERVE_RUNTIME'" in message


def test_the_deployer_refuses_a_stored_bad_value_with_a_reason() -> None:
    with pytest.raises(BadValue, match="ZEROSERVE_MAX_BATCH_SIZE='big' must be an integer from 1 to 1024"):
        ModelEnvironment.parse({"ZEROSERVE_MAX_BATCH_SIZE": "big"})
